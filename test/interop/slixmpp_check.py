#!/usr/bin/env python3
"""Independent-client check, core: Debian's slixmpp against a running Herald.

Two accounts log in over STARTTLS with SCRAM, alice adds bob to her roster, asks for and gets
a presence subscription, and they exchange a message each way.
Usage: slixmpp_check.py HOST PORT DOMAIN PASSWORD CAFILE (see slixmpp_support.py)
"""
import asyncio

from slixmpp_support import Suite, event_future, expect


async def scenario(suite):
    alice = suite.client("alice")
    bob = suite.client("bob")
    for client in (alice, bob):
        client.auto_authorize = True
        client.auto_subscribe = True

    async def login():
        await suite.online(alice, bob)
        expect(alice.boundjid.full == f"alice@{suite.domain}/slix", f"bound {alice.boundjid.full}")
        expect(bob.boundjid.bare == f"bob@{suite.domain}", f"bound {bob.boundjid.full}")
        for client in (alice, bob):
            client.send_presence()
            await client.get_roster()
        return "STARTTLS with the certificate checked, SCRAM, bind"

    if not await suite.check("core: both log in (STARTTLS, SCRAM, bind)", login, timeout=20):
        return

    async def roster():
        await alice.update_roster(suite.bare("bob"), name="Bob", groups=["Friends"])
        # The roster push updated slixmpp's copy; a re-fetch with the same version is answered
        # with an empty result (XEP-0237), so read the client's roster rather than the IQ answer.
        await alice.get_roster()
        item = alice.client_roster[suite.bare("bob")]
        expect(item["name"] == "Bob" and item["groups"] == ["Friends"], f"roster item {item['name']!r} {item['groups']!r}")
        return f"roster: {sorted(str(j) for j in alice.client_roster.keys())}"

    await suite.check("core: roster set, push and get", roster)

    async def subscription():
        subscribed = event_future(alice, "presence_subscribed")
        alice.send_presence_subscription(pto=suite.bare("bob"))
        presence = await subscribed
        expect(presence["from"].bare == suite.bare("bob"), f"subscribed from {presence['from']}")
        return f"subscribed from {presence['from']}"

    await suite.check("core: presence subscription approved by the contact", subscription)

    async def messages():
        bob_got = event_future(bob, "message", lambda msg: msg["body"] == "ping from alice")
        alice_got = event_future(alice, "message", lambda msg: msg["body"] == "pong from bob")
        alice.send_message(mto=f"bob@{suite.domain}/slix", mbody="ping from alice", mtype="chat")
        ping = await bob_got
        expect(ping["from"] == alice.boundjid, f"from {ping['from']}")
        ping.reply("pong from bob").send()
        pong = await alice_got
        return f"{ping['from']} → bob, {pong['from']} → alice"

    await suite.check("core: chat messages both ways", messages)


if __name__ == "__main__":
    Suite().run(scenario)
