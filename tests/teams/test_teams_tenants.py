"""Teams across tenants (issue 17): the tenant of every activity decides, in the check every
channel shares (`bot.app.identity`), whether the person's e-mail counts for the directory; a
proactive message carries the recipient's tenant. Real signed activities, on SQLite and PostgreSQL."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from bot.domain.directory import read_directory_file
from bot.domain.model import Binding, NewTicket, TicketKind
from bot.protocol.replies import Text
from tests.teams.conftest import ROOT, card_of, card_text

KLOK_TENANT, LUMIERE_TENANT = "5b8e2a41-klok", "c7d0f3e9-lumiere"
NOW_FMT = "CS-{year}-{seq:05d}"


async def _bound(bot: Any) -> None:
    directory = read_directory_file(ROOT / "examples" / "directory.yaml")
    await bot.desk.store.replace_directory(replace(directory, bindings=(
        Binding("msteams", KLOK_TENANT, "Brasserie De Klok"), Binding("msteams", LUMIERE_TENANT, "Atelier Lumière"))))
    await bot.desk.store.create_ticket(
        NewTicket(kind=TicketKind.INCIDENT, requester_email="lotte.peeters@brasseriedeklok.be",
                  requester_name="Lotte Peeters", company="Brasserie De Klok", module="Kassa",
                  description="De kassa print geen bonnetjes meer"), bot.desk.now(), NOW_FMT)


async def say_from(bot: Any, tenant: str, text: str, user: str = "29:lotte") -> str:
    activity = bot.activity(user, text)
    activity["conversation"]["tenantId"] = tenant
    activity["channelData"] = {**(activity.get("channelData") or {}), "tenant": {"id": tenant}}
    before = len(bot.fake.sent("POST"))
    status, _ = await bot.post(activity)
    assert status == 200
    return "\n".join(card_text(card_of(sent)) for sent in bot.fake.sent("POST")[before:])


async def test_the_activitys_tenant_decides_who_the_person_is(bot_on_both) -> None:
    bot = bot_on_both
    await _bound(bot)
    # From her company's tenant, Lotte sees her company's ticket.
    assert "CS-2026-00001" in await say_from(bot, KLOK_TENANT, "tickets")
    # An account of Atelier Lumière's tenant whose e-mail (its admin chose it) is Lotte's: nothing of hers.
    bot.fake.members["29:lotte-elsewhere"] = {**bot.fake.members["29:lotte"], "id": "29:lotte-elsewhere"}
    seen = await say_from(bot, LUMIERE_TENANT, "tickets", user="29:lotte-elsewhere")
    assert seen and "CS-2026-00001" not in seen
    # (The lookup does give that account Lotte's e-mail: from her own tenant it would count.)
    assert "CS-2026-00001" in await say_from(bot, KLOK_TENANT, "tickets", user="29:lotte-elsewhere")
    # A tenant bound to nobody (the sample's, or any other): served as unknown.
    bot.fake.members["29:lotte-stranger"] = {**bot.fake.members["29:lotte"], "id": "29:lotte-stranger"}
    assert "CS-2026-00001" not in await say_from(bot, "00000000-stranger", "tickets", user="29:lotte-stranger")


async def test_a_proactive_message_carries_the_recipients_tenant(bot_on_both) -> None:
    bot = bot_on_both
    await _bound(bot)
    await say_from(bot, KLOK_TENANT, "help")
    stored = await bot.desk.store.get_conversation_ref("msteams", "aad-lotte")
    assert stored["conversation"]["tenantId"] == KLOK_TENANT
    assert await bot.teams.send_proactive("lotte.peeters@brasseriedeklok.be", [Text("Your ticket was updated")]) is True
    sent = bot.fake.sent("POST")[-1]
    assert sent["body"]["channelData"]["tenant"] == {"id": KLOK_TENANT}
    assert "Your ticket was updated" in card_text(card_of(sent))
