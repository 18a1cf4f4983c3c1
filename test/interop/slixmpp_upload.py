#!/usr/bin/env python3
"""Independent-client check, XEP-0363 HTTP File Upload with slixmpp's xep_0363 plugin: ula finds
the upload service, gets a slot and PUTs a file (slixmpp's upload_file, over HTTPS with aiohttp),
then the file is fetched back from the GET URL; a file over the limit is refused.
aiohttp checks certificates against the system's trust store: SSL_CERT_FILE (set here, before
aiohttp makes its context) points it at Herald's self-signed certificate, as a user who trusts that
one certificate would.
Usage: slixmpp_upload.py HOST PORT DOMAIN PASSWORD CAFILE (see slixmpp_support.py)
"""
import io
import os
import ssl
import sys

# Before aiohttp is imported anywhere: its default SSL context reads this once.
os.environ["SSL_CERT_FILE"] = sys.argv[5] if len(sys.argv) > 5 else ""

import aiohttp  # noqa: E402
from slixmpp.exceptions import IqError  # noqa: E402

from slixmpp_support import Suite, expect  # noqa: E402

PLUGINS = ("xep_0363", "xep_0128", "xep_0004")
NS_UPLOAD = "urn:xmpp:http:upload:0"
CONTENT = ("Herald interop upload ✓\n" * 200).encode("utf-8")
LIMIT = 1024 * 1024  # modules.upload.max_file_size in test/interop/slixmpp.ts


async def scenario(suite):
    ula = suite.client("ula", PLUGINS)
    if not await suite.check("upload: the user logs in", lambda: suite.online(ula), timeout=20):
        return
    upload = ula.plugin["xep_0363"]
    state = {}

    async def discover():
        # What xep_0363.find_upload_service does: disco#items of the domain, disco#info of each,
        # the one with identity store/file and the feature. Done here with xep_0030 because
        # Debian's slixmpp 1.8.3 breaks on Python 3.11 in get_info_from_domain ("Passing coroutines
        # is forbidden": asyncio.wait on coroutines; fixed in slixmpp 1.8.4).
        disco = ula.plugin["xep_0030"]
        items = (await disco.get_items(jid=suite.domain, timeout=5))["disco_items"]["items"]
        info = None
        for item in items:
            candidate = await disco.get_info(jid=item[0], timeout=5)
            identities = candidate["disco_info"]["identities"]
            if any(i[0] == "store" and i[1] == "file" for i in identities) and NS_UPLOAD in candidate["disco_info"]["features"]:
                info = candidate
        expect(info is not None, f"no item of the server's disco#items ({[i[0] for i in items]}) has identity store/file and {NS_UPLOAD}")
        service = info["from"]
        expect(service.bare == f"upload.{suite.domain}", f"service {service}")
        forms = [form["values"] for form in info["disco_info"].iterables]
        sizes = [values.get("max-file-size") for values in forms if values.get("FORM_TYPE") == [NS_UPLOAD]]
        expect(sizes == [str(LIMIT)], f"max-file-size in disco#info: {sizes}, want {LIMIT}")
        state["service"] = service
        # What find_upload_service would have remembered, so upload_file goes straight to the slot.
        upload.upload_service = service
        upload.max_file_size = int(sizes[0])
        return f"{service}, max-file-size {sizes[0]}"

    found = await suite.check("upload: the service is found by disco, with max-file-size", discover)

    async def put():
        # slixmpp's whole flow: disco, slot request, HTTPS PUT with the slot's headers.
        url = await upload.upload_file("interop.txt", size=len(CONTENT), content_type="text/plain", input_file=io.BytesIO(CONTENT), timeout=10)
        expect(url.startswith(f"https://{suite.domain}:"), f"GET URL {url}")
        state["url"] = url
        return f"PUT done; GET URL {url}"

    uploaded = await suite.check("upload: request a slot and PUT the file over HTTPS (upload_file)", put, requires=found)

    async def get():
        context = ssl.create_default_context(cafile=suite.cafile)
        async with aiohttp.ClientSession() as session:
            async with session.get(state["url"], ssl=context) as response:
                body = await response.read()
                expect(response.status == 200, f"GET {state['url']} → {response.status}")
                expect(body == CONTENT, f"got {len(body)} bytes back, want the {len(CONTENT)} uploaded")
                kind = response.headers.get("Content-Type", "")
                expect(kind.startswith("text/plain"), f"Content-Type {kind!r}")
                return f"{len(body)} bytes back, {kind}"

    await suite.check("upload: GET the file back over HTTPS, same bytes and type", get, requires=uploaded)

    async def too_large():
        # XEP-0363 §6 (Error conditions): modify/not-acceptable with <file-too-large><max-file-size/>.
        try:
            await upload.request_slot(state["service"], "big.bin", LIMIT + 1, "application/octet-stream", timeout=5)
        except IqError as err:
            expect(err.etype == "modify" and err.condition == "not-acceptable", f"error {err.etype}/{err.condition}: {err.iq}")
            limit = err.iq.xml.find(f".//{{{NS_UPLOAD}}}file-too-large/{{{NS_UPLOAD}}}max-file-size")
            expect(limit is not None and limit.text == str(LIMIT), f"no <file-too-large><max-file-size>{LIMIT}</…> in {err.iq}")
            return "modify/not-acceptable with file-too-large"
        raise AssertionError(f"a slot for {LIMIT + 1} bytes was given")

    await suite.check("upload: a slot over max-file-size → not-acceptable, file-too-large", too_large, requires=found)

    async def wrong_size():
        # XEP-0363 §7: "The upload service MUST reject the file upload if the Content-Length does not
        # match the size of the slot request."
        slot_iq = await upload.request_slot(state["service"], "short.txt", 100, "text/plain", timeout=5)
        slot = slot_iq["http_upload_slot"]
        headers = {header["name"]: header["value"] for header in slot["put"]["headers"]}
        context = ssl.create_default_context(cafile=suite.cafile)
        async with aiohttp.ClientSession() as session:
            async with session.put(slot["put"]["url"], data=b"x" * 50, headers={**headers, "Content-Type": "text/plain"}, ssl=context) as response:
                expect(400 <= response.status < 500, f"PUT of 50 bytes to a 100-byte slot → {response.status}")
                return f"HTTP {response.status}"

    await suite.check("upload: a PUT of another size than the slot's is refused (4xx)", wrong_size, requires=found)


if __name__ == "__main__":
    Suite().run(scenario)
