"""Teams end to end: real activity payloads posted to CareDesk's aiohttp server with a signed
Bot Framework token; what the bot sends goes to a fake connector service."""

from __future__ import annotations

import asyncio
import copy
import logging
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from bot.app.desk import Desk
from bot.domain.clock import ManualClock
from bot.domain.config import Settings
from tests.teams.conftest import (
    BOT_ID,
    CARD_TYPE,
    OUTBOUND_TOKEN,
    buttons,
    card_of,
    card_text,
    load_activity,
    start_bot,
    teams_config,
    teams_env,
)

LOTTE = "lotte.peeters@brasseriedeklok.be"
DESCRIPTION = "Printing an invoice fails with error 42 since this morning's update"


def by_title(card, title):
    matches = [b for b in buttons(card) if b["title"] == title]
    assert matches, (title, [b["title"] for b in buttons(card)])
    return matches[0]


async def test_personal_chat_guided_ticket_through_text_and_card_clicks(bot_on_both):
    bot = bot_on_both
    posted = await bot.say("new ticket")
    assert "What kind of ticket is it?" in card_text(card_of(posted))
    posted = await bot.click(posted, by_title(card_of(posted), "Incident (a disruption)"))
    # The used card was replaced by one without buttons that shows the answer.
    put = bot.fake.sent("PUT")[-1]
    assert put["activity_id"] == bot.fake.sent("POST")[0]["response_id"]
    assert buttons(card_of(put)) == [] and "Your answer: Incident (a disruption)" in card_text(card_of(put))
    posted = await bot.click(posted, buttons(card_of(posted))[0])  # keep the directory's contact details
    for text in ("Invoicing module", DESCRIPTION, "Open an invoice, press Print", "Restarted; same on another PC"):
        posted = await bot.say(text)
    posted = await bot.click(posted, by_title(card_of(posted), "Normal"))
    assert "Please check your ticket" in card_text(card_of(posted))
    posted = await bot.click(posted, by_title(card_of(posted), "Create the ticket"))
    assert "CS-2026-00001" in card_text(card_of(posted))
    ticket = await bot.desk.store.get_ticket("CS-2026-00001")
    assert (ticket.requester_email, ticket.module, ticket.channel) == (LOTTE, "Invoicing module", "msteams")
    # Every outbound call carried the token from the configured token endpoint.
    assert {r["authorization"] for r in bot.fake.requests if r["kind"] != "failed"} == {f"Bearer {OUTBOUND_TOKEN}"}
    assert bot.fake.token_requests[0]["scope"] == "https://api.botframework.com/.default"
    assert len(bot.fake.token_requests) == 1  # cached
    # A second click on the used confirmation creates nothing.
    await bot.click(posted, {"data": {"action": "new_ticket:summary:00000000", "value": "confirm"}})
    assert len(await bot.desk.store.list_tickets()) == 1


async def test_ticket_command_opens_a_form_card_errors_then_creates(bot):
    posted = await bot.say("ticket")
    form = card_of(posted)
    inputs = {e["id"]: e for e in form["body"] if e["type"].startswith("Input.")}
    assert {"kind", "name", "email", "phone", "module", "description", "urgency"} <= set(inputs)
    assert inputs["description"]["isMultiline"] and inputs["description"]["isRequired"]
    assert inputs["email"]["value"] == LOTTE  # prefilled from the directory
    submit = buttons(form)[0]
    assert submit["data"]["_confirmed"] == "1" and submit["data"]["action"] == "form:new_ticket"
    values = {k: e.get("value", "") for k, e in inputs.items()}
    values.update(kind="incident", module="Invoicing module", description="too short")
    await bot.click(posted, submit, inputs={k: str(v) for k, v in values.items()})
    assert await bot.desk.store.list_tickets() == []
    errors_card = card_of(bot.fake.sent("PUT")[-1])
    attention = [e["text"] for e in errors_card["body"] if e.get("color") == "attention"]
    assert attention, "field errors are shown in the card"
    assert any(e.get("id") == "module" and e.get("value") == "Invoicing module" for e in errors_card["body"])
    values.update(description=DESCRIPTION, reproduce="Open an invoice and press Print", diagnostics="Restarted")
    posted = await bot.click(posted, submit, inputs={k: str(v) for k, v in values.items()})
    assert "CS-2026-00001" in card_text(card_of(posted))
    summary_card = card_of(bot.fake.sent("PUT")[-1])
    assert buttons(summary_card) == [] and "Invoicing module" in card_text(summary_card)
    assert not any(e["type"].startswith("Input.") for e in summary_card["body"])


async def test_action_execute_invoke_answers_with_the_refreshed_card(bot_on_both):
    bot = bot_on_both
    posted = await bot.say("ticket")
    form = card_of(posted)
    submit = buttons(form)[0]
    assert submit["type"] == "Action.Execute" and submit["fallback"]["type"] == "Action.Submit"
    values = {e["id"]: str(e.get("value", "")) for e in form["body"] if e["type"].startswith("Input.")}
    values.update(kind="service_request", module="Reports", description="Please add the VAT number to the invoice layout")
    invoke = copy.deepcopy(load_activity("invoke.adaptiveCard_action.teams-net.json"))
    invoke.update(serviceUrl=bot.fake.service_url, recipient={"id": BOT_ID, "name": "CareDesk"},
                  replyToId=posted["response_id"])
    invoke["from"] = {"id": "29:lotte", "aadObjectId": "aad-lotte", "name": "Lotte Peeters"}
    # Lotte's tenant (the example directory binds it to her company), not the sample's.
    invoke["conversation"]["tenantId"] = "tenant-1"
    invoke["channelData"]["tenant"] = {"id": "tenant-1"}
    invoke["value"]["action"] = {"type": "Action.Execute", "verb": submit["verb"], "data": {**submit["data"], **values}}
    status, body = await bot.post(invoke)
    assert status == 200
    assert body["statusCode"] == 200 and body["type"] == CARD_TYPE
    assert buttons(body["value"]) == [] and "Reports" in card_text(body["value"])
    tickets = await bot.desk.store.list_tickets()
    assert [t.kind.value for t in tickets] == ["service_request"]
    assert tickets[0].number in card_text(card_of(bot.fake.sent("POST")[-1]))
    assert bot.fake.sent("PUT") == []  # Universal Actions refresh in place: no update call
    # Redelivered invoke: the same card again, nothing created or sent.
    sent = len(bot.fake.sent())
    status, again = await bot.post(invoke)
    assert status == 200 and again["type"] == CARD_TYPE
    assert len(await bot.desk.store.list_tickets()) == 1 and len(bot.fake.sent()) == sent


async def test_invoke_with_field_errors_returns_the_form_with_errors(bot):
    posted = await bot.say("quote")
    form = card_of(posted)
    submit = buttons(form)[0]
    invoke = bot.activity("29:lotte", None, kind="invoke", name="adaptiveCard/action",
                          value={"action": {"type": "Action.Execute", "verb": submit["verb"],
                                            "data": {**submit["data"], "service": "teamviewer", "date": "",
                                                     "time": "25:99", "duration": "abc"}}, "trigger": "manual"})
    status, body = await bot.post(invoke)
    assert status == 200 and body["type"] == CARD_TYPE
    refreshed = body["value"]
    assert [e for e in refreshed["body"] if e.get("color") == "attention"]
    assert any(e.get("id") == "service" and e.get("value") == "teamviewer" for e in refreshed["body"])
    assert buttons(refreshed), "the form can be corrected and sent again"


async def test_install_welcome_once(bot):
    update = copy.deepcopy(load_activity("conversationUpdate.membersAdded.personal.docs.json"))
    update.update(serviceUrl=bot.fake.service_url, recipient={"id": BOT_ID, "name": "CareDesk"},
                  conversation={"conversationType": "personal", "id": "a:install-1"})
    update["from"] = {"id": "29:lotte", "aadObjectId": "aad-lotte"}
    update["membersAdded"] = [{"id": BOT_ID}, {"id": "29:lotte", "aadObjectId": "aad-lotte"}]
    status, _ = await bot.post(update)
    assert status == 200
    [welcome] = bot.fake.sent("POST")
    text = card_text(card_of(welcome))
    assert "servicedesk@caresolutions.be" in text and "+32 3 800 5 800" in text
    assert buttons(card_of(welcome)), "the welcome offers what the bot can do"
    # installationUpdate for the same install, and a redelivery: no second welcome.
    install = {**update, "type": "installationUpdate", "action": "add", "id": "install-activity"}
    install.pop("membersAdded")
    assert (await bot.post(install))[0] == 200
    assert (await bot.post(update))[0] == 200
    assert len(bot.fake.sent("POST")) == 1
    reference = await bot.desk.store.get_conversation_ref("msteams", "aad-lotte")
    assert reference["conversation"]["id"] == "a:install-1"


async def test_team_install_welcome_in_the_channel(bot):
    update = copy.deepcopy(load_activity("conversationUpdate.membersAdded.team.docs.json"))
    update.update(serviceUrl=bot.fake.service_url)
    update["recipient"]["id"] = update["membersAdded"][0]["id"]
    status, _ = await bot.post(update)
    assert status == 200
    [welcome] = bot.fake.sent("POST")
    assert welcome["conversation"] == update["conversation"]["id"]
    # The installer is not in the fake's member list: no e-mail, no crash.
    assert await bot.desk.store.get_conversation_ref("msteams", "conversation:" + update["conversation"]["id"])


async def test_channel_mention_is_answered_in_the_thread_without_the_mention(bot):
    mention = copy.deepcopy(load_activity("message.channel.mention.teams-net.json"))
    mention.update(serviceUrl=bot.fake.service_url, text="<at>ridotest</at> help")
    mention["from"] = {"id": "29:camille", "aadObjectId": "aad-camille", "name": "Camille Dubois"}
    status, _ = await bot.post(mention)
    assert status == 200
    [reply] = bot.fake.sent("POST")
    assert reply["conversation"] == mention["conversation"]["id"]  # …;messageid=… : the thread
    assert reply["activity_id"] == mention["id"]  # a reply to the message
    text = card_text(card_of(reply))
    assert "I am CareDesk" in text and "What can I do for you?" in text
    assert "did not understand" not in text


async def test_commands_tickets_escalate_and_logtime(bot):
    reply = await bot.say("logtime")
    assert "Only service desk agents can log time" in card_text(card_of(reply))
    reply = await bot.say("temps", locale="fr-BE")
    assert "agents du service desk" in card_text(card_of(reply))
    now = bot.desk.now()
    bot.desk.clock.set(now - timedelta(hours=2))  # opened before the time logged below (now minus 45 minutes)
    await bot.desk.register_ticket(kind="incident", requester_email=LOTTE, module="Kassa",
                                   description="The till does not print receipts any more since Monday")
    bot.desk.clock.set(now)
    # An agent gets the time form, or logs in one line.
    form = card_of(await bot.say("logtime", user="29:sofie"))
    assert {"ticket", "duration", "service"} <= {e.get("id") for e in form["body"]}
    # The card is checked as the command is: time before the ticket was opened saves nothing and
    # gives the line that logs it anyway.
    posted = await bot.say("logtime", user="29:sofie")
    inputs = {e["id"]: str(e.get("value", "")) for e in card_of(posted)["body"] if e["type"].startswith("Input.")}
    inputs.update(ticket="CS-2026-00001", duration="15m", service="database",
                  date=(now - timedelta(days=1)).date().isoformat(), time="09:00")
    answer = await bot.click(posted, buttons(card_of(posted))[0], user="29:sofie", inputs=inputs)
    told = card_text(card_of(answer))
    assert "CS-2026-00001 was opened on" in told and "Nothing was logged" in told
    assert "logtime CS-2026-00001 15m database at " in told and await bot.desk.store.list_time_entries() == []
    logged = card_text(card_of(await bot.say("logtime CS-2026-00001 45m database", user="29:sofie")))
    assert "CS-2026-00001" in logged and "€61.64" in logged  # 0.75 h at 82.18 (a Thursday morning)
    assert len(await bot.desk.store.list_time_entries()) == 1
    reply = await bot.say("tickets")
    assert "CS-2026-00001" in card_text(card_of(reply)) and "Kassa" in card_text(card_of(reply))
    reply = await bot.say("escalate CS-2026-09999")
    assert "CS-2026-09999" in card_text(card_of(reply))
    reply = await bot.say("offerte", locale="nl-BE")
    assert any(e.get("id") == "service" for e in card_of(reply)["body"])


async def test_redelivered_activity_is_answered_once(bot):
    activity = bot.activity("29:lotte", "help", activity_id="same-id")
    assert (await bot.post(activity))[0] == 200
    assert (await bot.post(activity))[0] == 200
    assert len(bot.fake.sent("POST")) == 1
    command = bot.activity("29:lotte", "ticket", activity_id="same-command")
    await bot.post(command)
    await bot.post(command)
    assert len(bot.fake.sent("POST")) == 2


async def test_connector_failure_is_logged_and_creates_no_duplicate(bot, caplog):
    posted = await bot.say("ticket")
    form = card_of(posted)
    submit = buttons(form)[0]
    values = {e["id"]: str(e.get("value", "")) for e in form["body"] if e["type"].startswith("Input.")}
    values.update(kind="service_request", module="Reports", description="Please add the VAT number to the invoice layout")
    activity = bot.activity("29:lotte", None, value={**submit["data"], **values}, reply_to=posted["response_id"])
    bot.fake.fail_sends = True
    with caplog.at_level(logging.ERROR, logger="caredesk.teams"):
        status, _ = await bot.post(activity)
    assert status == 200
    assert any("could not" in r.getMessage() for r in caplog.records)
    assert len(await bot.desk.store.list_tickets()) == 1
    bot.fake.fail_sends = False
    assert (await bot.post(activity))[0] == 200  # Teams retries the same activity
    assert len(await bot.desk.store.list_tickets()) == 1
    assert bot.fake.sent("POST") == [posted]


async def test_member_lookup_failure_carries_on_without_email(bot, caplog):
    bot.fake.fail_members = True
    with caplog.at_level(logging.WARNING, logger="caredesk.teams"):
        reply = await bot.say("help")
    assert buttons(card_of(reply))
    assert any("member lookup" in r.getMessage() for r in caplog.records)


async def test_member_lookup_is_cached(bot):
    await bot.say("help")
    await bot.say("contacts")
    assert len([r for r in bot.fake.requests if r["kind"] == "member"]) == 1


async def test_slow_turn_answers_in_time_and_finishes_afterwards(sqlite_store, fake_bf):
    bot = await start_bot(sqlite_store, fake_bf, config=teams_config(fake_bf, response_deadline=0.2))
    try:
        original = bot.teams.channel.conversation.handle

        async def slow(turn):
            await asyncio.sleep(0.6)
            return await original(turn)

        bot.teams.channel.conversation.handle = slow
        status, _ = await bot.post(bot.activity("29:lotte", "help"))
        assert status == 202 and bot.fake.sent() == []
        await bot.teams.drain()
        assert len(bot.fake.sent("POST")) == 1
    finally:
        await bot.client.close()


async def test_without_app_id_the_endpoint_answers_503(sqlite_store, fake_bf):
    bot = await start_bot(sqlite_store, fake_bf, config=teams_config(fake_bf, app_id=None, app_password=None))
    try:
        status, body = await bot.post(bot.activity("29:lotte", "help"), token=None)
        assert status == 503 and body["error"] == "teams_not_configured"
        assert (await bot.client.get("/healthz")).status == 200
    finally:
        await bot.client.close()


async def test_developer_mode_on_loopback_runs_without_authentication(sqlite_store, fake_bf):
    config = teams_config(fake_bf, app_id=None, app_password=None, insecure_dev_mode=True)
    bot = await start_bot(sqlite_store, fake_bf, config=config)
    try:
        status, _ = await bot.post(bot.activity("29:lotte", "help"), token=None)
        assert status == 200
        [reply] = bot.fake.sent("POST")
        assert reply["authorization"] is None and bot.fake.token_requests == []
    finally:
        await bot.client.close()


async def test_developer_mode_is_refused_off_loopback(sqlite_store, fake_bf):
    # The composition root gives the channels the server's developer mode on loopback only.
    from adapters.server.channels import Channels
    from adapters.server.config import ServerConfig

    desk = Desk(Settings(), sqlite_store, ManualClock(datetime(2026, 11, 26, 10, tzinfo=ZoneInfo("Europe/Brussels"))))
    for host, developer_mode in (("0.0.0.0", False), ("127.0.0.1", True)):
        channels = Channels.of(desk, teams_env(fake_bf), ServerConfig(host=host, insecure_dev_mode=True))
        assert (channels.teams.accepting, channels.slack.config.insecure_dev_mode) == (developer_mode, developer_mode)
    off_loopback = Channels.of(desk, teams_env(fake_bf), ServerConfig(host="0.0.0.0", insecure_dev_mode=True))
    bot = await start_bot(sqlite_store, fake_bf, config=off_loopback.teams.config)
    try:
        status, _ = await bot.post(bot.activity("29:lotte", "help"), token=None)
        assert status == 503 and bot.fake.sent() == []
    finally:
        await bot.client.close()


async def test_bad_requests(bot):
    token = {"Authorization": f"Bearer {bot.token()}"}
    response = await bot.client.post("/api/messages", data="not json", headers={"Content-Type": "application/json", **token})
    assert response.status == 400
    response = await bot.client.post("/api/messages", data="x", headers={"Content-Type": "text/plain", **token})
    assert response.status == 415
    # Without a token, the body is not even read: 401 whatever it is.
    response = await bot.client.post("/api/messages", data="not json", headers={"Content-Type": "application/json"})
    assert response.status == 401


async def test_locale_picks_the_language(bot):
    reply = await bot.say("aide", user="29:emma", locale="fr-BE")
    assert "Que puis-je faire pour vous ?" in card_text(card_of(reply)) and card_of(reply)["lang"] == "fr"
    reply = await bot.say("help", user="29:emma", locale="nl-BE")
    assert card_of(reply)["lang"] == "nl"


async def test_same_activity_id_in_two_conversations_is_answered_in_both(bot_on_both):
    # Teams activity ids are millisecond timestamps, unique only within a conversation: two
    # people writing in the same millisecond bring the same id, and each is answered.
    bot = bot_on_both
    assert (await bot.post(bot.activity("29:lotte", "help", activity_id="1732960800123")))[0] == 200
    assert (await bot.post(bot.activity("29:camille", "help", activity_id="1732960800123")))[0] == 200
    answered = [r["conversation"] for r in bot.fake.sent("POST")]
    assert answered == ["a:personal-29:lotte", "a:personal-29:camille"]
    # The same for a command that opens a form (claimed by the channel, not the core).
    await bot.post(bot.activity("29:lotte", "ticket", activity_id="1732960800999"))
    await bot.post(bot.activity("29:emma", "ticket", activity_id="1732960800999"))
    assert len(bot.fake.sent("POST")) == 4
    # Within one conversation the id still means one delivery: Teams' retry is answered once.
    await bot.post(bot.activity("29:emma", "ticket", activity_id="1732960800999"))
    assert len(bot.fake.sent("POST")) == 4


def test_activity_key_is_bounded_and_tells_conversations_apart():
    from adapters.teams.channel import ActivityKey

    short = ActivityKey("a:personal-1", "1732960800123").encode()
    other = ActivityKey("a:personal-2", "1732960800123").encode()
    assert short != other and short.endswith("1732960800123")
    long_conversation = "a:" + "x" * 400
    long_id = ActivityKey(long_conversation, "9" * 300).encode()
    assert len(long_id) <= 200 and long_id != ActivityKey(long_conversation, "9" * 299).encode()


async def test_staff_in_teams_get_their_help_uren_and_status_as_typed(bot):
    """Issue 16 in Teams: the Dutch command list's `uren` logs time, `help` lists the staff
    commands in the agent's language, and a status is read as typed."""
    await bot.desk.register_ticket(kind="incident", requester_email=LOTTE, module="Kassa",
                                   description="The till does not print receipts any more since Monday")
    help_text = card_text(card_of(await bot.say("help", user="29:sofie", locale="nl-BE")))
    assert "uren CS-2026-00042 1u30 teamviewer" in help_text and "assign CS-2026-00042" in help_text
    # The ticket was opened just now: 45 minutes ending now start before it, asked in Dutch first.
    asked = card_text(card_of(await bot.say("uren CS-2026-00001 45m database", user="29:sofie", locale="nl-BE")))
    assert "CS-2026-00001 is geopend op" in asked and "Er is niets geregistreerd" in asked
    assert await bot.desk.store.list_time_entries() == []
    logged = card_text(card_of(await bot.say("uren CS-2026-00001 45m database bevestig", user="29:sofie",
                                             locale="nl-BE")))
    assert "Tijd geregistreerd" in logged and "61,64" in logged
    assert len(await bot.desk.store.list_time_entries()) == 1
    status = card_text(card_of(await bot.say("status CS-2026-00001 in behandeling", user="29:sofie", locale="nl-BE")))
    assert "In behandeling" in status
    assert (await bot.desk.store.get_ticket("CS-2026-00001")).status.value == "in_progress"
