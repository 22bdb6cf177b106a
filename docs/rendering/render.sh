#!/usr/bin/env bash
# Re-create the README pictures (docs/images/*.png) from the project's real card JSON.
#
#   bash docs/rendering/render.sh
#
# One-off tools, NOT needed by the test suite or by `make`:
#   - Chromium (Debian: apt-get install chromium; or set CHROMIUM=/path/to/chrome)
#   - Node.js with npm (for the Adaptive Cards JavaScript renderer and markdown-it)
#   - fonts for a faithful look (Debian: fonts-lato fonts-open-sans fonts-noto-color-emoji)
# The npm packages are installed in a temporary folder (RENDER_NODE_DIR, default
# /tmp/caredesk-render), never in the repository.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
PYTHON="${PYTHON:-$ROOT/.venv/bin/python}"
NODE_DIR="${RENDER_NODE_DIR:-/tmp/caredesk-render}"
CHROMIUM="${CHROMIUM:-$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)}"

[ -x "$PYTHON" ] || { echo "render.sh: no Python at $PYTHON (run 'make install' first, or set PYTHON)" >&2; exit 2; }
[ -n "$CHROMIUM" ] || { echo "render.sh: Chromium not found (apt-get install chromium, or set CHROMIUM)" >&2; exit 2; }
command -v npm >/dev/null || { echo "render.sh: npm not found (install Node.js)" >&2; exit 2; }

if [ ! -f "$NODE_DIR/node_modules/adaptivecards/dist/adaptivecards.min.js" ] \
   || [ ! -f "$NODE_DIR/node_modules/markdown-it/dist/browser/markdown-it.umd.min.js" ]; then
  mkdir -p "$NODE_DIR"
  (cd "$NODE_DIR" && { [ -f package.json ] || npm init -y >/dev/null; } \
     && npm install --no-audit --no-fund --silent adaptivecards@3 markdown-it@15)
fi

cd "$ROOT"
"$PYTHON" docs/rendering/export_cards.py
"$PYTHON" docs/rendering/render.py --node-modules "$NODE_DIR/node_modules" --chromium "$CHROMIUM"
