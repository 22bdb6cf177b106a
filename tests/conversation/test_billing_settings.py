"""Issue 15 §5: billing granularity and the VAT label are settings (`billing.*`), exact and
unlabelled by default since the rules page sets neither."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from bot.app.desk import Desk
from bot.app.runner import TurnRunner
from bot.domain.config import BillingSettings, ConfigError, Settings, settings_from_mapping
from bot.domain.time_entries import billed_duration
from tests.conversation.test_staff import EARLIER, LOTTE, SOFIE, desk, new_ticket, say  # noqa: F401


@pytest.mark.parametrize("worked, increment, minimum, billed", [
    (2, 0, 0, 2), (2, 15, 0, 15), (16, 15, 0, 30), (30, 15, 0, 30), (2, 0, 10, 10), (7, 5, 15, 15), (50, 15, 15, 60),
])
def test_billed_duration(worked, increment, minimum, billed):
    assert billed_duration(timedelta(minutes=worked), increment, minimum) == timedelta(minutes=billed)


def test_billing_settings_are_read_and_checked():
    assert Settings().billing == BillingSettings(0, 0, False)
    s = settings_from_mapping({"billing": {"increment_minutes": 15, "minimum_minutes": 30, "prices_exclude_vat": True}})
    assert s.billing == BillingSettings(15, 30, True)
    with pytest.raises(ConfigError, match="billing.increment_minutes"):
        settings_from_mapping({"billing": {"increment_minutes": -5}})
    with pytest.raises(ConfigError, match="billing.rounding"):
        settings_from_mapping({"billing": {"rounding": 5}})


async def test_time_is_billed_exactly_by_default_and_without_a_vat_label(desk):
    number = await new_ticket(desk, LOTTE, opened=EARLIER)
    out = await say(TurnRunner(desk), SOFIE, f"logtime {number} 2m teamviewer at 2026-11-27 10:00")
    assert "0 h 02 × €102.21/h × 100 % = €3.41" in out
    assert "Total" in out and "VAT" not in out


async def test_the_increment_minimum_and_vat_label_apply_when_set(desk):
    billing = BillingSettings(increment_minutes=15, minimum_minutes=30, prices_exclude_vat=True)
    desk = Desk(Settings(billing=billing), desk.store, desk.clock)
    number = await new_ticket(desk, LOTTE, opened=EARLIER)
    out = await say(TurnRunner(desk), SOFIE, f"logtime {number} 2m teamviewer at 2026-11-27 10:00")
    assert "0 h 30 × €102.21/h × 100 % = €51.11" in out and "Total (excl. VAT)" in out
    [entry] = await desk.store.list_time_entries(ticket_number=number)
    assert entry.amount == Decimal("51.11")
    assert entry.ended_at - entry.started_at == timedelta(minutes=2)  # what was worked is kept as worked
