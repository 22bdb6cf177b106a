"""The Bolt app: Slack's requests dispatched to CareDesk's listeners, the work kept in the
durable inbox rather than in this process's memory.

Each listener that works after its ack is registered as `ack=<write to the inbox, then ack>`
plus `lazy=[<the work>]`. With `process_before_response=True` Bolt runs the ack function, then
hands each lazy function to its lazy listener runner. Like Bolt's AWS Lambda adapter, CareDesk
replaces that runner: `InboxLazyListenerRunner.start` does nothing, since the inbox row the ack
wrote holds the request and the name of its lazy function. An inbox worker (in the server or in
`caredesk worker` processes) then gives the stored request back to Bolt marked lazy-only
(`lazy_only_request`), and Bolt runs that one lazy function. A crash between the ack and the
work loses nothing: the row is still there.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any, Awaitable, Callable

from slack_bolt.app.async_app import AsyncApp
from slack_bolt.authorization import AuthorizeResult
from slack_bolt.context.async_context import AsyncBoltContext
from slack_bolt.oauth.async_oauth_flow import AsyncOAuthFlow
from slack_bolt.kwargs_injection.async_utils import build_async_required_kwargs
from slack_bolt.lazy_listener.async_runner import AsyncLazyListenerRunner
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.util.utils import get_arg_names_of_callable, get_name_for_callable
from slack_sdk.web.async_client import AsyncWebClient

from bot.protocol.ids import FLOW_CALLBACK_PREFIX, FORM_CALLBACK_PREFIX
from bot.store.ports import InboxItem

from adapters.slack.config import SlackConfig
from adapters.slack.oauth import not_installed_message
from adapters.slack.web_api import WORKSPACE_TOKEN
from adapters.slack.listeners import (SHORTCUT_CREATE_TICKET, URGENT, SlackListeners, acknowledge, command_person,
                                      event_person, from_a_person_in_a_channel, from_a_person_in_dm, home_tab_opened,
                                      interaction_person)

log = logging.getLogger("caredesk.slack")

LAZY_ONLY_HEADER = "x-slack-bolt-lazy-only"
LAZY_FUNCTION_HEADER = "x-slack-bolt-lazy-function-name"
# What the lazy runner tells the worker that re-dispatched a request (in the request's context).
LAZY_RAN = "caredesk_lazy_ran"
LAZY_FAILURE = "caredesk_lazy_failure"
# Inbox rows written before the listeners were Bolt's carry the kind of request, not the name of
# its lazy function: they are worked on by the function that does that kind's work now.
EARLIER_KINDS = {"message": "answer_dm", "mention": "answer_mention", "home": "publish_home_tab",
                 "command": "run_command", "action": "run_action", "shortcut": "open_shortcut_form",
                 "closed": "end_closed_modal", "submission": "create_from_submission"}


class LazyListenerNotRun(RuntimeError):
    """Bolt did not run the lazy function an inbox row names (no listener matched it again, or a
    middleware stopped it): the row is retried, then dead-lettered, rather than marked done."""


class InboxLazyListenerRunner(AsyncLazyListenerRunner):
    """Starts nothing in this process: the ack function wrote the request to the inbox, and an
    inbox worker re-dispatches it lazy-only. `run` (that re-dispatch) lets the worker know that the
    function ran and how it ended, so that a failure is retried by the inbox instead of being
    only logged, as Bolt's own runner does."""

    def __init__(self, logger: logging.Logger, client: AsyncWebClient | None = None) -> None:
        self.logger = logger
        # The channel's client, whose HTTP session the work's copy of Bolt's client shares.
        self.client = client
        # Each lazy function's argument names: Bolt reads them from its signature on every call
        # (inspect), the same answer each time.
        self._arg_names: dict[Callable[..., Awaitable[None]], list[str]] = {}

    def start(self, function: Callable[..., Awaitable[None]], request: AsyncBoltRequest) -> None:
        # Nothing to start: the row the ack function wrote is the work, and whichever worker
        # claims it runs it (in memory here, it would die with this process).
        return None

    async def run(self, function: Callable[..., Awaitable[None]], request: AsyncBoltRequest) -> None:
        request.context[LAZY_RAN] = get_name_for_callable(function)
        # Bolt gives each request a copy of `app.client`. The session is set on the copy here, in
        # the work, rather than on `app.client`: on the ack path Bolt deep-copies the request
        # (with its client) for the lazy functions, and a session cannot be deep-copied.
        copy = request.context.get("client")
        if self.client is not None and isinstance(copy, AsyncWebClient) and copy.session is None:
            copy.session = self.client.session
        names = self._arg_names.get(function)
        if names is None:
            names = self._arg_names[function] = get_arg_names_of_callable(function)
        kwargs = build_async_required_kwargs(logger=self.logger, required_arg_names=names,
                                             request=request, response=None, this_func=function)
        try:
            await function(**kwargs)
        except Exception as exc:
            request.context[LAZY_FAILURE] = exc


def lazy_only_request(item: InboxItem) -> AsyncBoltRequest:
    """The stored request of an inbox row, for Bolt to run only the lazy function it names."""
    name = EARLIER_KINDS.get(item.kind, item.kind)
    return AsyncBoltRequest(body=json.dumps(item.payload, ensure_ascii=False),
                            headers={"content-type": "application/json", LAZY_ONLY_HEADER: "1",
                                     LAZY_FUNCTION_HEADER: name})


async def run_lazy_only(app: AsyncApp, item: InboxItem) -> None:
    """Work on an inbox row: Bolt dispatches its request lazy-only. Raises what the lazy function
    raised (the inbox worker retries), or `LazyListenerNotRun`."""
    request = lazy_only_request(item)
    await app.async_dispatch(request)
    failure = request.context.get(LAZY_FAILURE)
    if failure is not None:
        raise failure
    if request.context.get(LAZY_RAN) is None:
        raise LazyListenerNotRun(f"no lazy listener {request.lazy_function_name!r} ran for inbox item {item.id}")


def build_bolt_app(config: SlackConfig, client: AsyncWebClient, listeners: SlackListeners,
                   oauth_flow: AsyncOAuthFlow | None = None) -> AsyncApp:
    """The Bolt app: one workspace and its `SLACK_BOT_TOKEN`, or (with `oauth_flow`, multi-workspace
    mode) every workspace that installed CareDesk, each request with its own workspace's token."""
    token = config.bot_token
    # Each request's `client` is a copy of this one with the token `authorize` gives.
    bolt_client = AsyncWebClient(base_url=client.base_url, timeout=client.timeout,
                                 retry_handlers=client.retry_handlers, logger=client.logger)
    common: dict[str, Any] = dict(
        client=bolt_client,
        # Off: the HTTP route verifies the signature itself, before it parses anything, with
        # slack_sdk's SignatureVerifier and an injectable clock (tests), and Socket Mode needs
        # none. url_verification and ssl_check stay Bolt's built-in middleware.
        request_verification_enabled=False,
        # The ack functions only write to the inbox: the response goes out as soon as they return.
        process_before_response=True,
        logger=log,
    )
    if oauth_flow is not None:
        oauth_flow._async_client = bolt_client
        # A workspace without an installation: Bolt answers with this and runs no listener.
        app = AsyncApp(oauth_flow=oauth_flow, installation_store_bot_only=True,
                       user_facing_authorize_error_message=not_installed_message(), **common)
        # app_uninstalled and tokens_revoked delete the workspace's installation and tokens.
        app.enable_token_revocation_listeners()

        @app.middleware
        async def answer_with_the_workspaces_token(context: AsyncBoltContext, next: Callable[[], Awaitable[Any]]) -> Any:
            # The channel's client (people, messages, modals) uses this workspace's token for the
            # rest of this request's work: `WORKSPACE_TOKEN` is the request's, never another's.
            WORKSPACE_TOKEN.set(context.bot_token)
            return await next()
    else:
        async def authorize(enterprise_id: str | None, team_id: str | None, user_id: str | None) -> AuthorizeResult:
            # One workspace and its bot token: Bolt's default for a token (auth.test before the
            # first request) would make an acknowledgement depend on Slack's Web API answering.
            return AuthorizeResult(enterprise_id=enterprise_id, team_id=team_id, user_id=user_id, bot_token=token)

        app = AsyncApp(authorize=authorize, **common)

        async def token_gone(ack: Any, body: dict) -> None:
            # The manifest subscribes to these for multi-workspace mode; here the one token is
            # the environment's: acknowledged (an unanswered event is resent), and said.
            await ack()
            log.warning("Slack says CareDesk was uninstalled or its tokens revoked (%s): SLACK_BOT_TOKEN no longer "
                        "works", (body.get("event") or {}).get("type"))

        app.event("app_uninstalled")(token_gone)
        app.event("tokens_revoked")(token_gone)
    app.listener_runner.lazy_listener_runner = InboxLazyListenerRunner(log, client)
    register_listeners(app, listeners)
    return app


def register_listeners(app: AsyncApp, listeners: SlackListeners) -> None:
    # Bolt tries the listeners in this order, and each try builds every argument a listener could
    # take (measured: the largest share of an acknowledgement's time): the most frequent
    # requests come first, a person's DM, then commands, forms and clicks. Of the listeners of
    # one kind of request, the first that matches answers, so a catch-all comes after the rest.
    on = listeners
    app.event("message", matchers=[from_a_person_in_dm])(
        ack=on.written_down(on.answer_dm, event_person), lazy=[on.answer_dm])
    app.command(re.compile(r"^/"))(
        ack=on.written_down(on.run_command, command_person, URGENT), lazy=[on.run_command])
    app.view_submission(re.compile("^" + re.escape(FORM_CALLBACK_PREFIX)))(
        ack=on.check_submission, lazy=[on.create_from_submission])
    # Every click is acknowledged (Slack warns the person beside a button whose click is not);
    # `run_action` does nothing with one that is not CareDesk's.
    app.block_action(re.compile(""))(
        ack=on.written_down(on.run_action, interaction_person, URGENT), lazy=[on.run_action])
    app.event("app_mention", matchers=[from_a_person_in_a_channel])(
        ack=on.written_down(on.answer_mention, event_person), lazy=[on.answer_mention])
    app.event("app_home_opened", matchers=[home_tab_opened])(
        ack=on.written_down(on.publish_home_tab, event_person), lazy=[on.publish_home_tab])
    app.shortcut(SHORTCUT_CREATE_TICKET)(
        ack=on.written_down(on.open_shortcut_form, interaction_person, URGENT), lazy=[on.open_shortcut_form])
    app.view_closed(re.compile("^(" + re.escape(FORM_CALLBACK_PREFIX) + "|" + re.escape(FLOW_CALLBACK_PREFIX) + ")"))(
        ack=on.written_down(on.end_closed_modal, interaction_person), lazy=[on.end_closed_modal])
    for event_type in ("message", "app_mention", "app_home_opened"):
        app.event(event_type)(acknowledge)  # the others of these types: nothing to answer
