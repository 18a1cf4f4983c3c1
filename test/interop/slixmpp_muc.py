#!/usr/bin/env python3
"""Independent-client check, XEP-0045 Multi-User Chat with slixmpp's xep_0045 plugin.

mia creates a room (status 201, locked), configures it with the owner form, max and moe join,
they talk, mia changes the subject, moe joins and gets the history then the subject, the room's
archive answers a MAM query, max may not configure the room, and mia kicks max.
Usage: slixmpp_muc.py HOST PORT DOMAIN PASSWORD CAFILE (see slixmpp_support.py)
"""
import asyncio

from slixmpp import JID
from slixmpp.exceptions import IqError, PresenceError

from slixmpp_support import Suite, event_future, expect

PLUGINS = ("xep_0045", "xep_0004", "xep_0082", "xep_0203", "xep_0313", "xep_0059", "xep_0297")


def status_codes(presence):
    return {int(code) for code in presence["muc"]["status_codes"]}


async def scenario(suite):
    room = JID(f"interop@conference.{suite.domain}")
    mia = suite.client("mia", PLUGINS)
    max_ = suite.client("max", PLUGINS)
    moe = suite.client("moe", PLUGINS)
    if not await suite.check("muc: three users log in", lambda: suite.online(mia, max_, moe), timeout=20):
        return
    muc = {client: client.plugin["xep_0045"] for client in (mia, max_, moe)}

    async def create():
        # XEP-0045 §10.1.1: the creator's self-presence carries 201 (room created) and 110 (self),
        # affiliation owner; the room stays locked until configured.
        presence, _subject, _occupants, _history = await muc[mia].join_muc_wait(room, "Mia", maxstanzas=0, timeout=8)
        codes = status_codes(presence)
        expect({201, 110} <= codes, f"self-presence status codes {sorted(codes)}, want 201 and 110: {presence}")
        expect(presence["muc"]["affiliation"] == "owner" and presence["muc"]["role"] == "moderator", f"mia is {presence['muc']['affiliation']}/{presence['muc']['role']}")
        return f"status {sorted(codes)}, owner/moderator"

    created = await suite.check("muc: create a room (201, owner, locked)", create)

    async def locked():
        # §10.1.1: until the owner configures it, others get item-not-found (§7.2.10 Locked Room). slixmpp's
        # join_muc_wait sees a join error only when the error presence carries the join's
        # <x xmlns='http://jabber.org/protocol/muc'/>, as the §7.2.10 example (and every join error
        # example of §7.2) does; other error presences from the room are caught too, to tell a
        # missing <x/> from no error at all.
        any_error = event_future(moe, "presence_error", lambda p: p["from"].bare == room)
        try:
            await muc[moe].join_muc_wait(room, "Moe", maxstanzas=0, timeout=4)
        except PresenceError as err:
            expect(err.condition == "item-not-found", f"condition {err.condition}: {err.presence}")
            return "item-not-found while locked"
        except asyncio.TimeoutError:
            if any_error.done():
                raise AssertionError(f"slixmpp's join_muc_wait saw no error: the error presence lacks <x xmlns='http://jabber.org/protocol/muc'/> (the XEP-0045 §7.2.10 example 'Service Denies Access Because Room Does Not (Yet) Exist' has it); received: {any_error.result()}")
            raise AssertionError("no answer to a join of a locked room within 4 s")
        raise AssertionError("moe entered a locked room")

    await suite.check("muc: a locked room refuses others (item-not-found)", locked, requires=created)

    async def configure():
        form = await muc[mia].get_room_config(room)
        fields = form.get_fields()
        for var in ("muc#roomconfig_roomname", "muc#roomconfig_persistentroom", "muc#roomconfig_changesubject"):
            expect(var in fields, f"the owner form has no {var}: {sorted(fields)}")
        # As a client does: fill in the form the room sent, submit it (slixmpp strips the options).
        form.set_values({
            "muc#roomconfig_roomname": "Interop room",
            "muc#roomconfig_roomdesc": "slixmpp was here",
            "muc#roomconfig_persistentroom": True,
        })
        await muc[mia].set_room_config(room, form)
        info = await mia.plugin["xep_0030"].get_info(jid=room)
        identities = info["disco_info"]["identities"]
        features = info["disco_info"]["features"]
        expect(any(i[0] == "conference" and i[3] == "Interop room" for i in identities), f"identities after configuring: {identities}")
        expect("muc_persistent" in features, f"features after configuring: {features}")
        return f"{len(fields)} fields offered; disco#info shows name and muc_persistent"

    configured = await suite.check("muc: configure with the owner form (muc#roomconfig), seen in disco#info", configure, requires=created)

    async def join():
        mia_sees = event_future(mia, f"muc::{room}::got_online", lambda p: p["from"].resource == "Max")
        presence, subject, occupants, _history = await muc[max_].join_muc_wait(room, "Max", maxstanzas=0, timeout=8)
        codes = status_codes(presence)
        expect(110 in codes and 201 not in codes, f"max's self-presence codes {sorted(codes)}")
        expect(presence["muc"]["role"] == "participant", f"max's role {presence['muc']['role']}")
        expect(any(p["from"].resource == "Mia" for p in occupants), f"max saw occupants {[str(p['from']) for p in occupants]}")
        await mia_sees
        return f"max saw {[p['from'].resource for p in occupants]}, mia saw Max"

    joined = await suite.check("muc: a second user joins; both see each other's presence", join, requires=configured)

    async def message():
        max_got = event_future(max_, "groupchat_message", lambda m: m["body"] == "hello room")
        mia_echo = event_future(mia, "groupchat_message", lambda m: m["body"] == "hello room")
        mia.send_message(mto=room, mbody="hello room", mtype="groupchat")
        got = await max_got
        expect(got["from"] == JID(f"{room}/Mia"), f"from {got['from']}")
        echo = await mia_echo
        expect(echo["from"] == JID(f"{room}/Mia"), f"echo from {echo['from']}")
        for n in range(1, 4):
            max_.send_message(mto=room, mbody=f"history {n}", mtype="groupchat")
        await event_future(mia, "groupchat_message", lambda m: m["body"] == "history 3")
        return "delivered to max and reflected to mia"

    messaged = await suite.check("muc: a groupchat message reaches every occupant, the sender too", message, requires=joined)

    async def subject():
        max_got = event_future(max_, "groupchat_subject", lambda m: m["subject"] == "Interop subject")
        mia_got = event_future(mia, "groupchat_subject", lambda m: m["subject"] == "Interop subject")
        muc[mia].set_subject(room, "Interop subject")
        got = await max_got
        await mia_got
        expect(got["from"] == JID(f"{room}/Mia"), f"subject from {got['from']}")
        return "both occupants got it"

    subject_set = await suite.check("muc: the moderator changes the subject", subject, requires=joined)

    async def history():
        # §7.2.13: history (with <delay from=room/>) after the presences, then the subject (§7.2.15).
        _presence, subject_msg, occupants, history = await muc[moe].join_muc_wait(room, "Moe", maxstanzas=2, timeout=8)
        bodies = [m["body"] for m in history]
        expect(bodies == ["history 2", "history 3"], f"history {bodies} (want the last 2, each with <delay from='{room}'/>)")
        expect(subject_msg["subject"] == "Interop subject", f"subject on join {subject_msg['subject']!r}")
        expect({p["from"].resource for p in occupants} >= {"Mia", "Max"}, f"occupants {[str(p['from']) for p in occupants]}")
        return f"history {bodies} then subject {subject_msg['subject']!r}"

    await suite.check("muc: joining gets the last messages as history, then the subject", history, requires=messaged and subject_set)

    async def room_archive():
        # XEP-0313 §3.3.2 (MUC archives): a logged room (status 170 on entry) answers MAM queries sent to it.
        archived = [m["mam_result"]["forwarded"]["stanza"] async for m in mia.plugin["xep_0313"].iterate(jid=room, rsm={"max": 10})]
        # The subject change may be archived too (a message without body): only the chat is compared.
        bodies = [m["body"] for m in archived if m["body"]]
        expect(bodies == ["hello room", "history 1", "history 2", "history 3"], f"room archive {[(m['from'].resource, m['body'] or m['subject']) for m in archived]}")
        expect(archived[0]["from"] == JID(f"{room}/Mia"), f"first archived message from {archived[0]['from']}, want the occupant JID")
        return f"{len(archived)} messages ({len(archived) - len(bodies)} without body)"

    await suite.check("muc: the room's archive answers a MAM query (XEP-0313)", room_archive, requires=messaged)

    async def not_owner():
        try:
            await muc[max_].get_room_config(room)
        except IqError as err:
            expect(err.condition == "forbidden", f"condition {err.condition}: {err.iq}")
            return "forbidden"
        raise AssertionError("a participant got the owner form")

    await suite.check("muc: a participant may not configure the room (forbidden)", not_owner, requires=joined)

    async def kick():
        # §8.2: the kicked occupant gets unavailable with 307 and 110, the others with 307.
        max_out = event_future(max_, f"muc::{room}::presence", lambda p: p["type"] == "unavailable" and p["from"].resource == "Max")
        mia_sees = event_future(mia, f"muc::{room}::presence", lambda p: p["type"] == "unavailable" and p["from"].resource == "Max")
        await muc[mia].set_role(room, "Max", "none", reason="interop kick")
        own = await max_out
        codes = status_codes(own)
        expect({307, 110} <= codes, f"kicked occupant's codes {sorted(codes)}: {own}")
        seen = await mia_sees
        expect(307 in status_codes(seen), f"others see codes {sorted(status_codes(seen))}")
        expect(own["muc"]["item"]["reason"] == "interop kick", f"no <reason>interop kick</reason> in {own}")
        return f"kicked: {sorted(codes)}, others: {sorted(status_codes(seen))}"

    await suite.check("muc: the moderator kicks a participant (307)", kick, requires=joined)


if __name__ == "__main__":
    Suite().run(scenario)
