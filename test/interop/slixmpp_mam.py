#!/usr/bin/env python3
"""Independent-client check, XEP-0313 Message Archive Management with slixmpp's xep_0313 plugin
(and its XEP-0059 paging): ann and ben chat, then both read the chat back from their archives.
Usage: slixmpp_mam.py HOST PORT DOMAIN PASSWORD CAFILE (see slixmpp_support.py)
"""
import asyncio

from slixmpp import JID
from slixmpp.exceptions import IqError

from slixmpp_support import Suite, event_future, expect

PLUGINS = ("xep_0313", "xep_0059", "xep_0297", "xep_0203", "xep_0359", "xep_0004")
FROM_ANN = [f"ann {n}" for n in range(1, 8)]
FROM_BEN = ["ben 1", "ben 2"]
CHAT = FROM_ANN + FROM_BEN


def inner(result):
    """The archived message inside a MAM result (<result><forwarded><message/>)."""
    return result["mam_result"]["forwarded"]["stanza"]


async def scenario(suite):
    ann = suite.client("ann", PLUGINS)
    ben = suite.client("ben", PLUGINS)
    if not await suite.check("mam: two users log in", lambda: suite.online(ann, ben), timeout=20):
        return
    ann_bare, ben_bare = JID(suite.bare("ann")), JID(suite.bare("ben"))
    live_ids = {}

    async def chat():
        ben_has_all = event_future(ben, "message", lambda m: m["body"] == FROM_ANN[-1])
        ann_has_all = event_future(ann, "message", lambda m: m["body"] == FROM_BEN[-1])

        def remember(msg):
            if msg["body"] in CHAT and msg["stanza_id"]["by"] == ben_bare:
                live_ids[msg["body"]] = msg["stanza_id"]["id"]

        ben.add_event_handler("message", remember)
        for body in FROM_ANN:
            ann.send_message(mto=ben.boundjid, mbody=body, mtype="chat")
        await ben_has_all
        for body in FROM_BEN:
            ben.send_message(mto=ann.boundjid, mbody=body, mtype="chat")
        await ann_has_all
        return f"{len(CHAT)} messages"

    if not await suite.check("mam: ann and ben chat (the messages to archive)", chat):
        return

    async def paged():
        # XEP-0313 §4 with XEP-0059: pages of 4, each asked for after the last id of the one before.
        pages = []
        bodies = []
        async for page in ann.plugin["xep_0313"].retrieve(with_jid=ben_bare, iterator=True, rsm={"max": 4}):
            results = page["mam"]["results"]
            pages.append(results)
            for result in results:
                message = inner(result)
                expect(result["mam_result"]["forwarded"]["delay"]["stamp"] is not None, f"no <delay/> in {result}")
                expect({message["from"].bare, message["to"].bare} == {ann_bare, ben_bare}, f"archived message from {message['from']} to {message['to']}")
                bodies.append(message["body"])
        sizes = [len(p) for p in pages]
        expect(bodies == CHAT, f"ann's archive with ben, in order: {bodies}, want {CHAT}")
        expect(len(pages) >= 3 and all(size <= 4 for size in sizes), f"page sizes {sizes}, want at most 4 each")
        return f"{len(bodies)} messages in pages of {sizes}"

    await suite.check("mam: ann reads the chat back in pages of 4 (RSM after)", paged)

    async def last_page():
        # XEP-0313 §4.3.3 (Requesting the last page): an empty <before/> asks for the last page.
        messages = [inner(m)["body"] async for m in ann.plugin["xep_0313"].iterate(with_jid=ben_bare, reverse=True, rsm={"max": 3}, total=3)]
        expect(messages == list(reversed(CHAT[-3:])), f"newest three, newest first: {messages}, want {list(reversed(CHAT[-3:]))}")
        return f"{messages}"

    await suite.check("mam: the last page first (RSM before)", last_page)

    async def contact_archive():
        results = [m async for m in ben.plugin["xep_0313"].iterate(with_jid=ann_bare, rsm={"max": 5})]
        bodies = [inner(m)["body"] for m in results]
        expect(bodies == CHAT, f"ben's archive with ann: {bodies}")
        # XEP-0313 §3.5 with XEP-0359: the <stanza-id/> a message carried live is its archive id.
        archive_ids = {inner(m)["body"]: m["mam_result"]["id"] for m in results}
        received = {body: live_ids.get(body) for body in FROM_ANN}
        expect(all(received.values()), f"messages ben received without <stanza-id by='{ben_bare}'/>: {[b for b, i in received.items() if not i]}")
        expect(all(archive_ids[b] == received[b] for b in FROM_ANN), f"live stanza-ids {received} ≠ archive ids {archive_ids}")
        return f"{len(bodies)} messages; live stanza-ids match the archive ids"

    await suite.check("mam: ben's archive has the same chat, stanza-ids as seen live", contact_archive)

    async def unknown_id():
        # XEP-0313 §4.3.2: "If the UID contained within an <after> or <before> element is not present in
        # the archive, the server MUST return an item-not-found error".
        try:
            await ann.plugin["xep_0313"].retrieve(with_jid=ben_bare, rsm={"max": 2, "after": "no-such-id"}, timeout=5)
        except IqError as err:
            expect(err.condition == "item-not-found", f"condition {err.condition}: {err.iq}")
            return "item-not-found"
        raise AssertionError("a page after an unknown id was answered")

    await suite.check("mam: a page after an unknown id → item-not-found", unknown_id)


if __name__ == "__main__":
    Suite().run(scenario)
