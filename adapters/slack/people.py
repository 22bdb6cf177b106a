"""Who a Slack user is (users.info, cached for a while), and the person a modal carries."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

from slack_sdk.web.async_client import AsyncWebClient

from bot.protocol.turn import UserIdentity

from adapters.shared.cache import ExpiringCache
from adapters.slack.errors import SLACK_FAILURES, describe

log = logging.getLogger("caredesk.slack")

PROFILE_TTL_S = 600.0
MAX_PROFILES = 10_000


class SlackPeople:
    """users.info answers cached per process (a person's e-mail, name, locale and phone), and
    the bot's own user id."""

    def __init__(self, client: AsyncWebClient) -> None:
        self.client = client
        # (team, user) -> who users.info said they are
        self._profiles: ExpiringCache[tuple[str, str], UserIdentity] = ExpiringCache(max_entries=MAX_PROFILES)
        self._bot_user_id: str | None = None
        # (team, user) -> the user's own workspace (users.info's team_id): another one than the
        # request's for a person in a channel shared by Slack Connect.
        self._homes: ExpiringCache[tuple[str, str], str] = ExpiringCache(max_entries=MAX_PROFILES)

    def forget(self) -> None:
        """Read everyone afresh (tests, a directory change)."""
        self._profiles.clear()
        self._homes.clear()

    def home_team(self, team: str, user: str) -> str:
        """The workspace `user` belongs to, as users.info said (the request's own `team` when this
        process has not asked: never a workspace that would trust them more)."""
        return self._homes.get((team, user)) or team

    def cached(self, team: str, user: str) -> UserIdentity | None:
        return self._profiles.get((team, user))

    async def identity(self, team: str, user: str) -> UserIdentity:
        """Who a Slack user is: e-mail (links them to the directory), name, locale and phone from
        users.info, cached for a while. Without it, the user is still served, as unknown."""
        cached = self.cached(team, user)
        if cached is not None:
            return cached
        try:
            info = await self.client.users_info(user=user, include_locale=True)
        except SLACK_FAILURES as exc:
            log.warning("users.info for %s failed: %s", user, describe(exc))
            return UserIdentity(id=user)
        data = info.get("user") or {}
        profile = data.get("profile") or {}
        identity = UserIdentity(
            id=user,
            email=profile.get("email") or None,
            display_name=profile.get("real_name") or data.get("real_name") or profile.get("display_name")
            or data.get("name"),
            locale=data.get("locale") or None,
            phone=profile.get("phone") or None,
        )
        self._profiles.put((team, user), identity, PROFILE_TTL_S)
        home = data.get("team_id")
        if isinstance(home, str) and home:
            self._homes.put((team, user), home, PROFILE_TTL_S)
        return identity

    async def bot_user_id(self, body: Mapping[str, Any]) -> str | None:
        """The bot's own user id (to drop its mention from a message): from the event's
        authorizations, else from auth.test once."""
        for authorization in body.get("authorizations") or ():
            if isinstance(authorization, Mapping) and authorization.get("is_bot") and authorization.get("user_id"):
                return str(authorization["user_id"])
        if self._bot_user_id is None:
            try:
                self._bot_user_id = (await self.client.auth_test()).get("user_id")
            except SLACK_FAILURES as exc:
                log.warning("auth.test failed: %s", describe(exc))
        return self._bot_user_id


def identity_metadata(identity: UserIdentity) -> str:
    """The person a modal is for, kept in its private_metadata (Slack returns it with the
    submission, unseen and unchanged by the user)."""
    return json.dumps({"id": identity.id, "email": identity.email, "name": identity.display_name,
                       "locale": identity.locale, "phone": identity.phone}, ensure_ascii=False)


def identity_from_metadata(metadata: Any, user: str) -> UserIdentity | None:
    """The identity a modal carries, if it is this user's."""
    try:
        data = json.loads(metadata) if isinstance(metadata, str) and metadata else None
    except ValueError:
        return None
    if not isinstance(data, dict) or data.get("id") != user:
        return None

    def text(key: str) -> str | None:
        value = data.get(key)
        return value if isinstance(value, str) and value else None

    return UserIdentity(id=user, email=text("email"), display_name=text("name"), locale=text("locale"),
                        phone=text("phone"))
