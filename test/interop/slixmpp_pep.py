#!/usr/bin/env python3
"""Independent-client check, XEP-0163 Personal Eventing Protocol with slixmpp's plugins: pia
publishes her nick (XEP-0172, xep_0172) and avatar (XEP-0084, xep_0084); pete, her contact, asked
for both with +notify features in his entity capabilities (XEP-0115, xep_0115 via xep_0163) and
gets the notifications; a second session of pete gets the last nick on coming online, a session
without nick+notify gets no nick, and pete may not publish to pia's node.
Usage: slixmpp_pep.py HOST PORT DOMAIN PASSWORD CAFILE (see slixmpp_support.py)
"""
import asyncio
import hashlib

from slixmpp import JID
from slixmpp.exceptions import IqError

from slixmpp_support import Suite, event_future, expect

PLUGINS = ("xep_0060", "xep_0115", "xep_0163", "xep_0172", "xep_0084")
NS_NICK = "http://jabber.org/protocol/nick"
NS_META = "urn:xmpp:avatar:metadata"
# A 1×1 PNG: what an avatar is, small enough to travel base64 in one item.
AVATAR = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360f8cfc0f01f0005000201e2d7"
    "5a2e0000000049454e44ae426082"
)


def from_pia(suite):
    return lambda msg: msg["from"].bare == JID(suite.bare("pia"))


async def scenario(suite):
    pia = suite.client("pia", PLUGINS)
    pete = suite.client("pete", PLUGINS)
    for client in (pia, pete):
        client.auto_authorize = True
        client.auto_subscribe = True

    async def setup():
        await suite.online(pia, pete)
        for client in (pia, pete):
            client.send_presence()
            await client.get_roster()
        # Mutual subscription (pia auto-authorizes and subscribes back), so that pete's presence
        # with his caps reaches pia's account: that is where PEP learns his +notify features.
        back = event_future(pete, "presence_subscribe", from_pia(suite))
        subscribed = event_future(pete, "presence_subscribed", from_pia(suite))
        pete.send_presence_subscription(pto=suite.bare("pia"))
        await subscribed
        await back
        ver = await pete.plugin["xep_0115"].get_verstring(pete.boundjid)
        features = pete.plugin["xep_0030"].static.get_node(pete.boundjid, None, None)["info"]["features"]
        expect(f"{NS_NICK}+notify" in features and f"{NS_META}+notify" in features, f"pete's features {features}")
        return f"mutual subscription; pete's caps ver {ver} lists {NS_NICK}+notify and {NS_META}+notify"

    if not await suite.check("pep: contacts subscribe to each other; +notify in caps", setup, timeout=15):
        return

    async def nick():
        got = event_future(pete, "user_nick_publish", from_pia(suite))
        await pia.plugin["xep_0172"].publish_nick("Pia Interop")
        msg = await got
        item = msg["pubsub_event"]["items"]["item"]
        expect(item["nick"]["nick"] == "Pia Interop", f"notification {msg}")
        return f"pete got {item['nick']['nick']!r} from {msg['from']}"

    nick_ok = await suite.check("pep: a published nick (XEP-0172) reaches the contact", nick)

    async def avatar():
        avatar_id = pia.plugin["xep_0084"].generate_id(AVATAR)
        got = event_future(pete, "avatar_metadata_publish", from_pia(suite))
        await pia.plugin["xep_0084"].publish_avatar(AVATAR)
        await pia.plugin["xep_0084"].publish_avatar_metadata({"id": avatar_id, "type": "image/png", "bytes": len(AVATAR)})
        msg = await got
        item = msg["pubsub_event"]["items"]["item"]
        infos = item["avatar_metadata"].xml.findall(f"{{{NS_META}}}info")
        expect(item["id"] == avatar_id and [i.get("id") for i in infos] == [avatar_id], f"metadata notification {msg}")
        # The contact fetches the data the metadata announces, by item id (XEP-0084 §3.4).
        result = await pete.plugin["xep_0084"].retrieve_avatar(JID(suite.bare("pia")), avatar_id)
        data = result["pubsub"]["items"]["item"]["avatar_data"]["value"]
        expect(data == AVATAR, f"retrieved {len(data)} bytes, sha1 {hashlib.sha1(data).hexdigest()}, want {avatar_id}")
        return f"metadata for {avatar_id[:12]}…; data retrieved, {len(data)} bytes match"

    await suite.check("pep: avatar metadata (XEP-0084) notified, data retrieved by the contact", avatar)

    async def last_item():
        # XEP-0163 §4.3.4 (send_last_published_item on_sub_and_presence): a session coming online
        # with +notify in its caps gets the last item of each node it is interested in.
        second = suite.client("pete", PLUGINS, resource="second")
        got = event_future(second, "user_nick_publish", from_pia(suite))
        await suite.online(second)
        second.send_presence()
        msg = await got
        expect(msg["pubsub_event"]["items"]["item"]["nick"]["nick"] == "Pia Interop", f"notification {msg}")
        expect(msg["to"] == second.boundjid, f"sent to {msg['to']}, want the new session {second.boundjid}")
        return f"pete/second got the last nick on its first presence"

    await suite.check("pep: a contact's new session gets the last item on coming online", last_item, requires=nick_ok)

    async def filtered():
        # XEP-0163 §4.2 (Notification Filtering): a session whose caps lack nick+notify gets no
        # nick notification, neither the last item on coming online nor a new one.
        plain = suite.client("pete", ("xep_0060", "xep_0115", "xep_0163", "xep_0084"), resource="plain")
        unwanted = []
        plain.add_event_handler("pubsub_publish", lambda msg: msg["pubsub_event"]["items"]["node"] == NS_NICK and unwanted.append(msg))
        await suite.online(plain)
        plain.send_presence()
        # It does want avatars: its last-item notification shows the server has read its caps.
        await event_future(plain, "avatar_metadata_publish", from_pia(suite))
        got = event_future(pete, "user_nick_publish", lambda msg: msg["pubsub_event"]["items"]["item"]["nick"]["nick"] == "Pia Again")
        await pia.plugin["xep_0172"].publish_nick("Pia Again")
        await got
        await asyncio.sleep(0.3)
        expect(not unwanted, f"the session without nick+notify got {unwanted[0] if unwanted else ''}")
        return "avatar notification only; no nick notification (neither last item nor new)"

    await suite.check("pep: a session without nick+notify in its caps gets no nick notification", filtered, requires=nick_ok)

    async def foreign_publish():
        # XEP-0060 §7.1.3.1: only the owner (publisher) may publish: someone else gets forbidden.
        item = pete.plugin["xep_0172"].stanza.UserNick()
        item["nick"] = "not pia"
        try:
            await pete.plugin["xep_0060"].publish(JID(suite.bare("pia")), NS_NICK, payload=item)
        except IqError as err:
            expect(err.condition == "forbidden", f"condition {err.condition}: {err.iq}")
            return "forbidden"
        raise AssertionError("pete published to pia's nick node")

    await suite.check("pep: a contact may not publish to the owner's node (forbidden)", foreign_publish)


if __name__ == "__main__":
    Suite().run(scenario)
