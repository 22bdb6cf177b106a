"""One Teams channel per desk: its configuration, transport and channel logic, and the aiohttp
route `POST /api/messages`."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from adapters.shared.network import client_of
from adapters.teams import activities
from adapters.teams.channel import TeamsChannel, conversation_id, tenant_of
from adapters.teams.config import TeamsConfig
from adapters.teams.proactive import ProactiveDeliveryError, ProactiveMessage, send_proactive
from adapters.teams.transport import (
    AuthError,
    AuthUnavailable,
    DeliveryError,
    TeamsTransport,
)
from bot.app.desk import Desk
from bot.app.outbox import DeliveryFailed
from bot.domain.config import ConfigError
from bot.protocol.replies import Response

log = logging.getLogger("caredesk.teams")

MESSAGES_PATH = "/api/messages"


class _Place:
    """One activity's place in its conversation's line (see `ArrivalOrder`)."""

    def __init__(self, line: ArrivalOrder, key: tuple[str, ...], before: asyncio.Event | None):
        self._line, self._key, self._before = line, key, before
        self._done = asyncio.Event()

    async def ready(self) -> None:
        """Until every activity of the conversation that arrived earlier is done."""
        if self._before is not None:
            await self._before.wait()

    def done(self) -> None:
        self._done.set()
        if self._line._last.get(self._key) is self._done:
            del self._line._last[self._key]


class _Arrival:
    """A request's turn at the gate before its conversation's line (see `ArrivalOrder.arrive`)."""

    def __init__(self, before: asyncio.Future[None] | None) -> None:
        self._before = before
        self.passed: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def turn(self) -> None:
        """Until every request that arrived earlier has passed the gate."""
        if self._before is not None:
            await asyncio.shield(self._before)

    def leave(self) -> None:
        """This request has joined its line (or was refused): the next may pass once every
        earlier one has too."""
        if self._before is None or self._before.done():
            self._set()
        else:
            self._before.add_done_callback(lambda _: self._set())

    def _set(self) -> None:
        if not self.passed.done():
            self.passed.set_result(None)


class ArrivalOrder:
    """Activities of one conversation (and sender) worked on one at a time, in the order they
    reached this process, while other conversations run in parallel.

    Teams sends a person's quick messages at once, on separate requests: without an order they
    meet at the dialog state's version and the answers come in any order. The token is checked
    before the body is read (a stranger costs no parse), in a thread, which would reorder them:
    so each request takes a ticket at a gate when it arrives (`arrive`), and joins its
    conversation's line (`join`, once its body is read) only after every earlier request has
    joined or been refused. Only an optimisation of this process: across processes the dialog
    state's version settles who goes first (the runner waits and retries), so nothing relies on
    this memory."""

    def __init__(self) -> None:
        self._last: dict[tuple[str, ...], asyncio.Event] = {}
        self._last_arrival: asyncio.Future[None] | None = None

    def arrive(self) -> _Arrival:
        arrival = _Arrival(self._last_arrival)
        self._last_arrival = arrival.passed
        return arrival

    def join(self, activity: Mapping[str, Any]) -> _Place:
        sender = activity.get("from") if isinstance(activity.get("from"), dict) else {}
        key = (tenant_of(activity), conversation_id(activity), str((sender or {}).get("id") or ""))
        place = _Place(self, key, self._last.get(key))
        self._last[key] = place._done
        return place


@dataclass
class TeamsApp:
    desk: Desk
    config: TeamsConfig
    transport: TeamsTransport
    channel: TeamsChannel
    # Turns that outlived Teams' time limit keep running here after the HTTP answer.
    background: set[asyncio.Task[Any]] = field(default_factory=set)
    arrivals: ArrivalOrder = field(default_factory=ArrivalOrder)

    @property
    def accepting(self) -> bool:
        """Authentication on (an app id), or the explicit developer mode (which the composition
        root gives only to a server on a loopback address)."""
        return self.config.auth_enabled or self.config.insecure_dev_mode

    def keep(self, task: asyncio.Task[Any]) -> None:
        self.background.add(task)

        def done(t: asyncio.Task[Any]) -> None:
            self.background.discard(t)
            if not t.cancelled() and t.exception() is not None:
                log.error("a Teams turn finished in the background with an error", exc_info=t.exception())

        task.add_done_callback(done)

    async def drain(self, timeout: float = 10.0) -> None:
        if self.background:
            await asyncio.wait(set(self.background), timeout=timeout)

    async def send_proactive(self, user_key_or_email: str, message: ProactiveMessage) -> bool:
        """A message on CareDesk's own initiative (see `proactive.send_proactive`)."""
        return await send_proactive(self.desk, user_key_or_email, message, transport=self.transport)

    async def send_to_person(self, desk: Desk, email: str, response: Response) -> bool:
        """The outbox's sender (`adapters.server.delivery.Sender`): the person's personal chat with
        the bot. False when Teams is not configured or never saw them; `DeliveryFailed` when the
        connector fails for now (the outbox retries)."""
        if not self.accepting:
            return False
        try:
            return await self.send_proactive(email, response)
        except ProactiveDeliveryError as exc:
            raise DeliveryFailed(f"Teams: {exc}") from exc


def configure(desk: Desk, *, config: TeamsConfig | None = None, transport: TeamsTransport | None = None) -> TeamsApp:
    """The Teams channel of a process: built once by the composition root (the server, a worker)
    and handed to the route and the outbox."""
    # Without a config: the desk's `[teams]` table and this process's environment.
    config = config if config is not None else TeamsConfig.from_settings(desk.settings)
    if transport is None:
        transport = make_transport(config)
    app = TeamsApp(desk, config, transport, TeamsChannel(desk, config))
    if config.auth_enabled and not config.app_password and config.auth_type == "ClientSecret":
        log.warning("MICROSOFT_APP_ID is set but MICROSOFT_APP_PASSWORD is not: CareDesk cannot answer in Teams")
    return app


def make_transport(config: TeamsConfig) -> TeamsTransport:
    """The transport `CAREDESK_TEAMS_TRANSPORT` chose, its SDK imported only now: a deployment
    needs only the one it runs on."""
    try:
        if config.transport == "botbuilder":
            from adapters.teams.botbuilder_transport import BotbuilderTransport

            return BotbuilderTransport(config)
        from adapters.teams.agents_transport import AgentsTransport

        return AgentsTransport(config)
    except ImportError as exc:
        package = "caredesk[botbuilder]" if config.transport == "botbuilder" else "caredesk"
        raise ConfigError("CAREDESK_TEAMS_TRANSPORT",
                          f"the {config.transport} transport's SDK is not installed ({exc.name}): "
                          f"pip install '{package}'") from exc


TEAMS_APP_KEY: web.AppKey[TeamsApp] = web.AppKey("teams", TeamsApp)


def _error(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"error": code, "message": message}, status=status)


def _bearer(header: str | None) -> bool:
    """Whether an Authorization header can hold a Bot Framework token at all ("Bearer" and a
    compact JWS: three dot-separated parts). Checked before the body is read, so that a stranger
    without a token costs no parse (and can make none fail)."""
    scheme, _, token = (header or "").strip().partition(" ")
    return scheme.lower() == "bearer" and token.strip().count(".") == 2


async def messages(request: web.Request) -> web.StreamResponse:
    teams = request.app[TEAMS_APP_KEY]
    if not teams.accepting:
        return _error(503, "teams_not_configured",
                      "Microsoft Teams is not configured: set MICROSOFT_APP_ID and MICROSOFT_APP_PASSWORD "
                      "(see docs/teams.md).")
    header = request.headers.get("Authorization")
    if teams.config.auth_enabled and not _bearer(header):
        log.warning("rejected a request to %s from %s: no Bot Framework token", MESSAGES_PATH, client_of(request))
        return _error(401, "unauthorized", "the request is not authenticated by the Bot Framework")
    arrival = teams.arrivals.arrive()
    try:
        accepted = await _accept(request, teams, header, arrival)
    finally:
        arrival.leave()
    if isinstance(accepted, web.StreamResponse):
        return accepted
    activity, ticket, place = accepted

    async def in_order() -> Any:
        try:
            await place.ready()
            return await teams.transport.run(ticket, activity, teams.channel.on_turn)
        finally:
            place.done()

    task = asyncio.ensure_future(in_order())
    try:
        result = await asyncio.wait_for(asyncio.shield(task), teams.config.response_deadline)
    except TimeoutError:
        teams.keep(task)
        log.warning("Teams activity %s takes longer than %.0f s: answering now, the work goes on",
                    activity.get("id"), teams.config.response_deadline)
        if activity.get("type") == "invoke":
            reply = teams.channel.still_working(activity)
            return web.json_response(reply.body, status=reply.status)
        return web.Response(status=202)
    except DeliveryError as exc:
        log.error("Teams activity %s could not be processed: %s", activity.get("id"), exc)
        return _error(503, "connector_unavailable", "the Bot Framework connector is unavailable; retry later")
    except Exception:
        log.exception("Teams activity %s failed", activity.get("id"))
        return _error(500, "internal_error", "the activity could not be processed")
    if result is None:
        return web.Response(status=200)
    return web.json_response(result.body, status=result.status)


def _not_authenticated(request: web.Request, exc: AuthError | AuthUnavailable) -> web.Response:
    """401 for a token that does not prove the Bot Framework sent the request; 503 when the keys
    to check it cannot be had (Teams retries)."""
    if isinstance(exc, AuthUnavailable):
        log.error("cannot check a request to %s: %s", MESSAGES_PATH, exc)
        return _error(503, "auth_unavailable", "the Bot Framework signing keys are unavailable; retry later")
    log.warning("rejected a request to %s from %s: %s", MESSAGES_PATH, client_of(request), exc)
    return _error(401, "unauthorized", "the request is not authenticated by the Bot Framework")


async def _accept(request: web.Request, teams: TeamsApp, header: str | None,
                  arrival: _Arrival) -> web.StreamResponse | tuple[dict[str, Any], Any, _Place]:
    """The checks of `messages`, strangers first: the activity, its token's ticket and its
    place in its conversation's line; or the refusal."""
    try:
        # The token alone, before a byte of the body is read: a stranger costs no parse.
        await teams.transport.vouch(header)
    except (AuthError, AuthUnavailable) as exc:
        return _not_authenticated(request, exc)
    if "json" not in (request.content_type or ""):
        return _error(415, "unsupported_media_type", "expected application/json")
    body = await request.read()
    # The body read, the request waits for every earlier one to join its line (or be refused).
    await arrival.turn()
    try:
        activity = activities.parse(body)
    except activities.MalformedActivity as exc:
        log.warning("rejected a request to %s: %s", MESSAGES_PATH, exc)
        return _error(400, "bad_request", str(exc))
    reason = activities.problem(activity)
    # A malformed activity has no line to join: it is refused below, once its token is checked.
    place = teams.arrivals.join(activity) if reason is None else None
    arrival.leave()
    accepted = False
    try:
        # Then the token against the activity: the channel and service URL it was issued for
        # (nothing more of the body is read before that: `authenticate`).
        ticket = await teams.transport.authenticate(header, activity)
        if reason is not None:
            raise activities.MalformedActivity(reason)
        teams.transport.readable(activity)
        accepted = True
    except (AuthError, AuthUnavailable) as exc:
        return _not_authenticated(request, exc)
    except activities.MalformedActivity as exc:
        # From the Bot Framework (or a holder of its token): one short line, no traceback.
        log.warning("rejected a malformed activity on %s: %s", MESSAGES_PATH, exc)
        return _error(400, "bad_request", f"the activity is malformed: {exc}")
    finally:
        if place is not None and not accepted:
            place.done()  # refused: the next of its conversation need not wait for it
    assert place is not None
    return activity, ticket, place


def mount(app: web.Application, teams: TeamsApp) -> None:
    """Add `POST /api/messages` (the Bot Framework messaging endpoint) to the server."""
    app[TEAMS_APP_KEY] = teams
    app.router.add_post(MESSAGES_PATH, messages)

    async def finish_background_turns(_: web.Application) -> None:
        await teams.drain()
        await teams.transport.close()

    app.on_cleanup.append(finish_background_turns)
    if teams.config.auth_enabled:
        log.info("Teams channel on %s (app id %s, %s)", MESSAGES_PATH, teams.config.app_id, teams.config.app_type)
    elif teams.accepting:
        log.warning("Teams channel on %s WITHOUT authentication (developer mode, loopback only)", MESSAGES_PATH)
    else:
        log.warning("Teams channel disabled: MICROSOFT_APP_ID is not set; %s answers 503", MESSAGES_PATH)
