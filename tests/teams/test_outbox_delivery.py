"""The outbox through Teams: pings and updates reach people by their stored conversation
reference, survive a connector outage, and are sent once."""

from __future__ import annotations

from datetime import timedelta

from adapters.server.delivery import ChannelDelivery
from bot.app.runner import TurnRunner
from bot.app.outbox import Dispatcher, RetryPolicy
from bot.protocol.turn import Turn, UserIdentity
from tests.teams.conftest import card_text

LOTTE = "lotte.peeters@brasseriedeklok.be"


async def test_update_reaches_the_requester_in_teams_once_the_connector_recovers(bot):
    await bot.say("help")  # Lotte talked to the bot in Teams: her conversation reference is stored
    ticket = await bot.desk.register_ticket(kind="service_request", requester_email=LOTTE, module="Reports",
                                            description="How do I export the monthly report with the VAT column?")
    conversation = TurnRunner(bot.desk)
    sofie = Turn("console", "local", "c:sofie", UserIdentity("sofie", "sofie.janssens@caresolutions.be", locale="en"),
                 text=f"solution {ticket.number} 2026-12-03")
    await conversation.handle(sofie)
    outbox = Dispatcher(bot.desk, ChannelDelivery(bot.desk, {"msteams": bot.teams.send_to_person}),
                        policy=RetryPolicy(base_delay=timedelta(seconds=5)))
    before = len(bot.fake.sent("POST"))
    bot.fake.fail_sends = True
    assert await outbox.run_once() == 0
    [message] = await bot.desk.store.list_outbox()
    assert message.status == "pending" and message.attempts == 1
    bot.fake.fail_sends = False
    bot.desk.clock.advance(timedelta(seconds=5))
    assert await outbox.run_once() == 1
    sent = bot.fake.sent("POST")[before:]
    assert len(sent) == 1
    text = card_text(sent[0]["body"]["attachments"][0]["content"])
    assert ticket.number in text and "2026" in text
    assert await outbox.run_once() == 0


async def test_someone_never_seen_in_teams_is_not_a_crash_and_what_was_sent_waits_for_their_next_visit(bot):
    """Camille (in the directory) never used Teams: the message is kept for her next turn
    ("While you were away"); someone outside the directory, never seen, is dead-lettered."""
    from bot.store.ports import NewOutboxMessage

    await bot.desk.store.enqueue([NewOutboxMessage("k", "camille.dubois@atelier-lumiere.be", "ticket_update",
                                                   {"ticket": "CS-2026-00001", "event": "status", "status": "closed"}),
                                  NewOutboxMessage("g", "ghost@nowhere.example", "ticket_update",
                                                   {"ticket": "CS-2026-00002", "event": "status", "status": "closed"})],
                                 bot.desk.now())
    outbox = Dispatcher(bot.desk, ChannelDelivery(bot.desk, {"msteams": bot.teams.send_to_person}))
    assert await outbox.run_once() == 0
    kept, ghost = await bot.desk.store.list_outbox()
    assert kept.status == "sent" and kept.last_error == "kept for the next visit"
    [waiting] = await bot.desk.store.pending_kept_messages("camille.dubois@atelier-lumiere.be")
    assert waiting.payload["ticket"] == "CS-2026-00001"
    assert ghost.status == "failed" and "never seen" in ghost.last_error
