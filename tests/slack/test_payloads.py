"""Reading request bodies: the route hands Slack's bodies to Bolt, whose parse the listeners and
the shape check read; it gives exactly what parse_qs would, and what a person typed survives it."""

from __future__ import annotations

import json
import urllib.parse

import pytest
from slack_bolt.request.async_request import AsyncBoltRequest

from tests.slack.conftest import reference

FORM = "application/x-www-form-urlencoded"


def slow_parse(raw: str):
    fields = urllib.parse.parse_qs(raw, keep_blank_values=True)
    return json.loads(fields["payload"][0]) if "payload" in fields else {k: v[0] for k, v in fields.items()}


def bolt_parse(raw: str):
    return AsyncBoltRequest(body=raw, headers={"content-type": FORM}).body


@pytest.mark.parametrize("name", ["block_actions.form.txt", "view_submission.form.txt", "slash_command.form.txt"])
def test_slack_s_real_form_bodies_parse_as_parse_qs_would(name):
    raw = reference(f"payloads/{name}").read_text(encoding="utf-8").strip()
    assert bolt_parse(raw) == slow_parse(raw)


@pytest.mark.parametrize("text", [
    "a + b = c", "50% off & more", "café, crème brûlée — 😀", 'quotes "x" and {braces} [and] <tags>',
    "%41 literally", "plus+sign", "/?#&=;@$,", "tab\\tand\\nnewline", "",
])
def test_what_a_person_typed_survives_the_parse(text):
    payload = {"type": "view_submission", "view": {"state": {"values": {"d": {"d": {"value": text}}}}}}
    raw = urllib.parse.urlencode({"payload": json.dumps(payload, ensure_ascii=False)})
    assert bolt_parse(raw) == payload == slow_parse(raw)
