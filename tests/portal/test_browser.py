"""The portal chat in a real browser: Debian's Chromium driven by Playwright, on the page and
the Web Chat bundle that CareDesk serves, against the real server on 127.0.0.1.

A customer opens the page with a valid token, walks the guided ticket dialog through cards and
text to a ticket number, loses the socket mid-dialog and goes on, reloads and sees the
conversation; bad tokens get the plain page; what a person types that looks like HTML or
script shows as text; a keyboard alone does it in French on a phone-sized screen."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest

from tests.portal.conftest import LOTTE, card_errors, portal_token

pytestmark = pytest.mark.browser

# Web Chat waits 3 to 15 s before it reconnects a dropped stream; the answer follows.
RECONNECT_MS = 40_000
ANSWER_MS = 15_000
# Where the pictures of docs/portal.md and the README go when asked (else the test's folder).
SHOTS = os.environ.get("CAREDESK_PORTAL_SCREENSHOTS")


async def new_page(browser: Any, *, width: int = 900, height: int = 900, locale: str = "en-US") -> Any:
    context = await browser.new_context(viewport={"width": width, "height": height}, locale=locale,
                                        timezone_id="Europe/Brussels", device_scale_factor=1.5)
    page = await context.new_page()
    page.errors = []  # what the page threw, or what its CSP refused
    page.on("pageerror", lambda error: page.errors.append(str(error)))
    page.on("console", lambda m: page.errors.append(m.text) if m.type == "error" and "favicon" not in m.text
            and "404" not in m.text else None)
    return page


async def bot_says(page: Any, text: str, timeout: float = ANSWER_MS) -> None:
    await page.get_by_text(text, exact=False).last.wait_for(state="visible", timeout=timeout)


async def click_button(page: Any, name: str) -> None:
    await page.get_by_role("button", name=name, exact=True).last.click()


async def type_message(page: Any, text: str) -> None:
    box = page.get_by_role("textbox").last
    await box.fill(text)
    await box.press("Enter")


async def shot(page: Any, tmp_path: Path, name: str) -> Path:
    folder = Path(SHOTS) if SHOTS else tmp_path
    path = folder / name
    if SHOTS:  # for the docs: after Web Chat's typing indicator (5 s) has gone
        await page.wait_for_timeout(5500)
    await page.screenshot(path=str(path))
    return path


async def test_a_customer_opens_a_ticket_loses_the_socket_and_reloads(sqlite_store, serve_portal, browser, tmp_path):
    server = await serve_portal(sqlite_store)
    page = await new_page(browser)
    token = portal_token(LOTTE, name="Lotte Peeters", lang="en")
    await page.goto(server.url(f"/portal/chat?token={token}"))
    await bot_says(page, "What can I do for you?")
    await click_button(page, "Open a ticket")
    await bot_says(page, "What kind of ticket is it?")
    await click_button(page, "Incident (a disruption)")
    await bot_says(page, "Are these details correct?")
    await click_button(page, "Yes, correct")
    await bot_says(page, "In which module")
    await type_message(page, "Invoicing module")
    await bot_says(page, "Please describe it clearly")
    await type_message(page, "Printing an invoice fails with error 42 since the update")
    await bot_says(page, "How can we reproduce the problem?")

    # The socket drops mid-dialog (as on a train, or a server restarting): the person goes on.
    await server.portal.close_streams()
    await type_message(page, "Open an invoice and press Print")
    await bot_says(page, "What did you already test or check", timeout=RECONNECT_MS)
    await type_message(page, "Restarted, same on another PC")
    await bot_says(page, "How urgent is it?")
    await click_button(page, "Normal")
    await bot_says(page, "Please check your ticket")
    await click_button(page, "Create the ticket")
    await bot_says(page, "Your ticket has been created: CS-2026-00001")
    await shot(page, tmp_path, "portal-ticket-created.png")
    assert page.errors == []

    # One ticket, with what was typed (the dropped socket sent nothing twice).
    [ticket] = await sqlite_store.list_tickets(requester_email=LOTTE)
    assert ticket.number == "CS-2026-00001" and ticket.company == "Brasserie De Klok"
    activities = (await server.transcript(*await conversation_of(server, LOTTE)))["activities"]
    typed = [a["text"] for a in activities if a["from"]["role"] == "user"]
    assert typed.count("Open an invoice and press Print") == 1
    # Every card the page was sent is a valid Adaptive Card 1.5.
    shown = [a["content"] for activity in activities for a in activity.get("attachments") or ()]
    assert len(shown) >= 9 and all(card_errors(card) == [] for card in shown)

    # A reload shows the conversation so far; so does the next visit on the session alone.
    await page.reload()
    await bot_says(page, "Your ticket has been created: CS-2026-00001")
    await bot_says(page, "Printing an invoice fails with error 42 since the update")
    await page.goto(server.url("/portal/chat"))
    await bot_says(page, "Your ticket has been created: CS-2026-00001")
    await page.context.close()


async def conversation_of(server: Any, email: str) -> tuple[str, str]:
    started = await server.start(await server.page_token(portal_token(email, name="x")))
    return started["conversationId"], started["token"]


@pytest.mark.parametrize("kind", ["forged", "expired", "wrong audience"])
async def test_a_bad_token_shows_the_plain_page(sqlite_store, serve_portal, browser, kind):
    server = await serve_portal(sqlite_store)
    token = {"forged": portal_token(LOTTE, secret="another-secret-of-enough-length-000000"),
             "expired": portal_token(LOTTE, issued=time.time() - 3600),
             "wrong audience": portal_token(LOTTE, aud="slack")}[kind]
    page = await new_page(browser)
    response = await page.goto(server.url(f"/portal/chat?token={token}"))
    assert response.status == 401
    assert await page.get_by_role("heading").inner_text() == "Please sign in again"
    assert await page.evaluate("typeof window.WebChat") == "undefined"
    assert await page.context.cookies() == []
    await page.context.close()


XSS = {
    "module": '<img src=x onerror="window.__xss=1">Invoicing',
    "description": "<script>window.__xss=2</script> printing fails [click me](javascript:window.__xss=3) **bold**",
    "reproduce": "\"><svg onload=window.__xss=4> open an invoice & press <b>Print</b>",
    "tests": "'; window.__xss=5; ' restarted <iframe src=javascript:window.__xss=6>",
}


async def test_what_a_person_types_shows_as_text(sqlite_store, serve_portal, browser):
    server = await serve_portal(sqlite_store)
    page = await new_page(browser)
    token = portal_token(LOTTE, name='Lotte <img src=x onerror="window.__xss=7">', lang="en")
    await page.goto(server.url(f"/portal/chat?token={token}"))
    await bot_says(page, "What can I do for you?")
    await type_message(page, "ticket")
    await bot_says(page, "What kind of ticket is it?")
    await type_message(page, "Incident")
    await bot_says(page, "Are these details correct?")
    await type_message(page, "yes")
    for field, question in (("module", "In which module"), ("description", "Please describe it clearly"),
                            ("reproduce", "How can we reproduce"), ("tests", "What did you already test")):
        await bot_says(page, question)
        await type_message(page, XSS[field])
    await bot_says(page, "How urgent is it?")
    await type_message(page, "normal")
    await bot_says(page, "Please check your ticket")
    await page.wait_for_timeout(500)
    assert await page.evaluate("window.__xss") is None
    # Nothing of it became an element: no image, frame or svg in the conversation, no script link.
    found = await page.evaluate("Array.from(document.querySelectorAll('img[src=x], iframe, svg[onload], b'))"
                                ".map(e => e.outerHTML)")
    assert found == []
    assert await page.locator("a[href^='javascript']").count() == 0
    shown = await page.locator("body").inner_text()
    # Each answer as typed: in the person's own message and in the summary card to confirm.
    for field, typed in XSS.items():
        assert shown.count(typed) >= 1, field
    assert shown.count("<script>window.__xss=2</script> printing fails") >= 2
    assert shown.count('"><svg onload=window.__xss=4> open an invoice & press <b>Print</b>') >= 2
    assert page.errors == []
    await page.context.close()


async def test_keyboard_only_in_french_on_a_phone(sqlite_store, serve_portal, browser, tmp_path):
    server = await serve_portal(sqlite_store)
    page = await new_page(browser, width=390, height=780, locale="fr-BE")
    token = portal_token("camille.dubois@atelier-lumiere.be", name="Camille Dubois")  # no lang: the browser's
    await page.goto(server.url(f"/portal/chat?token={token}"))
    assert await page.evaluate("document.documentElement.lang") == "fr"
    await bot_says(page, "Que puis-je faire pour vous ?")
    # Keyboard only: Tab reaches the send box, Enter sends.
    for _ in range(30):
        if await page.evaluate("document.activeElement && document.activeElement.matches('input, textarea')"):
            break
        await page.keyboard.press("Tab")
    assert await page.evaluate("document.activeElement.matches('input, textarea')")
    # New messages are announced to screen readers: Web Chat's live region holds each for a
    # moment, so a watcher notes what passes through it.
    await page.evaluate("""() => {
        window.__announced = [];
        const region = document.querySelector('.webchat__live-region-transcript');
        new MutationObserver(() => window.__announced.push(region.textContent))
            .observe(region, {childList: true, subtree: true, characterData: true});
    }""")
    await page.keyboard.type("ticket")
    await page.keyboard.press("Enter")
    await bot_says(page, "De quel type de ticket s'agit-il ?")
    announced = " ".join(await page.evaluate("window.__announced"))
    assert "De quel type de ticket s'agit-il ?" in announced, announced
    # The page fits the phone: nothing wider than the screen.
    assert await page.evaluate("document.documentElement.scrollWidth") <= 390
    await shot(page, tmp_path, "portal-phone-fr.png")
    assert page.errors == []
    await page.context.close()



async def test_a_message_whose_post_answer_was_lost_is_answered_once(sqlite_store, serve_portal, browser):
    """The connection breaks after the server took the message and before the page heard back:
    the message comes back on the stream (its clientActivityID), so the page shows it sent, and
    the desk answers it once. (A message posted twice, as Web Chat's Retry does, is answered once
    too: tests/portal/test_directline.py.)"""
    server = await serve_portal(sqlite_store)
    page = await new_page(browser)
    await page.goto(server.url("/portal/chat?token=" + portal_token(LOTTE, name="Lotte Peeters", lang="en")))
    await bot_says(page, "What can I do for you?")
    cut = []

    async def lose_the_answer(route: Any) -> None:
        if not cut:
            cut.append(await route.fetch())  # the server gets it and answers ...
            await route.abort("connectionreset")  # ... and the page never hears back
        else:
            await route.continue_()

    await page.route("**/portal/v3/directline/conversations/*/activities", lose_the_answer)
    await type_message(page, "ticket")
    await bot_says(page, "What kind of ticket is it?")
    await page.wait_for_timeout(2000)
    assert cut and await page.get_by_text("Send failed", exact=False).count() == 0
    activities = (await server.transcript(*await conversation_of(server, LOTTE)))["activities"]
    assert [a.get("text") for a in activities if a["from"]["role"] == "user"] == ["ticket"]
    assert len([a for a in activities if a["from"]["role"] == "bot"]) == 2  # the welcome and one answer
    assert await page.get_by_text("What kind of ticket is it?").count() == 1
    await page.context.close()
