"""What a failed Slack Web API call looks like to CareDesk, and how it is logged."""

from __future__ import annotations

import asyncio

import aiohttp
from slack_sdk.errors import SlackApiError, SlackClientError

# Errors of a Web API call that survived the retry handlers.
SLACK_FAILURES = (SlackApiError, SlackClientError, aiohttp.ClientError, asyncio.TimeoutError, OSError)


def describe(exc: BaseException) -> str:
    if isinstance(exc, SlackApiError):
        response = exc.response
        return f"HTTP {response.status_code}: {response.get('error') if isinstance(response.data, dict) else response.data!r}"
    return f"{type(exc).__name__}: {exc}"
