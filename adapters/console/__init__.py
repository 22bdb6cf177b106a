"""The console channel: `caredesk chat` talks to the same engine as Slack and Teams.

Reads one line per turn from standard input (a keyboard or a pipe) and prints the replies as
plain text; exits cleanly at end of input. The conversation is stored like any other, so a
killed chat resumes at the same question when started again as the same user.
"""

from __future__ import annotations

import asyncio
import io
import os
import sys
from typing import TextIO

from bot.app.runner import TurnRunner
from bot.domain.validation import strip_controls
from bot.i18n import normalize_language, translate
from bot.protocol.replies import Response
from bot.store.ports import StoreUnavailableError
from bot.protocol.turn import Turn, UserIdentity
from cards.text import render_all

CHANNEL = "console"
RETRY_DELAYS = (0.5, 1, 2, 4)
TENANT = "local"


def console_turn(email: str, lang: str | None, text: str, display_name: str | None = None) -> Turn:
    return Turn(
        channel=CHANNEL,
        tenant=TENANT,
        conversation=f"console:{email.lower()}",
        user=UserIdentity(id=email.lower(), email=email, display_name=display_name, locale=lang),
        text=text,
    )


async def run_chat(conversation: TurnRunner, email: str, lang: str | None,
                   stdin: TextIO = sys.stdin, stdout: TextIO = sys.stdout) -> int:
    try:
        return await _chat(conversation, email, lang, stdin, stdout)
    except BrokenPipeError:
        # The reader went away (`caredesk chat | head`, a closed terminal): every turn answered
        # so far is already saved with its state, so end quietly, with no traceback, and keep
        # Python's own flush at exit from complaining about the same closed pipe.
        _silence(stdout)
        return 0


def _silence(stdout: TextIO) -> None:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, stdout.fileno())
    except (OSError, ValueError, io.UnsupportedOperation):
        pass  # not a real file (a test's StringIO): nothing will flush it at exit


async def _chat(conversation: TurnRunner, email: str, lang: str | None, stdin: TextIO, stdout: TextIO) -> int:
    interactive = stdin.isatty()

    def say(text: str) -> None:
        # Replies carry what people typed (a ticket's description): never raw escape sequences
        # on this terminal, whatever a store written by an older version holds.
        stdout.write(strip_controls(text) + "\n\n")
        stdout.flush()

    opening = console_turn(email, lang, "")
    resumed = await conversation.resume_prompt(opening)
    if resumed:
        say(render_all(resumed))
    else:
        say(render_all((await conversation.handle(console_turn(email, lang, "help"))).replies))
    loop = asyncio.get_running_loop()
    while True:
        if interactive:
            stdout.write("> ")
            stdout.flush()
        line = await loop.run_in_executor(None, stdin.readline)
        if not line:
            break
        text = line.rstrip("\n")
        if not text.strip():
            continue
        reader_gone = False
        if not interactive:
            try:
                stdout.write(f"> {strip_controls(text)}\n")
            except BrokenPipeError:
                # Nobody reads the answer any more, but what was said is still taken and saved.
                reader_gone = True
        response = await _handle_patiently(conversation, console_turn(email, lang, text), say)
        if reader_gone:
            raise BrokenPipeError
        if response is None:
            return 1
        say(render_all(response.replies))
    return 0


async def _handle_patiently(conversation: TurnRunner, turn: Turn, say) -> Response | None:
    """The database may be away for a moment (a restart, a failover): keep what the user typed
    and try again a few times before giving up with a clear message."""
    lang = normalize_language(turn.user.locale, conversation.settings.default_language)
    for delay in RETRY_DELAYS:
        try:
            return await conversation.handle(turn)
        except StoreUnavailableError:
            say(translate(lang, "console.store_unavailable"))
            await asyncio.sleep(delay)
    try:
        return await conversation.handle(turn)
    except StoreUnavailableError:
        say(translate(lang, "console.store_gone"))
        return None
