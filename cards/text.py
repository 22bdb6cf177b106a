"""Plain-text rendering of the core's replies, for the console (and logs, and tests).

Choices are numbered so they can be answered by number or label; a form is listed field by
field (the console asks them one by one through the dialog itself).
"""

from __future__ import annotations

from bot.protocol.replies import Choices, Confirmation, Facts, Form, Reply, Text, Tone

_TONE_MARK = {Tone.PLAIN: "", Tone.SUCCESS: "✔ ", Tone.WARNING: "⚠ ", Tone.ERROR: "✖ "}


def render(reply: Reply) -> str:
    if isinstance(reply, Text):
        return _TONE_MARK[reply.tone] + reply.text
    if isinstance(reply, Facts):
        return _facts(reply.title, reply.facts)
    if isinstance(reply, Choices):
        lines = [reply.prompt]
        lines += [f"  {i}. {option.label}" for i, option in enumerate(reply.options, 1)]
        return "\n".join(lines)
    if isinstance(reply, Confirmation):
        options = [reply.confirm] + ([reply.edit] if reply.edit else []) + [reply.cancel]
        body = _facts(reply.title, reply.facts)
        return body + "\n" + "\n".join(f"  {i}. {o.label}" for i, o in enumerate(options, 1))
    if isinstance(reply, Form):
        lines = [f"== {reply.title} =="]
        if reply.intro:
            lines.append(reply.intro)
        for field in reply.fields:
            mark = "*" if field.required else " "
            value = f" [{field.value}]" if field.value else ""
            lines.append(f" {mark} {field.label}{value}")
            if field.error:
                lines.append(f"     ✖ {field.error}")
        return "\n".join(lines)
    raise TypeError(f"not a reply: {reply!r}")


def render_all(replies) -> str:
    return "\n\n".join(render(r) for r in replies)


def _facts(title: str | None, facts) -> str:
    lines = [f"== {title} =="] if title else []
    width = min(max((len(label) for label, _ in facts), default=0), 32)
    for label, value in facts:
        value_lines = str(value).splitlines() or [""]
        lines.append(f"  {label:<{width}}  {value_lines[0]}")
        lines.extend(f"  {'':<{width}}  {more}" for more in value_lines[1:])
    return "\n".join(lines)
