"""A clicked Slack element to the core's action and value (adapters.slack.payloads.clicked): the
action_id is read by bot.protocol.ids only, and what is not a CareDesk element is None."""

from __future__ import annotations

import pytest

from adapters.slack.payloads import clicked


def test_a_button_gives_its_core_action_as_the_turn_carries_it_and_its_value():
    assert clicked({"type": "button", "action_id": "cd.3.new_ticket:kind:abcd1234", "value": "incident"}) == (
        "new_ticket:kind:abcd1234", "incident")
    assert clicked({"type": "button", "action_id": "cd.0.escalation", "value": "ack:CS-2026-00042"}) == (
        "escalation", "ack:CS-2026-00042")


def test_a_select_gives_the_chosen_options_value():
    action = {"type": "static_select", "action_id": "cd.1.escalate:ticket:1234abcd",
              "selected_option": {"value": "CS-2026-00007"}}
    assert clicked(action) == ("escalate:ticket:1234abcd", "CS-2026-00007")
    assert clicked({"type": "static_select", "action_id": "cd.1.menu"}) == ("menu", "")


@pytest.mark.parametrize("action_id", [
    None, 42, "", "something_else", "cd.x.menu", "cd.1.", "cd.1.not_a_core_action", "cd.0.form:a b",
    "cd.999." + "x" * 200, "new_ticket", "kind",
])
def test_an_element_that_is_not_ours_or_carries_no_core_action_is_none(action_id):
    assert clicked({"type": "button", "action_id": action_id, "value": "x"}) is None
