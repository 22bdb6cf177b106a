"""The comparison servers, each run as its own process (like CareDesk), on 127.0.0.1:

* `bare`: a bare aiohttp handler on POST /slack/events that reads the body and answers 200
  (the limit of the HTTP stack on this machine);
* `bolt`: a minimal slack-bolt `AsyncApp` served by its aiohttp adapter (`app.web_app()`),
  signature verification on, that only acks slash commands, events and view submissions
  (the peer: what any Bolt app pays before doing anything).

    .venv/bin/python bench/peers.py bolt --port 4001 --api-url http://127.0.0.1:PORT/api/
"""

from __future__ import annotations

import argparse
import logging
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aiohttp import web  # noqa: E402

from bench.common import BOT_TOKEN, LOOPBACK, SIGNING_SECRET  # noqa: E402


def bare_app() -> web.Application:
    async def handler(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(status=200)

    app = web.Application(client_max_size=1024 * 1024)
    app.router.add_post("/slack/events", handler)
    app.router.add_get("/healthz", lambda r: web.json_response({"status": "ok"}))
    return app


def bolt_app(api_url: str) -> web.Application:
    from slack_bolt.async_app import AsyncApp

    app = AsyncApp(token=BOT_TOKEN, signing_secret=SIGNING_SECRET, logger=logging.getLogger("peer.bolt"))
    app.client.base_url = api_url  # its one auth.test is answered by the benchmark's fake Slack

    @app.command(re.compile(r"^/"))
    async def command(ack):
        await ack()

    @app.event("message")
    async def message(ack):
        await ack()

    @app.view(re.compile(".*"))
    async def submission(ack):
        await ack()

    web_app = app.web_app(path="/slack/events")
    web_app.router.add_get("/healthz", lambda r: web.json_response({"status": "ok"}))
    return web_app


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("kind", choices=("bare", "bolt"))
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--api-url", default="")
    args = p.parse_args()
    logging.basicConfig(level=logging.WARNING)
    app = bare_app() if args.kind == "bare" else bolt_app(args.api_url)
    web.run_app(app, host=LOOPBACK, port=args.port, access_log=None, print=None, backlog=2048)


if __name__ == "__main__":
    main()
