#!/usr/bin/env python3
"""Independent-client check: Debian's slixmpp against a running Herald.

Two accounts log in over STARTTLS with SCRAM, alice adds bob to her roster, asks for and gets
a presence subscription, and they exchange a message each way. Exit 0 when all of it worked.
Usage: slixmpp_check.py HOST PORT DOMAIN PASSWORD
"""
import asyncio
import logging
import ssl
import sys

import slixmpp

HOST, PORT, DOMAIN, PASSWORD = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
ALICE, BOB = f"alice@{DOMAIN}/slix", f"bob@{DOMAIN}/slix"
results = {}


def make_client(jid):
    client = slixmpp.ClientXMPP(jid, PASSWORD)
    # Herald's first-start certificate is self-signed: trust it for this check only.
    client.ssl_context = ssl.create_default_context()
    client.ssl_context.check_hostname = False
    client.ssl_context.verify_mode = ssl.CERT_NONE
    client.register_plugin("xep_0030")
    client.register_plugin("xep_0199")
    client.auto_authorize = True
    client.auto_subscribe = True
    client.add_event_handler("auth_success", lambda _: results.setdefault(f"{jid} auth", client.boundjid.full or "ok"))
    return client


async def main():
    alice = make_client(ALICE)
    bob = make_client(BOB)
    done = asyncio.get_running_loop().create_future()
    bob_online = asyncio.Event()
    subscribed = asyncio.Event()

    async def bob_start(_):
        bob.send_presence()
        await bob.get_roster()
        bob_online.set()

    def bob_message(msg):
        if msg["type"] in ("chat", "normal") and msg["body"] == "ping from alice":
            results["bob received"] = str(msg["from"])
            msg.reply("pong from bob").send()

    async def alice_start(_):
        alice.send_presence()
        await alice.get_roster()
        await alice.update_roster(f"bob@{DOMAIN}", name="Bob", groups=["Friends"])
        # The roster push updated slixmpp's copy; a re-fetch with the same version is answered
        # with an empty result (XEP-0237), so read the client's roster rather than the IQ answer.
        await alice.get_roster()
        results["alice roster"] = sorted(str(j) for j in alice.client_roster.keys())
        await bob_online.wait()
        alice.send_presence_subscription(pto=f"bob@{DOMAIN}")

    def alice_subscribed(presence):
        results["alice subscribed"] = str(presence["from"])
        subscribed.set()
        alice.send_message(mto=BOB, mbody="ping from alice", mtype="chat")

    def alice_message(msg):
        if msg["body"] == "pong from bob" and not done.done():
            results["alice received"] = str(msg["from"])
            done.set_result(True)

    bob.add_event_handler("session_start", bob_start)
    bob.add_event_handler("message", bob_message)
    alice.add_event_handler("session_start", alice_start)
    alice.add_event_handler("presence_subscribed", alice_subscribed)
    alice.add_event_handler("message", alice_message)

    for client in (alice, bob):
        client.connect((HOST, PORT), force_starttls=True, disable_starttls=False)
    try:
        await asyncio.wait_for(done, timeout=20)
    finally:
        for client in (alice, bob):
            client.disconnect()
    return results


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    try:
        out = asyncio.run(main())
    except Exception as exc:  # noqa: BLE001 - report anything as a failed check
        print(f"FAILED: {exc!r}; got so far: {results}")
        sys.exit(1)
    print("OK", out)
    needed = ["alice roster", "alice subscribed", "bob received", "alice received"]
    missing = [k for k in needed if k not in out]
    if missing or f"bob@{DOMAIN}" not in out["alice roster"]:
        print("FAILED: missing", missing)
        sys.exit(1)
