"""Reading request bodies: the fast path for interactivity gives exactly what parse_qs would."""

from __future__ import annotations

import json
import urllib.parse

import pytest

from adapters.slack.payloads import _unquote, parse_body
from tests.slack.conftest import reference

FORM = "application/x-www-form-urlencoded"


def slow_parse(raw: str):
    fields = urllib.parse.parse_qs(raw, keep_blank_values=True)
    return json.loads(fields["payload"][0]) if "payload" in fields else {k: v[0] for k, v in fields.items()}


@pytest.mark.parametrize("name", ["block_actions.form.txt", "view_submission.form.txt", "slash_command.form.txt"])
def test_slack_s_real_form_bodies_parse_as_parse_qs_would(name):
    raw = reference(f"payloads/{name}").read_text(encoding="utf-8").strip()
    assert parse_body(raw, FORM) == slow_parse(raw)


@pytest.mark.parametrize("text", [
    "a + b = c", "50% off & more", "café, crème brûlée — 😀", 'quotes "x" and {braces} [and] <tags>',
    "%41 literally", "plus+sign", "/?#&=;@$,", "tab\\tand\\nnewline", "",
])
def test_what_a_person_typed_survives_the_fast_unquote(text):
    payload = {"type": "view_submission", "view": {"state": {"values": {"d": {"d": {"value": text}}}}}}
    raw = urllib.parse.urlencode({"payload": json.dumps(payload, ensure_ascii=False)})
    assert parse_body(raw, FORM) == payload == slow_parse(raw)


def test_the_fast_unquote_agrees_with_urllib_on_escapes():
    for text in ["%2F%3F%23%26%3D%25%2B%3B%40%24%2C", "%C3%A9%E2%82%AC", "%22%7B%7D%5B%5D", "%25zz", "100%", "%2"]:
        assert _unquote(text) == urllib.parse.unquote(text), text
