"""Slack workspaces that installed CareDesk (multi-workspace mode, OAuth v2): slack_sdk's async
SQLAlchemy stores on CareDesk's own database (their tables come with CareDesk's migration 0008),
and which installed workspaces the service desk has not bound to a company yet."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Sequence

from slack_sdk.oauth.installation_store.sqlalchemy import AsyncSQLAlchemyInstallationStore
from slack_sdk.oauth.state_store.sqlalchemy import AsyncSQLAlchemyOAuthStateStore
from sqlalchemy import MetaData, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.domain.model import SLACK_WORKSPACE
from bot.store.ports import DirectoryStore

log = logging.getLogger("caredesk.slack")

# How long an install link's state is good for: the admin reads the consent page and clicks Allow.
STATE_EXPIRATION_S = 600


def installation_store(client_id: str, engine: AsyncEngine) -> AsyncSQLAlchemyInstallationStore:
    """Installations and their bot tokens (refresh tokens too, with token rotation)."""
    return AsyncSQLAlchemyInstallationStore(client_id=client_id, engine=engine, logger=log)


def oauth_state_store(engine: AsyncEngine) -> AsyncSQLAlchemyOAuthStateStore:
    """The OAuth states of installs in progress: each used once, within STATE_EXPIRATION_S."""
    return AsyncSQLAlchemyOAuthStateStore(expiration_seconds=STATE_EXPIRATION_S, engine=engine, logger=log)


@dataclass(frozen=True)
class InstalledWorkspace:
    team_id: str
    team_name: str | None
    installed_at: datetime  # the latest installation, UTC
    companies: tuple[str, ...]  # bound to ("" for the service desk); empty: pending


async def installed_workspaces(engine: AsyncEngine, directory: DirectoryStore) -> Sequence[InstalledWorkspace]:
    """Every workspace with a bot token in the database (any client id), with what it is bound to."""
    bots = AsyncSQLAlchemyInstallationStore.build_bots_table(
        MetaData(), AsyncSQLAlchemyInstallationStore.default_bots_table_name)
    query = (select(bots.c.team_id, func.max(bots.c.team_name).label("team_name"),
                    func.max(bots.c.installed_at).label("installed_at"))
             .where(bots.c.team_id.is_not(None), bots.c.bot_token.is_not(None))
             .group_by(bots.c.team_id).order_by(bots.c.team_id))
    async with engine.connect() as conn:
        rows = (await conn.execute(query)).all()
    bindings: dict[str, list[str]] = {}
    for binding in await directory.list_bindings():
        if binding.channel == SLACK_WORKSPACE:
            bindings.setdefault(binding.tenant, []).append(binding.company or "")
    found = []
    for row in rows:
        at = row.installed_at if row.installed_at.tzinfo else row.installed_at.replace(tzinfo=timezone.utc)
        found.append(InstalledWorkspace(row.team_id, row.team_name, at, tuple(sorted(bindings.get(row.team_id, ())))))
    return found
