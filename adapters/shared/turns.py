"""Running a turn on the core the same way from every channel: a platform delivery answered
once, and an unexpected failure turned into a polite apology in the person's language."""

from __future__ import annotations

import logging

from bot.app.desk import Desk
from bot.app.runner import TurnRunner
from bot.i18n import normalize_language, translate
from bot.protocol.replies import Response, Text, Tone
from bot.protocol.turn import Turn
from bot.store.ports import StoreUnavailableError

log = logging.getLogger("caredesk.turns")


def apology(desk: Desk, locale: str | None, key: str) -> Response:
    lang = normalize_language(locale, desk.settings.default_language)
    return Response((Text(translate(lang, key), Tone.ERROR),), lang)


async def answer(runner: TurnRunner, turn: Turn, *, apology_key: str) -> Response:
    """The core's answer to a turn; an unexpected failure becomes an apology, never silence.
    A database outage is raised, not apologised for: the caller (an inbox worker, a platform
    that resends) waits and does the turn again, so the person gets the real answer."""
    try:
        return await runner.handle(turn)
    except StoreUnavailableError:
        raise
    except Exception:
        log.exception("the core failed on a %s turn", turn.channel)
        return apology(runner.desk, turn.user.locale, apology_key)


async def first_delivery(desk: Desk, channel: str, delivery_id: str | None) -> bool:
    """Claim a platform delivery the core does not see itself (a command that opens a form, a
    welcome): False when it was seen already, so a platform's retry has one effect."""
    if not delivery_id:
        return True
    claimed = await desk.store.claim_event(channel, delivery_id, desk.now())
    if not claimed:
        log.info("duplicate %s delivery %s ignored", channel, delivery_id)
    return claimed
