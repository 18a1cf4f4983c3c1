#!/usr/bin/env bash
# Independent-client check with Debian's python3-slixmpp (added with the slixmpp script).
echo "slixmpp interop: not yet written"
