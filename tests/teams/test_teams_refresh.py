"""Universal Actions where Teams users expect them: an escalation acknowledged by one manager
updates the card every manager received (`refresh` → `adaptiveCard/action` invoke → the card to
show), on both transports; someone outside the service desk learns nothing from a refresh."""

from __future__ import annotations

import copy
from typing import Any

from adapters.teams.refresh import REFRESH_VERB, with_refresh
from bot.app.escalations import Escalations
from bot.app.notifications import render
from bot.app.runner import TurnRunner
from bot.domain.model import EscalationReason
from bot.protocol import ids
from tests.hostile.test_identity import form, turn
from tests.teams.conftest import Bot, buttons, card_errors, card_of, card_text

LOTTE = "lotte.peeters@brasseriedeklok.be"


async def _escalated_to_both_managers(bot: Bot) -> str:
    """A ticket of Lotte's escalated to level 2: Naïda (level 1) and Pieter (level 2) are pinged
    in Teams, each in their personal chat with the bot (delivered as the outbox does)."""
    desk = bot.desk
    for user in ("29:naida", "29:pieter"):
        await bot.say("help", user=user)  # the bot learns where they can be reached
    response = await TurnRunner(desk).handle(turn(LOTTE, action="form:new_ticket", values=form(LOTTE, "Lotte")))
    number = response.ticket_number
    assert number
    ticket = await desk.store.get_ticket(number)
    escalations = Escalations(desk)
    outbox = [*await escalations.ping_messages(ticket, 1, "feedback", "too slow", LOTTE, "t:1"),
              *await escalations.ping_messages(ticket, 2, "feedback", "too slow", LOTTE, "t:2")]
    await desk.store.create_escalation(number, 2, EscalationReason.FEEDBACK, "too slow", LOTTE, desk.now(),
                                       outbox=outbox, idempotency_key=f"test:{number}")
    for message in await desk.store.list_outbox():
        if message.kind.startswith("escalation"):
            sent = await bot.teams.send_to_person(desk, message.recipient,
                                                  render(message.kind, message.payload, "en", desk.settings))
            assert sent
    return number


def _ping_to(bot: Bot, user: str) -> dict[str, Any]:
    [posted] = [r for r in bot.fake.sent("POST") if r["conversation"] == f"a:personal-{user}"
                and "attachments" in r["body"] and "refresh" in card_of(r)]
    return card_of(posted)


async def _invoke(bot: Bot, user: str, action: dict[str, Any], trigger: str = "manual") -> tuple[int, Any]:
    value = {"action": {"type": "Action.Execute", "verb": action["verb"], "data": action["data"]}, "trigger": trigger}
    return await bot.post(bot.activity(user, None, value=value, kind="invoke", name="adaptiveCard/action"))


async def test_a_ping_taken_by_one_manager_refreshes_for_the_other(bot_on_both):
    bot = bot_on_both
    number = await _escalated_to_both_managers(bot)
    naidas, pieters = _ping_to(bot, "29:naida"), _ping_to(bot, "29:pieter")
    assert naidas["refresh"]["userIds"] == ["29:naida"] and pieters["refresh"]["userIds"] == ["29:pieter"]
    assert naidas["refresh"]["action"]["verb"] == REFRESH_VERB and card_errors(naidas) == []

    # Looked at before anyone took it: the card stays as it was (buttons and all).
    status, body = await _invoke(bot, "29:naida", naidas["refresh"]["action"], trigger="automatic")
    assert status == 200 and body["type"] == "application/vnd.microsoft.card.adaptive"
    assert body["value"] == naidas and buttons(body["value"])

    # Pieter takes it with the card's own Action.Execute button.
    [ack] = [b for b in buttons(pieters) if b["data"].get("value") == f"ack:{number}"]
    status, body = await _invoke(bot, "29:pieter", ack)
    assert status == 200
    [taken] = await bot.desk.store.list_escalations(open_only=False, ticket_number=number)
    assert taken.acknowledged_by == "pieter.vandenbroeck@caresolutions.be"

    # Naïda's card, refreshed: who took it, no button left to press.
    status, body = await _invoke(bot, "29:naida", naidas["refresh"]["action"], trigger="automatic")
    assert status == 200 and body["type"] == "application/vnd.microsoft.card.adaptive"
    refreshed = body["value"]
    assert card_errors(refreshed) == []
    assert f"{number}: Pieter Van den Broeck took this at" in card_text(refreshed)
    assert buttons(refreshed) == [] and "refresh" not in refreshed
    # And Pieter's own: he took it.
    status, body = await _invoke(bot, "29:pieter", pieters["refresh"]["action"], trigger="automatic")
    assert f"{number}: you took this at" in card_text(body["value"])


async def test_a_refresh_from_outside_the_service_desk_gets_back_only_what_it_sent(bot):
    number = await _escalated_to_both_managers(bot)
    naidas = _ping_to(bot, "29:naida")
    [ack] = [b for b in buttons(naidas) if b["data"].get("value") == f"ack:{number}"]
    assert (await _invoke(bot, "29:naida", ack))[0] == 200
    forged = copy.deepcopy(naidas["refresh"]["action"])
    status, body = await _invoke(bot, "29:lotte", forged, trigger="automatic")
    assert status == 200
    assert "Naïda" not in card_text(body["value"]) and body["value"]["body"] == naidas["body"]
    status, body = await _invoke(bot, "29:lotte", {"verb": REFRESH_VERB, "data": {"action": REFRESH_VERB}})
    assert status == 400 and body["statusCode"] == 400


def test_only_a_card_with_an_acknowledge_button_gets_a_refresh():
    ack = {"type": "Action.Execute", "verb": "x", "title": "Take it",
           "data": {"action": str(ids.ESCALATION), "value": "ack:CS-2026-00001"}}
    view = {**ack, "data": {"action": str(ids.ESCALATION), "value": "view:CS-2026-00001"}}
    paging = {"type": "AdaptiveCard", "version": "1.5", "body": [{"type": "ActionSet", "actions": [ack]}]}
    other = {"type": "AdaptiveCard", "version": "1.5", "body": [{"type": "ActionSet", "actions": [view]}]}
    assert with_refresh(paging, "29:x")["refresh"]["action"]["data"]["ticket"] == "CS-2026-00001"
    assert "refresh" not in with_refresh(other, "29:x") and "refresh" not in with_refresh(paging, None)


async def test_an_emergency_page_taken_by_one_person_on_call_says_so_to_the_others(sqlite_store):
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from adapters.teams.refresh import answer
    from bot.app.desk import Desk
    from bot.domain.clock import ManualClock
    from bot.domain.config import Settings
    from bot.domain.directory import read_directory_file
    from tests.teams.conftest import ROOT

    await sqlite_store.replace_directory(read_directory_file(ROOT / "examples" / "directory.yaml"))
    desk = Desk(Settings(), sqlite_store, ManualClock(datetime(2026, 11, 28, 22, 30, tzinfo=ZoneInfo("Europe/Brussels"))))
    number = (await TurnRunner(desk).handle(turn(LOTTE, action="form:new_ticket", values=form(LOTTE, "Lotte")))).ticket_number
    page = await desk.store.create_escalation(number, 1, EscalationReason.EMERGENCY, "", LOTTE, desk.now(),
                                              idempotency_key=f"page:{number}")
    sent = {"type": "AdaptiveCard", "version": "1.5", "body": [{"type": "TextBlock", "text": "You are on call"}]}
    data = {"action": REFRESH_VERB, "ticket": number, "card": sent}
    still_open = await answer(desk, data, "29:pieter", "pieter.vandenbroeck@caresolutions.be", "en")
    assert still_open.body["value"]["body"] == sent["body"]
    await desk.store.acknowledge_escalation(page.id, "naida.jelacic@caresolutions.be", desk.now(), ())
    for lang, expected in (("en", "took this emergency at 22:30"), ("fr", "a pris cette urgence à 22:30"),
                           ("nl", "heeft deze noodoproep om 22:30 opgenomen")):
        reply = await answer(desk, data, "29:pieter", "pieter.vandenbroeck@caresolutions.be", lang)
        assert reply.status == 200 and card_errors(reply.body["value"]) == []
        text = card_text(reply.body["value"])
        assert "Naïda Jelacic" in text and expected in text and number in text
    mine = await answer(desk, data, "29:naida", "Naida.Jelacic@caresolutions.be", "en")
    assert f"{number}: you took this at 22:30" in card_text(mine.body["value"])
