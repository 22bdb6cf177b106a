"""Render the exported card JSON (docs/rendering/*.json) to the README pictures (docs/images/*.png).

* Teams: the Adaptive Card goes through Microsoft's own Adaptive Cards JavaScript renderer
  (npm `adaptivecards`, with `markdown-it` for the markdown TextBlocks) with a Teams-like host
  config (Teams' light theme colours, spacing and font sizes; Segoe UI, else Open Sans) and a
  little CSS for Teams' inputs and buttons, inside a Teams-like chat message.
* Slack: there is no official Block Kit renderer, so the view / message JSON is laid out here as
  HTML with Slack's look (Lato, modal header with the app icon, input labels, "(optional)",
  placeholders, hints, Cancel / green submit footer; message fields in two columns). Only the
  block and element types CareDesk sends are drawn; anything else stops the script.

Each page is opened in headless Chromium twice: once to measure the height of the content
(`--dump-dom`), then to take a screenshot of exactly that size. Nothing here is used by the
test suite. Run it through `docs/rendering/render.sh`, which installs the npm packages in a
temporary folder first; by hand:

    .venv/bin/python docs/rendering/render.py --node-modules /tmp/caredesk-render/node_modules
"""

from __future__ import annotations

import argparse
import html
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
IMAGES = ROOT / "docs" / "images"
SCALE = 1.5  # device pixels per CSS pixel: crisp text, and every picture stays under 1000 px wide
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--hide-scrollbars", "--allow-file-access-from-files", f"--force-device-scale-factor={SCALE}",
]
# Teams' light theme: the colours of the Adaptive Cards sample host config "microsoft-teams-light",
# with a darker "good" and "warning" than that sample (its light green is hard to read on white).
TEAMS_COLORS = {
    "default": ("#252424", "#bf252424"), "dark": ("#252424", "#bf252424"), "light": ("#ffffff", "#fff3f2f1"),
    "accent": ("#6264a7", "#8b8cc7"), "good": ("#237b4b", "#e5237b4b"), "warning": ("#c19c00", "#e5c19c00"),
    "attention": ("#c4314b", "#e5c4314b"),
}
MEASURE = re.compile(r'id="caredesk-height"[^>]*>([^<]*)<')


# ---- Teams ------------------------------------------------------------------------------------------------


def teams_host_config() -> dict[str, Any]:
    colors = {name: {"default": c[0], "subtle": c[1]} for name, c in TEAMS_COLORS.items()}
    font = "'Segoe UI', 'Open Sans', system-ui, sans-serif"
    sizes = {"small": 12, "default": 14, "medium": 14, "large": 18, "extraLarge": 24}
    weights = {"lighter": 200, "default": 400, "bolder": 600}
    return {
        "supportsInteractivity": True,
        "spacing": {"small": 8, "default": 12, "medium": 16, "large": 20, "extraLarge": 24, "padding": 16},
        "separator": {"lineThickness": 1, "lineColor": "#E1DFDD"},
        "fontTypes": {"default": {"fontFamily": font, "fontSizes": sizes, "fontWeights": weights},
                       "monospace": {"fontFamily": "'Courier New', monospace", "fontSizes": sizes,
                                     "fontWeights": weights}},
        "containerStyles": {
            "default": {"backgroundColor": "#ffffff", "foregroundColors": colors},
            "emphasis": {"backgroundColor": "#f9f8f7", "foregroundColors": colors},
        },
        "actions": {"maxActions": 6, "spacing": "default", "buttonSpacing": 8, "actionsOrientation": "horizontal",
                    "actionAlignment": "left", "showCard": {"actionMode": "inline", "inlineTopMargin": 16}},
        "inputs": {"label": {"requiredInputs": {"weight": "bolder", "suffix": " *", "suffixColor": "attention"},
                             "optionalInputs": {"weight": "bolder"}, "inputSpacing": "small"},
                   "errorMessage": {"size": "small", "color": "attention", "spacing": "small"}},
        "factSet": {"title": {"weight": "bolder", "wrap": True, "maxWidth": 190}, "value": {"wrap": True},
                    "spacing": 16},
    }


TEAMS_CSS = """
body { margin: 0; background: #f5f5f5; font-family: 'Segoe UI', 'Open Sans', sans-serif; color: #242424; }
.chat { width: 640px; padding: 20px 24px 24px 20px; box-sizing: border-box; display: flex; gap: 12px; }
.avatar { flex: none; width: 32px; height: 32px; border-radius: 50%; background: #4f52b2; color: #fff;
          font: 600 12px/32px 'Open Sans', sans-serif; text-align: center; }
.bubble { flex: 1; min-width: 0; }
.meta { font-size: 12px; color: #616161; margin: 0 0 4px 2px; }
.meta b { color: #242424; font-weight: 600; margin-right: 8px; }
.card { background: #fff; border-radius: 6px; box-shadow: 0 1px 2px rgba(0,0,0,.14), 0 0 2px rgba(0,0,0,.12);
        overflow: hidden; }
.ac-adaptiveCard { font-family: 'Segoe UI', 'Open Sans', sans-serif; }
.ac-textBlock p { margin: 0; }
.ac-textBlock p + p { margin-top: 6px; }
.ac-input { font-family: inherit; font-size: 14px; }
.ac-input.ac-textInput, .ac-input.ac-multichoiceInput, .ac-input.ac-numberInput, .ac-input.ac-dateInput,
.ac-input.ac-timeInput { background: #f5f5f5; border: 1px solid transparent; border-bottom: 1px solid #d1d1d1;
        border-radius: 4px; padding: 6px 10px; height: 32px; box-sizing: border-box; color: #242424; }
.ac-input.ac-textInput.ac-multiline { height: 64px; resize: none; }
.ac-input::placeholder { color: #707070; }
.ac-input-container { width: 100%; }
.ac-choiceSetInput-expanded label, .ac-choiceSetInput-expanded span { font-size: 14px; }
.ac-pushButton { font-family: inherit; font-size: 14px; font-weight: 600; border-radius: 4px; height: 32px;
        padding: 0 16px; background: #fff; color: #242424; border: 1px solid #d1d1d1; flex: 0 1 auto !important; }
.ac-pushButton.style-positive { background: #5b5fc7; color: #fff; border-color: #5b5fc7; }
.ac-pushButton.style-destructive { background: #fff; color: #c4314b; border-color: #c4314b; }
"""

TEAMS_PAGE = """<!doctype html>
<html><head><meta charset="utf-8">
<link rel="stylesheet" href="{modules}/adaptivecards/dist/adaptivecards.css">
<style>{css}</style>
<script src="{modules}/markdown-it/dist/browser/markdown-it.umd.min.js"></script>
<script src="{modules}/adaptivecards/dist/adaptivecards.min.js"></script>
</head><body>
<div class="chat"><div class="avatar">CD</div><div class="bubble">
<div class="meta"><b>CareDesk</b>{time}</div><div class="card" id="card"></div></div></div>
<script>
const md = window.markdownit();
AdaptiveCards.AdaptiveCard.onProcessMarkdown = (text, result) => {{
  result.outputHtml = md.render(text); result.didProcess = true;
}};
const card = new AdaptiveCards.AdaptiveCard();
card.hostConfig = new AdaptiveCards.HostConfig({host});
card.parse({card}, new AdaptiveCards.SerializationContext());
const rendered = card.render();
if (!rendered) throw new Error("the Adaptive Cards renderer rendered nothing");
document.getElementById("card").appendChild(rendered);
const errors = card.validateProperties().validationEvents.map(e => e.message);
const marker = document.createElement("div");
marker.id = "caredesk-height";
marker.textContent = Math.ceil(document.querySelector(".chat").getBoundingClientRect().height)
  + (errors.length ? " errors: " + JSON.stringify(errors) : "");
marker.style.display = "none";
document.body.appendChild(marker);
</script></body></html>
"""


def teams_page(card: dict[str, Any], modules: Path, time: str) -> str:
    def js(value: Any) -> str:
        return json.dumps(value, ensure_ascii=False).replace("</", "<\\/")

    return TEAMS_PAGE.format(modules=modules.as_uri(), css=TEAMS_CSS, host=js(teams_host_config()), card=js(card),
                             time=html.escape(time))


# ---- Slack ------------------------------------------------------------------------------------------------

EMOJI = {"white_check_mark": "\u2705", "warning": "\u26a0\ufe0f", "x": "\u274c", "wave": "\U0001f44b",
         "bell": "\U0001f514", "rotating_light": "\U0001f6a8", "ticket": "\U0001f3ab"}

SLACK_CSS = """
body { margin: 0; font-family: 'Lato', 'Open Sans', sans-serif; color: #1d1c1d; font-size: 15px; line-height: 1.46668; }
.backdrop { background: rgba(29,28,29,.55); padding: 28px; width: 620px; box-sizing: border-box; }
.modal { background: #fff; border-radius: 8px; box-shadow: 0 18px 48px rgba(0,0,0,.35); overflow: hidden; }
.modal-head { display: flex; align-items: center; gap: 12px; padding: 18px 20px 18px 28px; border-bottom: 1px solid #dddddd; }
.app-icon { width: 28px; height: 28px; border-radius: 6px; background: #4f52b2; color: #fff;
            font: 900 12px/28px 'Lato', sans-serif; text-align: center; flex: none; }
.modal-title { font-size: 22px; font-weight: 900; flex: 1; }
.modal-x { font-size: 22px; color: #616061; width: 36px; text-align: center; }
.modal-body { padding: 20px 28px 8px; }
.modal-foot { display: flex; justify-content: flex-end; gap: 12px; padding: 20px 28px; border-top: 1px solid #dddddd; }
.btn { font: 700 15px/34px 'Lato', sans-serif; height: 36px; padding: 0 16px; border-radius: 4px; box-sizing: border-box;
       border: 1px solid rgba(29,28,29,.3); background: #fff; color: #1d1c1d; display: inline-block; }
.btn.primary { background: #007a5a; border-color: #007a5a; color: #fff; }
.btn.danger { background: #e01e5a; border-color: #e01e5a; color: #fff; }
.block { margin: 0 0 20px; }
.section { white-space: pre-wrap; overflow-wrap: anywhere; }
.fields { display: grid; grid-template-columns: 1fr 1fr; gap: 8px 16px; margin-top: 4px; }
.section + .fields { margin-top: 8px; }
.label { font-weight: 700; margin-bottom: 8px; }
.optional { font-weight: 400; color: #616061; }
.input { border: 1px solid rgba(29,28,29,.3); border-radius: 4px; min-height: 40px; padding: 9px 12px;
         box-sizing: border-box; color: #1d1c1d; white-space: pre-wrap; }
.input.multiline { min-height: 88px; }
.input.placeholder { color: #868686; }
.select { display: flex; justify-content: space-between; align-items: center; }
.chevron { color: #616061; font-size: 12px; margin-left: 12px; }
.hint { color: #616061; font-size: 13px; margin-top: 6px; }
.context { color: #616061; font-size: 13px; }
.actions { display: flex; flex-wrap: wrap; gap: 8px; }
.actions .btn { height: 28px; line-height: 26px; font-size: 13px; padding: 0 12px; }
.channel { background: #fff; width: 660px; box-sizing: border-box; padding: 8px 0 16px; border: 1px solid #dddddd; }
.channel-head { padding: 10px 20px 12px; border-bottom: 1px solid #dddddd; font-weight: 900; font-size: 18px; margin-bottom: 12px; }
.msg { display: flex; gap: 8px; padding: 8px 20px; }
.msg .app-icon { width: 36px; height: 36px; line-height: 36px; font-size: 14px; border-radius: 6px; }
.msg-body { flex: 1; min-width: 0; }
.msg-meta { margin-bottom: 2px; }
.msg-meta b { font-weight: 900; }
.badge { background: rgba(29,28,29,.13); color: rgba(29,28,29,.7); font-size: 10px; font-weight: 700;
         border-radius: 2px; padding: 1px 3px; margin: 0 4px; vertical-align: 1px; }
.time { color: #616061; font-size: 12px; }
.msg .block { margin: 4px 0 8px; }
"""


def mrkdwn(text: str) -> str:
    """Slack mrkdwn to HTML: the text is already entity-escaped (&amp; &lt; &gt;) by cards/slack.py."""
    out = re.sub(r"(?<![\w*])\*(?!\s)([^*\n]+?)\*(?![\w*])", r"<b>\1</b>", text)
    out = re.sub(r"(?<![\w_])_(?!\s)([^_\n]+?)_(?![\w_])", r"<i>\1</i>", out)
    out = re.sub(r"(?<![\w~])~(?!\s)([^~\n]+?)~(?![\w~])", r"<s>\1</s>", out)
    out = re.sub(r"`([^`\n]+)`", r"<code>\1</code>", out)
    return re.sub(r":([a-z0-9_+-]+):", lambda m: EMOJI.get(m.group(1), m.group(0)), out)


def text_object(obj: dict[str, Any]) -> str:
    if obj["type"] == "mrkdwn":
        return mrkdwn(obj["text"])
    if obj["type"] == "plain_text":
        escaped = html.escape(obj["text"], quote=False)
        if obj.get("emoji"):
            escaped = re.sub(r":([a-z0-9_+-]+):", lambda m: EMOJI.get(m.group(1), m.group(0)), escaped)
        return escaped
    raise ValueError(f"unknown text object {obj['type']!r}")


def _button(element: dict[str, Any]) -> str:
    style = element.get("style", "")
    return f'<span class="btn {style}">{text_object(element["text"])}</span>'


def _select(element: dict[str, Any], placeholder: str) -> str:
    chosen = element.get("initial_option")
    shown = text_object(chosen["text"]) if chosen else html.escape(
        element["placeholder"]["text"] if "placeholder" in element else placeholder)
    css = "input select" + ("" if chosen else " placeholder")
    return f'<div class="{css}"><span>{shown}</span><span class="chevron">&#9660;</span></div>'


def input_element(element: dict[str, Any]) -> str:
    kind = element["type"]
    if kind == "static_select":
        return _select(element, "Select an option")
    if kind == "datepicker":
        return _select({"initial_option": {"text": {"type": "plain_text", "text": element["initial_date"]}}}
                       if "initial_date" in element else element, "Select a date")
    if kind == "timepicker":
        return _select({"initial_option": {"text": {"type": "plain_text", "text": element["initial_time"]}}}
                       if "initial_time" in element else element, "Select time")
    if kind in ("plain_text_input", "email_text_input", "number_input"):
        value = element.get("initial_value", "")
        multiline = " multiline" if element.get("multiline") else ""
        if value:
            return f'<div class="input{multiline}">{html.escape(value)}</div>'
        placeholder = element["placeholder"]["text"] if "placeholder" in element else ""
        return f'<div class="input placeholder{multiline}">{html.escape(placeholder) or "&nbsp;"}</div>'
    raise ValueError(f"input element {kind!r} is not drawn by this script")


def block_html(block: dict[str, Any]) -> str:
    kind = block["type"]
    if kind == "section":
        parts = []
        if "text" in block:
            parts.append(f'<div class="section">{text_object(block["text"])}</div>')
        if "fields" in block:
            cells = "".join(f'<div class="section">{text_object(f)}</div>' for f in block["fields"])
            parts.append(f'<div class="fields">{cells}</div>')
        if "accessory" in block:
            raise ValueError("section accessories are not drawn by this script")
        return f'<div class="block">{"".join(parts)}</div>'
    if kind == "input":
        optional = ' <span class="optional">(optional)</span>' if block.get("optional") else ""
        hint = f'<div class="hint">{text_object(block["hint"])}</div>' if "hint" in block else ""
        return (f'<div class="block"><div class="label">{text_object(block["label"])}{optional}</div>'
                f'{input_element(block["element"])}{hint}</div>')
    if kind == "actions":
        items = []
        for element in block["elements"]:
            items.append(_button(element) if element["type"] == "button" else _select(element, "Select an option"))
        return f'<div class="block actions">{"".join(items)}</div>'
    if kind == "context":
        return f'<div class="block context">{" ".join(text_object(e) for e in block["elements"])}</div>'
    if kind == "header":
        return f'<div class="block" style="font-weight:900;font-size:18px">{text_object(block["text"])}</div>'
    if kind == "divider":
        return '<hr class="block" style="border:0;border-top:1px solid #ddd">'
    raise ValueError(f"block {kind!r} is not drawn by this script")


SLACK_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><style>{css}</style></head><body>{body}
<script>
const marker = document.createElement("div");
marker.id = "caredesk-height";
marker.textContent = Math.ceil(document.body.firstElementChild.getBoundingClientRect().height);
marker.style.display = "none";
document.body.appendChild(marker);
</script></body></html>
"""


def slack_modal_page(view: dict[str, Any]) -> str:
    if view.get("type") != "modal":
        raise ValueError("not a modal view")
    blocks = "".join(block_html(b) for b in view["blocks"])
    foot = ""
    if "close" in view or "submit" in view:
        close = f'<span class="btn">{text_object(view["close"])}</span>' if "close" in view else ""
        submit = f'<span class="btn primary">{text_object(view["submit"])}</span>' if "submit" in view else ""
        foot = f'<div class="modal-foot">{close}{submit}</div>'
    body = (f'<div class="backdrop"><div class="modal"><div class="modal-head"><div class="app-icon">CD</div>'
            f'<div class="modal-title">{text_object(view["title"])}</div><div class="modal-x">&#10005;</div></div>'
            f'<div class="modal-body">{blocks}</div>{foot}</div></div>')
    return SLACK_PAGE.format(css=SLACK_CSS, body=body)


def slack_message_page(message: dict[str, Any], time: str, channel: str = "CareDesk") -> str:
    blocks = "".join(block_html(b) for b in message["blocks"])
    body = (f'<div class="channel"><div class="channel-head">{html.escape(channel)}</div>'
            f'<div class="msg"><div class="app-icon">CD</div><div class="msg-body"><div class="msg-meta">'
            f'<b>CareDesk</b><span class="badge">APP</span><span class="time">{html.escape(time)}</span></div>'
            f'{blocks}</div></div></div>')
    return SLACK_PAGE.format(css=SLACK_CSS, body=body)


# ---- Chromium ---------------------------------------------------------------------------------------------


def chromium(binary: str, profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = [binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


def screenshot(binary: str, page: Path, png: Path, width: int, work: Path) -> tuple[int, int]:
    """Measure the page's content height, then take a screenshot of exactly that size."""
    dom = chromium(binary, work / "profile-measure", "--enable-logging=stderr", "--v=0", "--virtual-time-budget=3000",
                   "--dump-dom", page.as_uri())
    console = [line for line in dom.stderr.splitlines() if ":CONSOLE" in line]
    match = MEASURE.search(dom.stdout)
    if not match:
        said = "\n".join(console) or dom.stderr.strip()[-800:]
        raise SystemExit(f"{page.name}: the page did not render; chromium said:\n{said}")
    height, _, problems = match.group(1).partition(" ")
    if problems:
        raise SystemExit(f"{page.name}: the Adaptive Cards renderer reported {problems}")
    height_px = int(height)
    shot = work / "shot.png"
    shot.unlink(missing_ok=True)
    result = chromium(binary, work / "profile-shot", "--virtual-time-budget=3000", f"--window-size={width},{height_px}",
                      f"--screenshot={shot}", page.as_uri())
    if not shot.exists():
        raise SystemExit(f"{page.name}: no screenshot (chromium said: {result.stderr.strip()[-800:]})")
    shutil.move(str(shot), png)
    return width, height_px


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--node-modules", type=Path, required=True,
                        help="a node_modules folder holding adaptivecards and markdown-it")
    parser.add_argument("--chromium", default=os.environ.get("CHROMIUM", shutil.which("chromium") or "chromium"))
    parser.add_argument("--keep-html", type=Path, help="also write the HTML pages into this folder")
    args = parser.parse_args(argv)
    modules = args.node_modules.resolve()
    for needed in ("adaptivecards/dist/adaptivecards.min.js", "markdown-it/dist/browser/markdown-it.umd.min.js"):
        if not (modules / needed).exists():
            raise SystemExit(f"missing {modules / needed}: run docs/rendering/render.sh (it installs them)")

    def load(name: str) -> dict[str, Any]:
        return json.loads((HERE / name).read_text(encoding="utf-8"))

    pictures: list[tuple[str, int, Callable[[], str]]] = [
        ("teams-ticket-form.png", 640, lambda: teams_page(load("teams-ticket-form.json"), modules, "10:00")),
        ("teams-ticket-summary.png", 640, lambda: teams_page(load("teams-ticket-summary.json"), modules, "10:04")),
        ("teams-ticket-created.png", 640, lambda: teams_page(load("teams-ticket-created.json"), modules, "10:05")),
        ("teams-quote.png", 640, lambda: teams_page(load("teams-quote.json"), modules, "10:07")),
        ("slack-ticket-modal.png", 620, lambda: slack_modal_page(load("slack-ticket-modal.json"))),
        ("slack-quote-message.png", 660, lambda: slack_message_page(load("slack-quote-message.json"), "10:07")),
        ("slack-ticket-created.png", 660, lambda: slack_message_page(load("slack-ticket-created.json"), "10:06")),
    ]
    IMAGES.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="caredesk-render-") as tmp:
        work = Path(tmp)
        for png, width, build in pictures:
            page = work / png.replace(".png", ".html")
            page.write_text(build(), encoding="utf-8")
            if args.keep_html:
                args.keep_html.mkdir(parents=True, exist_ok=True)
                shutil.copy(page, args.keep_html / page.name)
            size = screenshot(args.chromium, page, IMAGES / png, width, work)
            print(f"wrote docs/images/{png} ({round(size[0] * SCALE)}x{round(size[1] * SCALE)} px)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
