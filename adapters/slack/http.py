"""`POST /slack/events`: the signature checked before anything is parsed, a malformed body
refused, then the request handed to Bolt (`slack_bolt.adapter.aiohttp`'s response helper)."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response
from slack_bolt.app.async_app import AsyncApp
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_sdk.signature import SignatureVerifier

from adapters.shared.network import client_of
from adapters.shared.pressure import AckPressure, in_hand
from adapters.slack.payloads import well_formed

log = logging.getLogger("caredesk.slack")

EVENTS_PATH = "/slack/events"
SIGNATURE_HEADER = "x-slack-signature"


@dataclass(frozen=True)
class SlackRoute:
    """The aiohttp handler of Slack's requests. `verifier` is None only in the developer mode
    without a signing secret; `problem` says why Slack cannot be served (503) when it cannot."""

    app: AsyncApp | None
    verifier: SignatureVerifier | None
    problem: str | None
    # The server's ack pressure (None: not counted). Only a verified request counts: a stranger's
    # (unsigned, or still trickling its body in) must not slow the workers down.
    pressure: AckPressure | None = None

    async def __call__(self, request: web.Request) -> web.StreamResponse:
        if self.problem is not None or self.app is None:
            return web.json_response(
                {"error": "slack_not_configured", "message": f"Slack is not configured on this server: {self.problem}."},
                status=503,
            )
        raw = await request.read()
        if self.verifier is not None and not self._signed(raw, request.headers):
            log.warning("rejected a Slack request with a missing, wrong or stale signature from %s", client_of(request))
            return web.json_response({"error": "invalid_signature"}, status=401)
        # Unverified (developer mode), a signature proves nothing and keys no replay: dropped.
        headers: dict[str, str | Sequence[str]] = {k: v for k, v in request.headers.items()
                                                   if self.verifier is not None or k.lower() != SIGNATURE_HEADER}
        try:
            # Bolt parses the body (once: the listeners and the checks below read its parse).
            bolt_request = AsyncBoltRequest(body=raw.decode("utf-8"), query=request.query_string, headers=headers)
        except (ValueError, TypeError, AttributeError, KeyError, IndexError):  # not UTF-8, not JSON, not an object
            return web.json_response({"error": "bad_request"}, status=400)
        except RecursionError:
            # JSON nested deeper than the parser's recursion limit (a signed body, but a hostile
            # one): json.loads raises RecursionError, which is no ValueError.
            log.warning("rejected a Slack request nested too deeply")
            return web.json_response({"error": "bad_request"}, status=400)
        if not well_formed(bolt_request.body):
            # Bolt's matchers and CareDesk's listeners read the body as Slack shapes it: a
            # malformed or hostile one is a 400 here, never a crash there.
            log.warning("rejected a malformed Slack request")
            return web.json_response({"error": "bad_request"}, status=400)
        with in_hand(self.pressure):
            return await to_aiohttp_response(await self.app.async_dispatch(bolt_request))

    def _signed(self, raw: bytes, headers: Mapping[str, str]) -> bool:
        assert self.verifier is not None
        try:
            return self.verifier.is_valid_request(raw, {k: v for k, v in headers.items()})
        except (ValueError, TypeError):  # a timestamp that is not a number
            return False
