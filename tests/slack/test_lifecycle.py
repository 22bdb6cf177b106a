"""Socket Mode against a local fake (apps.connections.open + a WebSocket), and the background
work at shutdown: waited for when it ends soon, cancelled when it does not."""

from __future__ import annotations

import asyncio
import time

from tests.slack.conftest import CAMILLE, LOTTE, TEAM, block_text, load_json, make_desk, slack_config, start_env


async def wait_for(condition, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


async def test_socket_mode_receives_an_event_acks_it_and_answers(sqlite_store, fake_slack):
    from adapters.slack import SlackChannel, start_socket_mode

    body = load_json("payloads/event_callback.message_im.docs.json")
    body.update(team_id=TEAM, event={**body["event"], "user": LOTTE, "channel": f"D{LOTTE}", "text": "contacts"},
                event_id="EvSOCKET1")
    fake_slack.socket_envelopes.append({"envelope_id": "env-1", "type": "events_api", "accepts_response_payload": False,
                                        "retry_attempt": 0, "retry_reason": "", "payload": body})
    desk = await make_desk(sqlite_store)
    config = slack_config(fake_slack, app_token="xapp-test", signing_secret=None)
    handle = await start_socket_mode(SlackChannel(desk, config=config))
    try:
        await wait_for(lambda: fake_slack.messages() and any(a.get("envelope_id") == "env-1" for a in fake_slack.socket_acks))
        await handle.channel.drain()
        assert fake_slack.of("apps.connections.open")
        answer = fake_slack.last_message()
        assert answer.params["channel"] == f"D{LOTTE}" and "Service desk contacts" in block_text(answer.json_param("blocks"))
    finally:
        await handle.close()


async def test_socket_mode_needs_an_app_token(sqlite_store, fake_slack):
    import pytest

    from adapters.slack import SlackChannel, start_socket_mode

    desk = await make_desk(sqlite_store)
    with pytest.raises(RuntimeError, match="SLACK_APP_TOKEN"):
        await start_socket_mode(SlackChannel(desk, config=slack_config(fake_slack)))


async def test_requests_are_acknowledged_before_the_work_is_done(env):
    release = asyncio.Event()
    original = env.channel.conversation.handle

    async def slow_handle(turn):
        await release.wait()
        return await original(turn)

    env.channel.conversation.handle = slow_handle
    response = await env.dm("contacts", drain=False)
    # Acknowledged with the work still to do, and that work is written down (not only in memory).
    assert response.status == 200 and env.fake.messages() == []
    assert [i.kind for i in await env.desk.store.list_inbound()] == ["answer_dm"]
    assert await env.desk.store.count_unfinished_inbound() == 1
    release.set()
    await env.channel.drain()
    assert await env.desk.store.count_unfinished_inbound() == 0 and len(env.fake.messages()) == 1
    assert [i.status for i in await env.desk.store.list_inbound()] == ["done"]


async def test_shutdown_waits_for_short_work_and_cancels_the_rest(sqlite_store, fake_slack):
    env = await start_env(sqlite_store, fake_slack)
    finished, cancelled = [], []

    async def short():
        await asyncio.sleep(0.05)
        finished.append(True)

    async def endless():
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            cancelled.append(True)
            raise

    env.channel.spawn(short())
    env.channel.spawn(endless())
    started = time.monotonic()
    await env.channel.close(grace=0.5)
    assert finished == [True] and cancelled == [True] and not env.channel.pending
    assert time.monotonic() - started < 3
    await env.client.close()  # runs the app's on_cleanup: nothing left to do


async def test_web_api_calls_share_one_session_and_its_connection_until_shutdown(sqlite_store, fake_slack):
    env = await start_env(sqlite_store, fake_slack)
    session = env.channel.client.session
    assert session is not None and not session.closed
    await env.dm("contacts")
    await env.dm("contacts")
    await env.dm("contacts", user=CAMILLE)
    calls = fake_slack.of("chat.postMessage") + fake_slack.of("users.info")
    assert len(calls) >= 4
    assert len({call.peer for call in calls}) == 1  # one kept-alive connection, not one per call
    await env.client.close()
    assert session.closed and env.channel.client.session is None


async def test_the_work_gets_bolts_client_on_the_channels_session(env):
    from slack_bolt.request.async_request import AsyncBoltRequest
    from slack_sdk.web.async_client import AsyncWebClient

    runner = env.channel.app.listener_runner.lazy_listener_runner
    request = AsyncBoltRequest(body="{}", headers={"content-type": "application/json"})
    request.context["client"] = AsyncWebClient(token="xoxb-copy")  # Bolt's per-request copy
    seen = []

    async def work(client):
        seen.append(client.session)

    await runner.run(work, request)
    assert seen == [env.channel.client.session] and seen[0] is not None


async def test_the_app_cleanup_finishes_background_work(sqlite_store, fake_slack):
    env = await start_env(sqlite_store, fake_slack)
    await env.dm("contacts", drain=False)
    await env.client.close()  # aiohttp runs on_cleanup, which waits for the pending work
    assert not env.channel.pending
    assert len(fake_slack.messages()) == 1


async def test_slack_requests_in_hand_count_for_the_ack_pressure_and_the_servers_worker_yields_to_it(env):
    from adapters.server.web import PRESSURE_KEY

    pressure = env.client.server.app[PRESSURE_KEY]
    assert env.channel.inbox_worker.pressure is pressure
    heard: list[bool] = []
    pressure.subscribe(heard.append)
    pressure.high = 1  # one request in hand is a flood, for this test
    (await env.client.get("/healthz")).release()
    assert heard == []  # not a Slack request
    response = await env.command("/caredesk", "help")
    assert response.status == 200
    assert heard == [True] and pressure.in_flight == 0
    pressure.set(False)
