#!/usr/bin/env bash
# Rebuild the Web Chat bundle that CareDesk ships (adapters/portal/static/webchat.js) from the
# npm package pinned in package.json beside this script. Run by `make webchat` on a machine with
# Node.js and npm; `make run` and `make test` never need Node: the result is committed.
#
# Web Chat's npm package carries its browser bundle (dist/webchat.js: React, Adaptive Cards,
# Direct Line JS, markdown-it and sanitize-html in one UMD file, exposing window.WebChat) with
# the licences of what it bundles (dist/webchat.js.LICENSE.txt); this copies both, checks the
# package's licence (MIT) and prints the size.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
static="$here/../static"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

version="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["dependencies"]["botframework-webchat"])' "$here/package.json")"
cd "$work"
npm pack --silent "botframework-webchat@$version" >/dev/null
tar xzf "botframework-webchat-$version.tgz"
licence="$(python3 -c 'import json; print(json.load(open("package/package.json"))["license"])')"
if [ "$licence" != "MIT" ]; then
  echo "botframework-webchat $version is licensed $licence, not MIT: not shipped" >&2
  exit 1
fi
cp package/dist/webchat.js "$static/webchat.js"
cp package/dist/webchat.js.LICENSE.txt "$static/webchat.js.LICENSE.txt"
bytes=$(wc -c < "$static/webchat.js")
gz=$(gzip -9 -c "$static/webchat.js" | wc -c)
echo "botframework-webchat $version (MIT): webchat.js $bytes bytes, $gz gzipped"
