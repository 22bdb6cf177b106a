"""Issue 15 §2, §5, §6 in the pure engine: the kind of ticket a first message suggests, the
chat's own words inside a dialog, and answers that tell the desk nothing."""

from __future__ import annotations

import pytest

from bot.dialogs.intents import detect, ticket_number_pattern
from bot.domain import validation
from bot.protocol.replies import Choices
from tests.core.engine_driver import Driver, context

NUMBERS = ticket_number_pattern("CS-{year}-{seq:05d}")
DESCRIPTION = "Printing an invoice fails with error 42 since this morning's update"


@pytest.mark.parametrize("text", [
    "demande de modification", "Demande de changement du rapport mensuel", "aanvraag tot wijziging",
    "wijzigingsaanvraag voor de facturatie", "change request", "I want to request a change",
    "request a change to the invoice layout", "gestion des changements", "nouveau ticket: demande de modification",
])
def test_change_requests_are_recognised(text):
    intent = detect(text, NUMBERS)
    assert intent is not None and intent.name == "new_ticket"
    assert intent.args.get("kind_guess") == "change_request"


@pytest.mark.parametrize("text, kind", [
    ("demande d'information sur la facturation", "service_request"),
    ("aanvraag voor een extra gebruiker", "service_request"),
    ("problem with printing", "incident"),
    ("new ticket", None),
])
def test_other_kinds_are_still_told_apart(text, kind):
    intent = detect(text, NUMBERS)
    assert intent is not None and intent.args.get("kind_guess") == kind


def test_a_guessed_kind_is_shown_and_can_be_changed_before_the_summary():
    d = Driver(context())
    out = d.start("new_ticket", kind_guess="change_request")
    assert d.at == "kind" and "looks like: Change request" in out
    choices = [r for r in d.last.replies if isinstance(r, Choices)][0]
    assert [o.value for o in choices.options if o.primary] == ["change_request"]
    d.say("2")  # not the guess: a service request after all
    assert d.data["kind"] == "service_request" and d.at == "contact"


def test_the_kind_in_words_answers_the_kind_question():
    d = Driver(context(lang="fr"))
    d.start("new_ticket")
    d.say("c'est une demande de modification")
    assert d.data["kind"] == "change_request"


def test_back_to_the_kind_and_a_service_request_drops_the_incident_answers():
    d = Driver(context())
    d.start("new_ticket")
    d.say("1")
    d.click("yes")
    d.say("Invoicing")
    d.say(DESCRIPTION)
    d.say("Open an invoice and press Print")
    d.say("Restarted the PC, same on another one")
    assert d.at == "urgency"
    for _ in range(6):
        d.say("back")
        if d.at == "kind":
            break
    assert d.at == "kind"
    d.say("2")
    assert d.data["reproduce"] is None and d.data["diagnostics"] is None
    while d.at != "summary":
        d.say("1")
    d.say("1")
    payload = d.last.effect.payload
    assert payload["kind"] == "service_request" and payload["reproduce"] is None and payload["diagnostics"] is None


def test_a_form_of_another_kind_carries_no_incident_answers():
    d = Driver(context())
    d.start("new_ticket")
    result = d.submit("new_ticket", confirmed=True, kind="service_request", name="Lotte", email="lotte@acme.be",
                      phone="+32 3 555 12 34", module="Reporting", description=DESCRIPTION, urgency="low",
                      reproduce="x", diagnostics="y")
    assert result.effect is not None
    assert result.effect.payload["reproduce"] is None and result.effect.payload["diagnostics"] is None


@pytest.mark.parametrize("word", ["ticket", "quote", "/help", "/tickets", "devis", "offerte"])
def test_menu_words_inside_a_dialog_say_how_to_leave(word):
    d = Driver(context())
    d.start("new_ticket")
    out = d.say(word)
    assert d.at == "kind"
    assert "cancel" in out and "Please pick one of the options" not in out


def test_slash_help_is_help():
    d = Driver(context())
    d.start("new_ticket")
    out = d.say("/help")
    assert "disruption" in out and d.at == "kind"


@pytest.mark.parametrize("mash", ["asdfgh qwerty zxcvb lkjhg poiuy", "sdkfjh qwpoe asdasd fdfdfd kjhkjh",
                                  "aaaaaaaaaaaaaaaaaaaaaaaaaaaa"])
def test_keyboard_mash_is_no_description(mash):
    d = Driver(context())
    d.start("new_ticket", kind="incident")
    d.click("yes")
    d.say("Invoicing")
    out = d.say(mash)
    assert d.at == "description" and "random keys" in out and "for example" in out


@pytest.mark.parametrize("text", [
    DESCRIPTION, "Graag een extra kolom met het btw-nummer van de klant in het maandrapport",
    "Comment puis-je exporter les factures du mois en PDF pour notre comptable ?",
    "Die Schnittstelle zum Lagerverwaltungssystem bricht seit gestern ab",
])
def test_real_sentences_are_not_mash(text):
    assert not validation.is_keyboard_mash(text)


@pytest.mark.parametrize("answer", ["x", ".", "ok", "-", "ghjkl hjkl"])
def test_one_character_reproduce_and_diagnostics_are_asked_again_with_an_example(answer):
    d = Driver(context())
    d.start("new_ticket", kind="incident")
    d.click("yes")
    d.say("Invoicing")
    d.say(DESCRIPTION)
    out = d.say(answer)
    assert d.at == "reproduce" and "for example" in out
    d.say("Open an invoice and press Print")
    out = d.say(answer)
    assert d.at == "diagnostics" and "for example" in out
    d.say("Restarted")
    assert d.at == "urgency"


def test_escape_sequences_are_removed_whole():
    text = "a\x1b[31mred\x1b[0m \x1b]0;owned\x07title \x9b2Jgone\x1bcok\x00"
    assert validation.strip_controls(text) == "ared title goneok"
    assert validation.long_text("line\x1b[2K\n\x1b[1Anext") == "line\nnext"


# ---- §5: the rate card's participant limit, local times the clocks skip or repeat --------------


def test_more_teamviewer_participants_than_the_rate_card_allows_says_why():
    d = Driver(context(company=None, contact=None))
    d.start("quote", service="teamviewer")
    d.say("26/11/2026")
    d.say("16:00")
    d.say("1h")
    out = d.say("4")
    assert d.at == "participants" and "rate card" in out and "at most 3" in out
    out = d.say("3")
    assert d.state is None and "€" in out


def test_a_time_in_the_spring_gap_is_explained_and_asked_again():
    d = Driver(context(now="2026-03-20T10:00"))
    d.start("quote", service="development")
    d.say("29/03/2026")
    out = d.say("02:30")
    assert d.at == "time" and "does not exist" in out and "03:30" in out
    d.say("03:30")
    assert d.at == "duration"


def test_a_time_the_autumn_night_repeats_is_asked_with_its_offset():
    d = Driver(context(now="2026-10-20T10:00", lang="nl"))
    d.start("quote", service="development")
    d.say("25/10/2026")
    out = d.say("02:30")
    assert d.at == "time" and "02:30+02:00" in out and "02:30+01:00" in out
    d.say("02:30+01:00")
    assert d.at == "duration" and d.data["time"] == "02:30+01:00"
    out = d.say("1h")
    assert d.state is None and "03:30" in out  # the second 02:30 (winter time), one hour


def test_logtime_at_a_time_that_does_not_exist_is_explained():
    from bot.domain.time_entries import parse_start
    from bot.domain.validation import Invalid
    from tests.core.engine_driver import BXL
    from datetime import datetime

    now = datetime(2026, 3, 30, 10, 0, tzinfo=BXL)
    with pytest.raises(Invalid) as raised:
        parse_start(["at", "2026-03-29", "02:15"], now)
    assert raised.value.key == "validation.time_gap"
    start, _ = parse_start(["at", "2026-10-25", "02:15+01:00"], datetime(2026, 10, 26, 10, 0, tzinfo=BXL))
    assert start.utcoffset().total_seconds() == 3600


# ---- §5: durations and amounts as each language writes them -------------------------------------


def test_durations_and_rates_in_each_language():
    from decimal import Decimal

    from bot.i18n import format_duration, format_rate

    assert [format_duration(m, "en") for m in (90, 2, 120)] == ["1 h 30", "0 h 02", "2 h"]
    assert format_duration(90, "nl") == "1 u 30"
    rate = Decimal("102.21")
    assert (format_rate(rate, "en"), format_rate(rate, "fr"), format_rate(rate, "nl")) == (
        "€102.21/h", "102,21\xa0€/h", "€\xa0102,21/u")


def test_a_quote_line_shows_duration_times_rate_times_surcharge():
    d = Driver(context(lang="nl", company=None, contact=None))
    d.start("quote", service="teamviewer")
    d.say("26/11/2026")
    d.say("16:30")
    d.say("2h")
    out = d.say("1")
    assert "0 u 30 × €\xa0102,21/u × 100% (kantooruren) = €\xa051,11" in out
    assert "1 u 30 × €\xa0102,21/u × 150%" in out


def test_service_names_are_case_insensitive():
    from datetime import datetime

    from bot.domain.config import Settings
    from bot.domain.quote import QuoteEngine
    from tests.core.engine_driver import BXL

    settings = Settings()
    assert settings.service("TeamViewer") is settings.service("teamviewer") is not None
    start = datetime(2026, 11, 26, 10, 0, tzinfo=BXL)
    quote = QuoteEngine.from_settings(settings).quote("TEAMVIEWER", start, start.replace(hour=11))
    assert quote.service.key == "teamviewer"


@pytest.mark.parametrize("word", ["quote", "tickets", "/quote", "Devis"])
def test_a_menu_word_is_no_answer_to_a_typed_question(word):
    d = Driver(context())
    d.start("new_ticket", kind="incident")
    d.click("yes")
    assert d.at == "module"
    out = d.say(word)
    assert d.at == "module" and "cancel" in out and "module" not in d.data
    d.say("Invoicing")
    assert d.at == "description"
