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


def for_now(exc: BaseException) -> bool:
    """Whether a failed call may work later: Slack's 5xx and rate limits, dropped connections
    and timeouts; not a request Slack refused (4xx: a bad argument, a missing scope)."""
    if isinstance(exc, SlackApiError):
        status = exc.response.status_code if exc.response is not None else 0
        return status == 429 or status >= 500
    return isinstance(exc, SLACK_FAILURES)


def retry_after(exc: BaseException) -> float | None:
    """Slack's Retry-After (seconds) of a rate-limited call, if it said."""
    if not isinstance(exc, SlackApiError) or exc.response is None:
        return None
    value = (exc.response.headers or {}).get("Retry-After") or (exc.response.headers or {}).get("retry-after")
    try:
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None
