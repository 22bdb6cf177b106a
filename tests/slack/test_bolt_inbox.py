"""The seams between Bolt and the durable inbox: every ack writes its request to the inbox (one
row, before the 200), the server's lazy listener runner starts nothing, and an inbox worker hands
the stored request back to Bolt marked lazy-only, which runs that one lazy function."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timezone
from typing import Any

import pytest
from slack_bolt.app.async_app import AsyncApp
from slack_bolt.authorization import AuthorizeResult
from slack_bolt.request.async_request import AsyncBoltRequest

from adapters.slack.app import InboxLazyListenerRunner, LazyListenerNotRun, lazy_only_request, run_lazy_only
from bot.store.ports import InboxItem, NewInboxItem, StoreUnavailableError
from tests.slack.conftest import LOTTE, TEAM, block_text, form_body, load_json
from tests.slack.test_commands import TICKET_VALUES, opened_form

# ---- with Bolt alone -----------------------------------------------------------------------------------


def bolt_app(calls: list[str]) -> AsyncApp:
    async def authorize(enterprise_id: Any, team_id: Any, user_id: Any) -> AuthorizeResult:
        return AuthorizeResult(enterprise_id=enterprise_id, team_id=team_id, user_id=user_id, bot_token="xoxb-test")

    app = AsyncApp(authorize=authorize, request_verification_enabled=False, process_before_response=True)
    app.listener_runner.lazy_listener_runner = InboxLazyListenerRunner(app.logger)

    async def write_then_ack(ack: Any) -> None:
        calls.append("ack")
        await ack()

    async def first(body: dict) -> None:
        calls.append("first")

    async def second(body: dict) -> None:
        calls.append(f"second {body['text']}")

    async def broken(body: dict) -> None:
        raise StoreUnavailableError("database away")

    async def other(body: dict) -> None:
        calls.append("other")

    app.command("/x")(ack=write_then_ack, lazy=[first, second, broken])
    app.command("/y")(ack=write_then_ack, lazy=[other])
    return app


def stored(kind: str, payload: dict[str, Any]) -> InboxItem:
    now = datetime.now(timezone.utc)
    return InboxItem(1, "slack", kind, f"slack:{TEAM}:{LOTTE}", payload, None, 0, "working", 1, now, now)


COMMAND = {"command": "/x", "text": "hello", "team_id": TEAM, "user_id": LOTTE, "channel_id": "C111"}


async def test_a_lazy_only_request_runs_only_the_named_lazy_function_and_no_ack() -> None:
    calls: list[str] = []
    app = bolt_app(calls)
    item = stored("second", COMMAND)
    request = lazy_only_request(item)
    assert request.lazy_only and request.lazy_function_name == "second"
    await run_lazy_only(app, item)
    assert calls == ["second hello"]


async def test_the_servers_lazy_runner_starts_nothing_after_the_ack() -> None:
    calls: list[str] = []
    app = bolt_app(calls)
    response = await app.async_dispatch(AsyncBoltRequest(
        body="command=%2Fx&text=hello&team_id=T111&user_id=W111&channel_id=C111",
        headers={"content-type": "application/x-www-form-urlencoded"}))
    assert response.status == 200
    await asyncio.sleep(0.05)
    assert calls == ["ack"]  # the lazy functions are the inbox worker's to run


async def test_a_failing_lazy_function_fails_its_inbox_item_and_so_does_one_bolt_did_not_run() -> None:
    app = bolt_app([])
    with pytest.raises(StoreUnavailableError):  # the inbox worker waits for the database and retries
        await run_lazy_only(app, stored("broken", COMMAND))
    with pytest.raises(LazyListenerNotRun):  # retried, then dead-lettered: never marked done
        await run_lazy_only(app, stored("no_such_function", COMMAND))


# ---- through the server ----------------------------------------------------------------------------------


async def test_the_servers_bolt_app_has_the_inbox_lazy_runner(env):
    assert isinstance(env.channel.app.listener_runner.lazy_listener_runner, InboxLazyListenerRunner)


def _shortcut(env) -> tuple[str, str]:
    return form_body({
        "type": "message_action", "team": {"id": TEAM, "domain": "d"}, "user": {"id": LOTTE, "team_id": TEAM},
        "channel": {"id": "C111", "name": "support"}, "callback_id": "create_ticket_from_message",
        "trigger_id": "333.444.valid", "message_ts": "1.2", "message": {"type": "message", "ts": "1.2", "text": "broken"},
        "response_url": env.fake.response_url("actions/T111/111/shortcut")}), "application/x-www-form-urlencoded"


def _closed(view: dict[str, Any]) -> tuple[str, str]:
    return form_body({"type": "view_closed", "team": {"id": TEAM}, "user": {"id": LOTTE, "team_id": TEAM},
                      "view": {**view, "state": {"values": {}}}, "is_cleared": False}), \
        "application/x-www-form-urlencoded"


async def _send(env, case: str, view: dict[str, Any] | None) -> Any:
    now = f"{time.time():.6f}"
    if case == "dm":
        return await env.dm("contacts", drain=False)
    if case == "mention":
        event = {**load_json("payloads/event_callback.app_mention.bolt.json")["event"], "user": LOTTE,
                 "channel": "C111", "text": "<@U0LAN0Z89> contacts", "ts": now}
        return await env.event(event, drain=False)
    if case == "home":
        return await env.event({"type": "app_home_opened", "user": LOTTE, "channel": f"D{LOTTE}", "tab": "home",
                                "event_ts": now}, drain=False)
    if case == "command":
        return await env.command("/tickets", drain=False)
    if case == "click":
        return await env.block_action("cd.1.menu", "contacts", drain=False)
    if case == "shortcut":
        return await env.post(*_shortcut(env), drain=False)
    if case == "modal_closed":
        return await env.post(*_closed(view), drain=False)
    assert case == "submission"
    return await env.submit(view, TICKET_VALUES, drain=False)


KINDS = {"dm": "answer_dm", "mention": "answer_mention", "home": "publish_home_tab", "command": "run_command",
         "click": "run_action", "shortcut": "open_shortcut_form", "modal_closed": "end_closed_modal",
         "submission": "create_from_submission"}


@pytest.mark.parametrize("case", sorted(KINDS))
async def test_each_kind_of_request_is_written_to_the_inbox_once_before_its_200(env, case):
    view = None
    if case in ("modal_closed", "submission"):
        await env.command("/ticket")
        view = opened_form(env)
    before = len(await env.desk.store.list_inbound())
    store = env.desk.store
    original = store.enqueue_inbound
    release = asyncio.Event()

    async def held(items, now):
        await release.wait()
        return await original(items, now)

    store.enqueue_inbound = held
    try:
        sent = asyncio.create_task(_send(env, case, view))
        await asyncio.sleep(0.2)
        assert not sent.done()  # no ack while the row is not written
    finally:
        release.set()
        store.enqueue_inbound = original
    response = await sent
    assert response.status == 200
    rows = (await store.list_inbound())[before:]
    assert [(row.kind, row.channel, row.conversation_key) for row in rows] == [(KINDS[case], "slack",
                                                                                 f"slack:{TEAM}:{LOTTE}")]
    assert "token" not in rows[0].payload
    await env.channel.drain()


async def test_a_row_written_before_the_listeners_were_bolts_is_still_worked_on(env):
    """Rows of the earlier inbox carry the kind of request ("message"), not a lazy function."""
    sample = load_json("payloads/event_callback.message_im.docs.json")
    body = {**sample, "team_id": TEAM, "event_id": "EvEARLIER1",
            "event": {**sample["event"], "user": LOTTE, "channel": f"D{LOTTE}", "text": "contacts"}}
    await env.desk.store.enqueue_inbound([NewInboxItem("slack", "message", f"slack:{TEAM}:{LOTTE}", body,
                                                       "event:EvEARLIER1", 1)], datetime.now(timezone.utc))
    await env.channel.drain()
    assert "Service desk contacts" in block_text(env.fake.last_message().json_param("blocks"))
    assert [row.status for row in await env.desk.store.list_inbound()] == ["done"]


@pytest.mark.parametrize("case", ["dm", "command", "click", "submission"])
async def test_with_the_database_away_the_ack_is_a_503_and_nothing_is_written(env, case):
    view = None
    if case == "submission":
        await env.command("/ticket")
        view = opened_form(env)
    store = env.desk.store
    before = await store.list_inbound()
    original = store.enqueue_inbound

    async def away(items, now):
        raise StoreUnavailableError("database away")

    store.enqueue_inbound = away
    try:
        response = await _send(env, case, view)
    finally:
        store.enqueue_inbound = original
    assert response.status == 503 and (await response.json()) == {"error": "unavailable"}  # Slack retries
    assert await store.list_inbound() == before


async def test_ssl_check_is_answered_by_bolt_and_writes_nothing(env):
    response = await env.post("ssl_check=1&token=x", "application/x-www-form-urlencoded")
    assert response.status == 200
    assert await env.desk.store.list_inbound() == []


async def test_no_ack_waits_on_slacks_web_api(env):
    env.fake.fail("auth.test", 500)
    assert (await env.dm("contacts", drain=False)).status == 200
    assert (await env.command("/tickets", drain=False)).status == 200
    assert env.fake.of("auth.test", ok_only=False) == []
    assert len(await env.desk.store.list_inbound()) == 2
    await env.channel.drain()


@pytest.mark.parametrize("case", sorted(KINDS))
async def test_no_ack_copies_its_request_for_a_lazy_function(env, case, monkeypatch):
    # The work is in the inbox: Bolt starts no lazy function in the server, and so builds no copy
    # of the request for one (a deep copy of the whole body, a modal's view included).
    from slack_bolt.listener.asyncio_runner import AsyncioListenerRunner

    view = None
    if case in ("modal_closed", "submission"):
        await env.command("/ticket")
        view = opened_form(env)
    copies: list[str] = []
    original = AsyncioListenerRunner._build_lazy_request

    def counting(self, request, name):
        copies.append(name)
        return original(self, request, name)

    monkeypatch.setattr(AsyncioListenerRunner, "_build_lazy_request", counting)
    response = await _send(env, case, view)
    assert response.status == 200
    assert copies == []
    monkeypatch.undo()
    await env.channel.drain()  # and the worker still does the work, lazy-only
    assert (await env.desk.store.list_inbound())[-1].status == "done"
