"""What a free-text message asks for: plain keywords and commands in English, French and Dutch."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Mapping

# The first matching intent wins; phrases are matched as whole words at the start of a message
# or anywhere for the longer phrases.
INTENT_WORDS: dict[str, tuple[str, ...]] = {
    "escalate": (
        "escalate", "escalation", "complaint", "complain",
        "escalade", "escalader", "plainte", "réclamation", "reclamation",
        "escaleren", "escalatie", "klacht",
    ),
    "quote": (
        "quote", "price", "estimate", "cost",
        "devis", "prix", "estimation", "coût", "cout", "tarif",
        "offerte", "prijs", "kostprijs", "schatting",
    ),
    "my_tickets": (
        "status", "my tickets", "tickets", "my ticket", "list",
        "statut", "mes tickets", "suivi",
        "mijn tickets", "opvolging",
    ),
    "contacts": (
        "contact", "contacts", "rates", "rate card", "phone", "office hours", "hours",
        "coordonnées", "coordonnees", "tarifs", "téléphone", "telephone", "heures",
        "contactgegevens", "tarieven", "telefoon", "kantooruren", "openingsuren",
    ),
    "new_ticket": (
        "ticket", "new ticket", "open ticket", "incident", "problem", "issue", "bug", "report", "request", "change",
        "nouveau ticket", "ouvrir", "problème", "probleme", "panne", "demande", "signaler", "changement",
        "modification", "gestion des changements",
        "nieuw ticket", "melding", "storing", "probleem", "aanvraag", "wijziging", "melden",
        "wijzigingsaanvraag", "wijzigingsverzoek", "verzoek",
    ),
    "help": (
        "help", "menu", "start", "hello", "hi", "hey", "?",
        "aide", "bonjour", "salut",
        "hulp", "hallo", "dag", "goeiedag",
    ),
}

# Checked in this order: a change request is also a "request" / "demande" / "aanvraag" (rules
# page §4.2: "demande de modification", "aanvraag tot wijziging"), so its words are looked at
# before the service request's. Phrases match anywhere in the message, words as whole words.
_KIND_HINTS = {
    "change_request": (
        "change request", "request a change", "request for change", "change management",
        "demande de modification", "demande de changement", "gestion des changements",
        "aanvraag tot wijziging", "verzoek tot wijziging", "wijzigingsaanvraag", "wijzigingsverzoek",
        "change", "changement", "changements", "modification", "modifications", "wijziging", "wijzigingen",
    ),
    "incident": ("incident", "problem", "problème", "probleme", "panne", "bug", "storing", "probleem"),
    "service_request": ("request", "question", "demande", "aanvraag", "verzoek", "vraag"),
}


def guess_kind(cleaned: str, words: list[str]) -> str | None:
    """The kind of ticket a first message suggests (shown to the person to confirm, never
    chosen silently), or None."""
    for kind, hints in _KIND_HINTS.items():
        if any((h in cleaned) if " " in h else (h in words) for h in hints):
            return kind
    return None


# What people type to reach the menu's items: alone, inside a typed answer, it asks for another
# dialog rather than answering the question ("quote" is not a module's name).
_MENU_WORDS = frozenset(
    w for intent in ("escalate", "quote", "my_tickets", "contacts", "help") for w in INTENT_WORDS[intent]
) | {"ticket", "new ticket", "open ticket", "nouveau ticket", "nieuw ticket", "tickets",
   "register", "enregistrer", "registreren"}


def is_menu_word(text: str) -> bool:
    """Whether a whole message is one of the menu's own words ("quote", "devis", "tickets")."""
    return " ".join(text.strip().lower().lstrip("/").split()) in _MENU_WORDS


def kind_in_words(text: str) -> str | None:
    """The kind of ticket a sentence names ("c'est une demande de modification"), or None."""
    cleaned = " ".join(text.strip().lower().split())
    return guess_kind(cleaned, re.findall(r"[\w'’?]+", cleaned)) if cleaned else None


@dataclass(frozen=True)
class Intent:
    name: str
    args: Mapping[str, str] = field(default_factory=dict)


def ticket_number_pattern(number_format: str) -> re.Pattern[str]:
    """A regex that finds ticket numbers of the configured format inside a message."""
    parts = re.split(r"(\{[^}]*\})", number_format)
    regex = ""
    for part in parts:
        if part.startswith("{year"):
            regex += r"\d{4}"
        elif part.startswith("{seq"):
            regex += r"\d{1,9}"
        else:
            regex += re.escape(part)
    return re.compile(r"(?<![\w-])" + regex + r"(?![\w-])", re.IGNORECASE)


def detect(text: str, number_pattern: re.Pattern[str]) -> Intent | None:
    cleaned = " ".join(text.strip().lower().split())
    if not cleaned:
        return None
    number_match = number_pattern.search(text)
    number = number_match.group(0).upper() if number_match else None
    words = re.findall(r"[\w'’?]+", cleaned)
    first = words[0] if words else ""
    for intent, phrases in INTENT_WORDS.items():
        for phrase in phrases:
            if " " in phrase:
                hit = cleaned.startswith(phrase)
            else:
                hit = first == phrase
            if hit:
                args: dict[str, str] = {}
                if number:
                    args["number"] = number
                if intent == "new_ticket":
                    if number:
                        return Intent("ticket_info", args)
                    kind = guess_kind(cleaned, words)
                    if kind is not None:
                        args["kind_guess"] = kind
                if intent == "my_tickets" and number:
                    return Intent("ticket_info", args)
                return Intent(intent, args)
    if number:
        # A message that quotes a ticket number is about that ticket, not a new one.
        return Intent("ticket_info", {"number": number})
    if any(h in cleaned for h in _KIND_HINTS["change_request"] if " " in h or len(h) > 12):
        # "I want to request a change…": the guide's phrases name a change request anywhere.
        return Intent("new_ticket", {"kind_guess": "change_request"})
    return None
