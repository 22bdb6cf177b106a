"""Nothing acknowledged is lost, and one person's trouble does not hold up the others: a poison
request is given up at once (the person is asked to send it again), a reply whose post failed is
in the outbox and delivered later, a rate-limited reply waits in the store, not in a work slot."""

from __future__ import annotations

from tests.slack.conftest import LOTTE, block_text, env, fake_slack, sqlite_store  # noqa: F401


def text_of(call) -> str:
    return block_text(call.json_param("blocks"))


async def test_a_signed_event_whose_text_is_not_text_is_given_up_at_once_and_the_person_told(env, caplog):
    with caplog.at_level("WARNING", logger="caredesk.inbox"):
        response = await env.dm({"type": "rich_text", "elements": ["not", "text"]})
    assert response.status == 200
    (item,) = await env.desk.store.list_inbound("failed")
    assert item.attempts == 1  # not retried five times while the person waits
    assert item.last_error and item.last_error.startswith("unreadable: TypeError")
    told = env.fake.last_message()
    assert told.params["channel"] == f"D{LOTTE}"
    assert "could not read your last message" in text_of(told)
    (line,) = [r for r in caplog.records if "dead-lettered at once" in r.getMessage()]
    assert line.levelname == "WARNING" and f"inbox item {item.id} " in line.getMessage()
    assert "rich_text" not in line.getMessage()
    # The person's next message is answered at once.
    await env.dm("contacts")
    assert "Service desk contacts" in text_of(env.fake.last_message())
    assert await env.desk.store.count_unfinished_inbound() == 0
