"""Shared by the slixmpp_*.py interop scripts: argument parsing, slixmpp clients that trust Herald's
self-signed certificate (and check it, hostname included), and named checks.

Every script is called as  SCRIPT HOST PORT DOMAIN PASSWORD CAFILE  by test/interop/slixmpp.ts and
prints one line per check:  CHECK {"name": ..., "status": "passed"|"failed"|"skipped", "ms": ...,
"detail": ...}. Anything else it prints (slixmpp prints a little itself) is passed through to the log.
"""
import asyncio
import json
import logging
import os
import ssl
import sys
import time
import traceback

import slixmpp

CHECK_PREFIX = "CHECK "


class Suite:
    def __init__(self):
        if len(sys.argv) != 6:
            sys.exit(f"usage: {sys.argv[0]} HOST PORT DOMAIN PASSWORD CAFILE")
        self.host, port, self.domain, self.password, self.cafile = sys.argv[1:6]
        self.port = int(port)
        self.clients = []
        self.failed = 0

    def bare(self, user):
        return f"{user}@{self.domain}"

    def client(self, user, plugins=(), resource="slix"):
        """A slixmpp client for user@DOMAIN/resource with the plugins named (XEP ids: 'xep_0045')."""
        client = slixmpp.ClientXMPP(f"{user}@{self.domain}/{resource}", self.password)
        # What a new user does with a self-signed server: trust that one certificate. Unlike
        # CERT_NONE this still checks the chain and that the certificate names DOMAIN.
        client.ssl_context = ssl.create_default_context(cafile=self.cafile)
        for plugin in ("xep_0030", "xep_0199", *plugins):
            client.register_plugin(plugin)
        self.clients.append(client)
        return client

    async def online(self, *clients, timeout=15):
        """Connects the clients (STARTTLS, SASL, bind) and waits for each one's session_start."""
        waits = []
        for client in clients:
            started = asyncio.get_running_loop().create_future()

            def on_start(_event, started=started):
                if not started.done():
                    started.set_result(True)

            def on_failure(event, started=started, client=client):
                if not started.done():
                    started.set_exception(RuntimeError(f"{client.boundjid.bare}: {event!r}"))

            client.add_event_handler("session_start", on_start)
            # failed_auth comes for each mechanism tried (slixmpp retries SCRAM without -PLUS after its
            # tls-unique is refused); only failed_all_auth is final.
            client.add_event_handler("failed_all_auth", on_failure)
            client.add_event_handler("connection_failed", on_failure)
            client.connect((self.host, self.port), force_starttls=True, disable_starttls=False)
            waits.append(started)
        await asyncio.wait_for(asyncio.gather(*waits), timeout)

    async def check(self, name, fn, *, timeout=10, requires=True):
        """Runs one named check: fn() is a coroutine function whose return value (a short text) is
        the detail of a pass; an exception fails the check. requires=False (an earlier step
        failed) skips it. Returns whether it passed."""
        if not requires:
            self.emit(name, "skipped", 0, "an earlier step failed")
            return False
        started = time.monotonic()
        task = asyncio.ensure_future(fn())
        await asyncio.wait([task], timeout=timeout)
        if not task.done():
            task.cancel()
            self.emit(name, "failed", started, f"timed out after {timeout} s")
            return False
        try:
            detail = task.result()
        except asyncio.TimeoutError:
            self.emit(name, "failed", started, "a wait inside the check timed out (no answer)")
            return False
        except Exception as exc:  # noqa: BLE001 - any error fails this check, the next ones still run
            self.emit(name, "failed", started, describe(exc))
            return False
        self.emit(name, "passed", started, detail if isinstance(detail, str) else None)
        return True

    def emit(self, name, status, started, detail):
        if status == "failed":
            self.failed += 1
        ms = 0 if status == "skipped" else round((time.monotonic() - started) * 1000)
        print(CHECK_PREFIX + json.dumps({"name": name, "status": status, "ms": ms, "detail": detail}), flush=True)

    def run(self, scenario):
        """Runs scenario(suite) and disconnects every client; exit status 1 when a check failed."""
        logging.basicConfig(level=logging.DEBUG if os.environ.get("HERALD_INTEROP_DEBUG") == "1" else logging.ERROR)

        async def main():
            try:
                await scenario(self)
            finally:
                for client in self.clients:
                    client.disconnect(wait=0.5)
                await asyncio.sleep(0.1)

        try:
            asyncio.run(main())
        except Exception as exc:  # noqa: BLE001 - a crash outside a check: the TS side reports it
            print(f"scenario crashed: {describe(exc)}", flush=True)
            sys.exit(2)
        sys.exit(1 if self.failed else 0)


def describe(exc):
    """An exception as a short text: slixmpp's stanza errors with the stanza that carried them."""
    stanza = getattr(exc, "iq", None) or getattr(exc, "presence", None)
    if stanza is not None:
        return f"{type(exc).__name__}: {exc}; received: {stanza}"
    lines = traceback.format_exception_only(type(exc), exc)
    return "".join(lines).strip() or repr(exc)


def event_future(client, event, predicate=lambda _stanza: True):
    """A future for the next `event` of `client` whose stanza satisfies predicate."""
    future = asyncio.get_running_loop().create_future()

    def handler(stanza):
        if not future.done() and predicate(stanza):
            future.set_result(stanza)
            client.del_event_handler(event, handler)

    client.add_event_handler(event, handler)
    return future


def expect(condition, message):
    if not condition:
        raise AssertionError(message)
