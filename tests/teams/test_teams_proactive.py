"""Proactive messages through stored conversation references."""

from __future__ import annotations

import logging

import pytest

from adapters.teams import ProactiveDeliveryError
from bot.protocol.replies import Facts, Response, Text, Tone
from tests.teams.conftest import card_of, card_text

LOTTE = "lotte.peeters@brasseriedeklok.be"


async def test_proactive_message_to_a_stored_reference(bot_on_both):
    bot = bot_on_both
    await bot.say("help")  # the bot has now seen Lotte in her personal chat
    stored = await bot.desk.store.get_conversation_ref("msteams", "aad-lotte")
    assert stored["conversation"]["id"] == "a:personal-29:lotte" and stored["serviceUrl"] == bot.fake.service_url
    before = len(bot.fake.sent("POST"))
    update = Response((Text("Ticket CS-2026-00001 is solved.", Tone.SUCCESS),
                       Facts((("Ticket", "CS-2026-00001"), ("Release", "2026-12-01")), "Update")), "en")
    assert await bot.teams.send_proactive(LOTTE, update) is True
    [sent] = bot.fake.sent("POST")[before:]
    assert sent["conversation"] == "a:personal-29:lotte"
    assert sent["authorization"] == "Bearer outbound-access-token"
    assert "CS-2026-00001 is solved" in card_text(card_of(sent))
    # By user key (AAD object id) as well, with a plain list of replies.
    assert await bot.teams.send_proactive("aad-lotte", [Text("Escalation acknowledged")]) is True
    assert "Escalation acknowledged" in card_text(card_of(bot.fake.sent("POST")[-1]))


async def test_proactive_message_to_an_unknown_user_fails_cleanly(bot, caplog):
    with caplog.at_level(logging.WARNING, logger="caredesk.teams.proactive"):
        assert await bot.teams.send_proactive("nobody@example.com", [Text("hello")]) is False
        assert await bot.teams.send_proactive("aad-never-seen", [Text("hello")]) is False
    assert bot.fake.sent() == []
    assert any("never talked" in r.getMessage() for r in caplog.records)


async def test_proactive_connector_failure_raises_a_specific_error(bot):
    await bot.say("help")
    bot.fake.fail_sends = True
    with pytest.raises(ProactiveDeliveryError):
        await bot.teams.send_proactive(LOTTE, [Text("hello")])


async def test_channel_conversations_are_stored_by_conversation(bot):
    activity = bot.activity("29:camille", "<at>CareDesk</at> help",
                            conversation="19:abc@thread.tacv2;messageid=1759881511856")
    activity["conversation"].update(conversationType="channel", isGroup=True)
    assert (await bot.post(activity))[0] == 200
    ref = await bot.desk.store.get_conversation_ref("msteams", "conversation:19:abc@thread.tacv2")
    assert ref["conversation"]["id"] == "19:abc@thread.tacv2"
    # A channel is not the person's personal chat: their e-mail does not point there.
    assert await bot.desk.store.find_conversation_refs_by_email("camille.dubois@atelier-lumiere.be") == []
    assert await bot.teams.send_proactive("conversation:19:abc@thread.tacv2", [Text("Release on Monday")])
    assert bot.fake.sent("POST")[-1]["conversation"] == "19:abc@thread.tacv2"
