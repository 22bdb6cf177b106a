"""The Direct Line 3.0 subset the portal page speaks, on SQLite and PostgreSQL: one conversation
per person, tokens bound to it, a message answered once however often it is sent, the stream
with watermarks, and the outbox's messages reaching an open page at once."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from adapters.portal import PortalChannel
from bot.app.desk import Desk
from bot.protocol.replies import Response, Text
from tests.portal.conftest import CARD_TYPE, EMMA, LOTTE, card_errors, portal_token


def cards(activities: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [a["content"] for activity in activities for a in activity.get("attachments") or ()
            if a.get("contentType") == CARD_TYPE]


def card_text(card: Any) -> str:
    found: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key in ("text", "title", "value"):
                if isinstance(node.get(key), str):
                    found.append(node[key])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(card)
    return " ".join(found)


def buttons(card: Any) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if str(node.get("type", "")).startswith("Action."):
                found.append(node)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(card)
    return found


def message(text: str, client_id: str) -> dict[str, Any]:
    return {"type": "message", "text": text, "locale": "en-US", "from": {"id": "r_web", "role": "user"},
            "channelData": {"clientActivityID": client_id}}


def click(button: dict[str, Any], client_id: str) -> dict[str, Any]:
    return {"type": "message", "value": button["data"], "locale": "en-US", "channelData": {"clientActivityID": client_id}}


@pytest.fixture
async def chat(store, serve_portal):
    server = await serve_portal(store)
    started = await server.start(await server.page_token(portal_token()))
    return server, started["conversationId"], started["token"]


async def test_one_conversation_per_person_and_tokens_bound_to_it(store, serve_portal):
    server = await serve_portal(store)
    first = await server.start(await server.page_token(portal_token()))
    again = await server.start(portal_token())  # the portal's own token starts it as well
    lotte = await server.start(await server.page_token(portal_token(LOTTE, name="Lotte Peeters")))
    assert first["conversationId"] == again["conversationId"] != lotte["conversationId"]
    assert first["streamUrl"].startswith("ws://127.0.0.1:") and "/stream?t=" in first["streamUrl"]
    emma_conv = first["conversationId"]
    # Lotte's token reaches nothing of Emma's conversation.
    status, _ = await server.post(emma_conv, lotte["token"], message("hello", "x1"))
    assert status == 403
    for path in (f"/conversations/{emma_conv}", f"/conversations/{emma_conv}/activities",
                 f"/conversations/{emma_conv}/stream?t={lotte['token']}"):
        async with server.http.get(server.url("/portal/v3/directline" + path),
                                   headers={"Authorization": f"Bearer {lotte['token']}"}) as response:
            assert response.status == 403
    # Neither does a page token before the conversation is started, nor a portal token.
    page_token = await server.page_token(portal_token())
    assert (await server.post(emma_conv, page_token, message("hello", "x2")))[0] == 403
    assert (await server.post(emma_conv, portal_token(), message("hello", "x3")))[0] == 403
    transcript = await server.transcript(emma_conv, first["token"])
    assert all(a["from"]["role"] == "bot" for a in transcript["activities"])  # the welcome only


async def test_the_first_visit_is_welcomed_once_and_a_message_answered(chat):
    server, conv, token = chat
    status, body = await server.post(conv, token, message("ticket", "c-1"))
    assert status == 200 and body["id"].startswith(conv + "|")
    activities = (await server.transcript(conv, token))["activities"]
    assert [a["from"]["role"] for a in activities] == ["bot", "user", "bot"]
    welcome, echo, answer = activities
    assert "What can I do for you?" in card_text(cards([welcome])[0])
    assert echo["text"] == "ticket" and echo["channelData"]["clientActivityID"] == "c-1" and echo["id"] == body["id"]
    assert answer["replyToId"] == body["id"]
    assert "What kind of ticket is it?" in card_text(cards([answer])[0])
    # Another start (a reload) is no second welcome.
    await server.start(portal_token())
    assert len((await server.transcript(conv, token))["activities"]) == 3
    for card in cards(activities):
        assert card_errors(card) == []
        assert all(b["type"] == "Action.Submit" for b in buttons(card))  # what Web Chat posts back


async def test_a_message_sent_again_is_kept_and_answered_once(chat):
    server, conv, token = chat
    await server.post(conv, token, message("ticket", "c-1"))
    kind = cards((await server.transcript(conv, token))["activities"])[-1]
    incident = next(b for b in buttons(kind) if "Incident" in b["title"])
    first = await server.post(conv, token, click(incident, "c-2"))
    again = await server.post(conv, token, click(incident, "c-2"))  # the page retries after a drop
    assert first == again and first[0] == 200
    activities = (await server.transcript(conv, token))["activities"]
    assert [a["from"]["role"] for a in activities] == ["bot", "user", "bot", "user", "bot"]
    assert activities[3]["text"] == incident["title"]  # the person's choice, as they saw it
    # One answer, to the next question: the click was taken once.
    assert "What kind of ticket is it?" not in card_text(cards([activities[4]])[0])
    assert len([m for m in await server.desk.store.list_outbox() if m.kind == "reply"]) == 2


async def test_an_answer_its_process_did_not_show_is_shown_once(chat, monkeypatch):
    server, conv, token = chat
    channel = server.portal.channel
    real_show = PortalChannel._show
    calls = []

    async def dies_once(self, conversation, response, reply_to_id):
        calls.append(response.reply_key)
        if len(calls) == 1:
            raise RuntimeError("the process died here")
        await real_show(self, conversation, response, reply_to_id)

    monkeypatch.setattr(PortalChannel, "_show", dies_once)
    status, _ = await server.post(conv, token, message("ticket", "c-1"))
    assert status == 500
    assert [a["from"]["role"] for a in (await server.transcript(conv, token))["activities"]] == ["bot", "user"]
    # Web Chat sends it again: the turn is not run twice; its saved answer is shown.
    status, _ = await server.post(conv, token, message("ticket", "c-1"))
    assert status == 200
    activities = (await server.transcript(conv, token))["activities"]
    assert [a["from"]["role"] for a in activities] == ["bot", "user", "bot"]
    assert "What kind of ticket is it?" in card_text(cards(activities)[-1])
    # The outbox's dispatcher, coming late with the same reply, shows nothing twice.
    owed = [m for m in await server.desk.store.list_outbox() if m.kind == "reply"]
    assert owed and all(m.status == "sent" for m in owed)
    from bot.protocol.stored import response_from_json

    await channel.post_reply(server.desk, owed[0].payload["to"],
                             _with_key(response_from_json(owed[0].payload["response"]), owed[0].idempotency_key))
    assert len((await server.transcript(conv, token))["activities"]) == 3


def _with_key(response: Response, key: str) -> Response:
    from dataclasses import replace

    return replace(response, reply_key=key)


async def test_bad_activities_are_refused_and_change_nothing(chat):
    server, conv, token = chat
    before = (await server.transcript(conv, token))["activities"]
    for body in ({"type": "message"}, {"type": "message", "text": 42}, {"type": "message", "text": "hi",
                                                                          "channelData": {"clientActivityID": "x" * 500}}):
        status, answer = await server.post(conv, token, body)
        assert status == 400 and answer["error"]["code"] == "BadArgument"
    async with server.http.post(server.url(f"/portal/v3/directline/conversations/{conv}/activities"),
                                data=b"{not json", headers={"Authorization": f"Bearer {token}",
                                                            "Content-Type": "application/json"}) as response:
        assert response.status == 400
    status, _ = await server.post(conv, token, {"type": "typing"})  # nothing to answer
    assert status == 200
    assert (await server.transcript(conv, token))["activities"] == before


async def receive_group(ws, timeout: float = 5.0) -> dict[str, Any]:
    while True:
        msg = await asyncio.wait_for(ws.receive(), timeout)
        group = json.loads(msg.data)
        if "watermark" in group:  # (typing indicators come without one)
            return group


async def test_the_stream_sends_from_the_watermark_and_news_at_once(chat):
    server, conv, token = chat
    await server.post(conv, token, message("ticket", "c-1"))
    async with server.http.get(server.url(f"/portal/v3/directline/conversations/{conv}"),
                               params={"watermark": "1"}, headers={"Authorization": f"Bearer {token}"}) as response:
        assert response.status == 200
        reconnect = await response.json()
    assert reconnect["conversationId"] == conv and reconnect["streamUrl"].endswith("&watermark=1")
    async with server.http.ws_connect(reconnect["streamUrl"]) as ws:
        group = await receive_group(ws)
        assert [a["id"] for a in group["activities"]] == [f"{conv}|0000002", f"{conv}|0000003"]
        assert group["watermark"] == "3"
        # What the outbox sends (a ticket update) reaches the open page at once.
        update = Response((Text("Ticket CS-2026-00001 is now in progress."),), "en")
        assert await server.portal.channel.send_to_person(server.desk, EMMA.upper(), update)
        group = await receive_group(ws)
        assert group["watermark"] == "4" and "in progress" in card_text(cards(group["activities"])[0])
        # ... also when another process (an outbox worker) writes it: the stream reads the store.
        other = PortalChannel(Desk(server.desk.settings, server.desk.store, server.desk.clock))
        assert await other.send_to_person(server.desk, EMMA, Response((Text("Solution date set."),), "en"))
        group = await receive_group(ws, timeout=5.0)
        assert group["watermark"] == "5" and "Solution date" in card_text(cards(group["activities"])[0])
    # Nobody who never opened the portal chat is reached there.
    assert not await server.portal.channel.send_to_person(server.desk, LOTTE, update)


async def test_a_token_is_refreshed_for_the_same_conversation(chat):
    server, conv, token = chat
    async with server.http.post(server.url("/portal/v3/directline/tokens/refresh"),
                                headers={"Authorization": f"Bearer {token}"}) as response:
        assert response.status == 200
        fresh = await response.json()
    assert fresh["conversationId"] == conv
    assert (await server.post(conv, fresh["token"], message("help", "c-9")))[0] == 200
    async with server.http.post(server.url("/portal/v3/directline/tokens/refresh"),
                                headers={"Authorization": "Bearer " + portal_token()}) as response:
        assert response.status == 403  # the portal's token is for opening the page only


async def test_a_solution_date_set_by_an_agent_reaches_the_open_page_through_the_outbox(chat):
    """An agent's solution date on a ticket opened in the portal: the dispatcher delivers it to
    the portal first (the channel the ticket came from), and the open stream shows it."""
    from adapters.server.delivery import ChannelDelivery
    from bot.app.outbox import Dispatcher
    from bot.app.runner import TurnRunner
    from bot.protocol.turn import Turn, UserIdentity

    server, conv, token = chat
    desk = server.desk
    ticket = await desk.register_ticket(kind="service_request", requester_email=EMMA, module="Reports",
                                        description="How do I export the monthly report with the VAT column?",
                                        channel="portal")
    async with server.http.ws_connect(server.url(f"/portal/v3/directline/conversations/{conv}/stream?t={token}"
                                                 "&watermark=1")) as ws:
        sofie = Turn("console", "local", "c:sofie",
                     UserIdentity("sofie", "sofie.janssens@caresolutions.be", locale="en"),
                     text=f"solution {ticket.number} 2026-12-03")
        await TurnRunner(desk).handle(sofie)
        outbox = Dispatcher(desk, ChannelDelivery(desk, {"msteams": _never, "portal": server.portal.channel.send_to_person}))
        assert await outbox.run_once() == 1
        group = await receive_group(ws)
        text = card_text(cards(group["activities"])[0])
        assert ticket.number in text and "2026" in text
        assert all(card_errors(card) == [] for card in cards(group["activities"]))
    assert await outbox.run_once() == 0  # sent once


async def _never(desk, email, response) -> bool:
    raise AssertionError("the portal comes first for a ticket opened there")


async def test_the_portals_messages_are_counted_in_the_metrics(chat):
    # A person's post is the portal's request (the page and its stream are not: they stay open).
    from prometheus_client.parser import text_string_to_metric_families

    async def posted() -> float:
        async with server.http.get(server.url("/metrics")) as response:
            assert response.status == 200
            text = await response.text()
        return sum(s.value for family in text_string_to_metric_families(text) for s in family.samples
                   if s.name == "caredesk_http_requests_total"
                   and s.labels == {"channel": "portal", "kind": "message", "status": "200"})

    server, conv, token = chat
    before = await posted()
    await server.post(conv, token, message("ticket", "m-1"))
    await server.transcript(conv, token)
    assert await posted() - before == 1
