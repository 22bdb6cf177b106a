"""The `caredesk` command: server, database, directory, quotes and tickets from a terminal.

Exit codes: 0 success, 2 bad input (one line on stderr, nothing written), 1 anything else.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any, AsyncIterator, Mapping, Sequence

from bot.domain.clock import clock_from_settings
from bot.domain.config import ConfigError, Settings, is_email, load_settings
from bot.app.desk import Desk
from bot.domain.directory import DirectoryError, read_directory_file
from adapters.server.config import MAX_WORKERS, ServerConfig
from adapters.shared.pressure import AckPressure
from bot.i18n import translate
from bot.domain.quote import QuoteError
from bot.store import open_store
from bot.store.ports import StoreUnavailableError
from bot.domain.parsing import combine_local
from bot.domain.validation import Invalid

log = logging.getLogger("caredesk")


class UsageError(Exception):
    """Bad input: exit code 2 with this one-line message."""


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    # A server logs what it does; a one-shot command or the chat only what went wrong.
    default_level = "INFO" if getattr(args, "handler", None) in (cmd_serve, cmd_worker) else "WARNING"
    logging.basicConfig(
        level=os.environ.get("CAREDESK_LOG_LEVEL", default_level).upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if not hasattr(args, "handler"):
        parser.print_help()
        return 2
    try:
        settings = load_settings(args.config)
        # The adapters' sections and variables are theirs to check, but every command refuses
        # a wrong one at start-up, as it refuses a wrong key of the core's.
        check_adapter_settings(settings, os.environ)
    except ConfigError as exc:
        print(f"caredesk: {exc}", file=sys.stderr)
        return 2
    try:
        return asyncio.run(args.handler(settings, args)) or 0
    except UsageError as exc:
        print(f"caredesk: {exc}", file=sys.stderr)
        return 2
    except StoreUnavailableError as exc:
        print(f"caredesk: the database is unavailable ({exc})", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # `caredesk … | head`: the reader has what it wanted; no traceback, and no second
        # complaint when Python flushes the same closed pipe at exit.
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError):
            pass
        return 0


def check_adapter_settings(settings: Settings, env: Mapping[str, str]) -> None:
    """Each adapter parses its own section of the file and its own environment variables;
    `ConfigError` names the first key or variable that is wrong."""
    from adapters.portal.config import PortalConfig
    from adapters.slack.config import SlackConfig
    from adapters.teams.config import TeamsConfig

    ServerConfig.load(settings, env)
    SlackConfig.load(settings, env)
    TeamsConfig.from_settings(settings, env)
    PortalConfig.from_settings(settings, env)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="caredesk", description="CareDesk: the service desk's Slack and Teams bot.")
    p.add_argument("--config", help="TOML settings file (default: $CAREDESK_CONFIG or ./caredesk.toml)")
    sub = p.add_subparsers(metavar="COMMAND")

    s = sub.add_parser("serve", help="run the HTTP server (Slack and Teams endpoints, health checks)")
    s.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    s.add_argument("--port", type=int, help="port (default 3978)")
    s.add_argument("--workers", type=int,
                   help="worker processes to start beside the server for the work behind the acks and the "
                        "outbox (default [server] workers, 0: the server does it itself)")
    s.set_defaults(handler=cmd_serve)

    w = sub.add_parser("worker", help="work on what people sent, deliver the outbox and climb escalations "
                                      "(without the HTTP server)")
    w.add_argument("--concurrency", type=int, default=8,
                   help="requests worked on at the same time (default 8)")
    w.add_argument("--nice", type=int, default=0,
                   help="lower this process's CPU priority by N (0-19; `serve --workers` uses 10 so that "
                        "acknowledgements always come first)")
    w.add_argument("--parent-pid", type=int, help=argparse.SUPPRESS)  # set by `serve --workers`
    w.add_argument("--pressure-fd", type=int, help=argparse.SUPPRESS)  # set by `serve --workers`
    w.add_argument("--interval", type=float, default=2.0, help="seconds between rounds (default 2)")
    w.add_argument("--lease-seconds", type=float, default=300.0,
                   help="how long a message being delivered is reserved; a worker that dies mid-delivery "
                        "leaves it to another one after this (default 300)")
    w.set_defaults(handler=cmd_worker)

    sm = sub.add_parser("slack-manifest", help="print the Slack app manifest with the request URLs filled in")
    sm.add_argument("--url", required=True, help="the public base URL, e.g. https://caredesk.example.com")
    sm.add_argument("--socket-mode", action="store_true", help="for Socket Mode (no request URLs)")
    sm.set_defaults(handler=cmd_slack_manifest)

    tp = sub.add_parser("teams-package", help="write the Teams app package (zip) to upload")
    tp.add_argument("--app-id", required=True, help="the bot's Microsoft App ID (a GUID)")
    tp.add_argument("--out", default="caredesk-teams.zip")
    tp.set_defaults(handler=cmd_teams_package)

    db = sub.add_parser("db", help="database schema").add_subparsers(metavar="ACTION")
    up = db.add_parser("upgrade", help="bring the schema up to date")
    up.set_defaults(handler=cmd_db_upgrade)

    d = sub.add_parser("directory", help="who is who").add_subparsers(metavar="ACTION")
    dl = d.add_parser("load", help="load the directory from a YAML or TOML file (idempotent)")
    dl.add_argument("file")
    dl.set_defaults(handler=cmd_directory_load)

    oc = sub.add_parser("oncall", help="the on-call rota (loaded with the directory)").add_subparsers(metavar="ACTION")
    ocs = oc.add_parser("show", help="who is on duty now (or at --at), with the backup and until when")
    ocs.add_argument("--at", help="a date-time, e.g. 2026-12-24T22:00 (Europe/Brussels unless an offset is given)")
    ocs.add_argument("--json", action="store_true")
    ocs.set_defaults(handler=cmd_oncall_show)

    q = sub.add_parser("quote", help="price a service over a span of time")
    q.add_argument("--service", required=True)
    q.add_argument("--start", required=True, help="ISO date-time; without an offset: Europe/Brussels local time")
    q.add_argument("--end", required=True)
    q.add_argument("--participants", type=int, default=1)
    q.add_argument("--customer", help="apply this company's SLA multipliers")
    q.add_argument("--lang", default="en", choices=("en", "fr", "nl"))
    q.add_argument("--json", action="store_true")
    q.set_defaults(handler=cmd_quote)

    t = sub.add_parser("tickets", help="register and read tickets").add_subparsers(metavar="ACTION")
    tc = t.add_parser("create", help="register a ticket that came by mail, phone or in person")
    tc.add_argument("--kind", required=True, help="incident, service_request or change_request")
    tc.add_argument("--requester", required=True, help="the customer contact's e-mail")
    tc.add_argument("--module", required=True, help="module or hardware/environment")
    tc.add_argument("--description", required=True)
    tc.add_argument("--reproduce")
    tc.add_argument("--diagnostics")
    tc.add_argument("--urgency", default="normal", help="low, normal, high or critical")
    tc.add_argument("--by", help="the agent's e-mail, recorded as creator")
    tc.add_argument("--json", action="store_true")
    tc.set_defaults(handler=cmd_tickets_create)
    tl = t.add_parser("list", help="list tickets, newest first")
    tl.add_argument("--requester")
    tl.add_argument("--company")
    tl.add_argument("--open", action="store_true", help="only open tickets")
    tl.add_argument("--json", action="store_true")
    tl.set_defaults(handler=cmd_tickets_list)
    ts = t.add_parser("show", help="show one ticket")
    ts.add_argument("number")
    ts.add_argument("--json", action="store_true")
    ts.set_defaults(handler=cmd_tickets_show)
    b = sub.add_parser("billing", help="billing of logged time").add_subparsers(metavar="ACTION")
    br = b.add_parser("report", help="the month's time entries with their multiplier lines and totals")
    br.add_argument("--month", required=True, help="YYYY-MM (Europe/Brussels)")
    br.add_argument("--customer", help="only this company")
    br.add_argument("--format", choices=("text", "csv", "json"), default="text")
    br.set_defaults(handler=cmd_billing_report)

    e = sub.add_parser("escalations", help="escalations").add_subparsers(metavar="ACTION")
    el = e.add_parser("list", help="open escalations, their level and age")
    el.add_argument("--all", action="store_true", help="also acknowledged and closed ones")
    el.add_argument("--json", action="store_true")
    el.set_defaults(handler=cmd_escalations_list)

    o = sub.add_parser("outbox", help="messages the bot sends on its own initiative").add_subparsers(metavar="ACTION")
    ol = o.add_parser("list", help="list outbox messages")
    ol.add_argument("--failed", action="store_true", help="only dead-lettered messages")
    ol.add_argument("--json", action="store_true")
    ol.set_defaults(handler=cmd_outbox_list)
    orq = o.add_parser("retry", help="re-queue dead-lettered messages")
    orq.add_argument("ids", nargs="*", type=int, help="message ids (default: every failed message)")
    orq.set_defaults(handler=cmd_outbox_retry)

    ib = sub.add_parser("inbox", help="what people sent, waiting for a worker or given up").add_subparsers(
        metavar="ACTION")
    il = ib.add_parser("list", help="list inbox items (unfinished ones by default)")
    which = il.add_mutually_exclusive_group()
    which.add_argument("--failed", action="store_true",
                       help="only items given up after their last attempt (dead letters)")
    which.add_argument("--all", action="store_true", help="every item kept, done ones included")
    il.add_argument("--json", action="store_true")
    il.set_defaults(handler=cmd_inbox_list)

    c = sub.add_parser("chat", help="talk to CareDesk in the terminal (reads lines from standard input)")
    c.add_argument("--as", dest="email", required=True, help="the e-mail of the person you play")
    c.add_argument("--lang", choices=("en", "fr", "nl"), help="language (default: the person's, else English)")
    c.set_defaults(handler=cmd_chat)
    return p


@asynccontextmanager
async def _desk(settings: Settings) -> AsyncIterator[Desk]:
    store = open_store(settings.database_url)
    try:
        await store.initialize()
        yield Desk(settings, store, clock_from_settings(settings.fixed_now, settings.calendar.tz))
    finally:
        await store.close()


def _print_json(value: Any) -> None:
    print(json.dumps(value, ensure_ascii=False, indent=2))


# ---- commands ------------------------------------------------------------------------------------


async def cmd_serve(settings: Settings, args: argparse.Namespace) -> int:
    from adapters.server.web import serve

    server = ServerConfig.load(settings, os.environ)
    workers = args.workers if args.workers is not None else server.workers
    if not 0 <= workers <= MAX_WORKERS:
        raise UsageError(f"--workers must be between 0 and {MAX_WORKERS}")
    # The channels check the address really listened on (developer mode only on loopback).
    server = replace(server, host=args.host or server.host, port=args.port if args.port is not None else server.port,
                     workers=workers)
    async with _desk(settings) as desk:
        await serve(desk, server, config=args.config)
    return 0


async def cmd_worker(settings: Settings, args: argparse.Namespace) -> int:
    """The outbox dispatcher and the escalation climb without the HTTP server (run as many as
    you like against one PostgreSQL database)."""
    import signal

    from adapters.server.channels import Channels
    from adapters.server.delivery import ChannelDelivery
    from adapters.server.web import inbox_worker
    from bot.app.outbox import Dispatcher

    if not args.lease_seconds > 0:
        raise UsageError("--lease-seconds must be a positive number of seconds")
    if not 1 <= args.concurrency <= 256:
        raise UsageError("--concurrency must be between 1 and 256")
    if not 0 <= args.nice <= 19:
        raise UsageError("--nice must be between 0 and 19")
    if args.nice:
        os.nice(args.nice)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with _desk(settings) as desk:
        log.info("CareDesk worker started")
        # The channels of this process: Slack's Bolt app runs the work the server's acks wrote
        # down; both channels deliver the outbox.
        channels = Channels.of(desk, os.environ, ServerConfig.load(settings, os.environ))
        channels.slack.open_session()
        tasks = [asyncio.create_task(Dispatcher(desk, ChannelDelivery(desk, channels.senders(), channels.repliers()),
                                                lease=timedelta(seconds=args.lease_seconds)).run(stop, interval=args.interval))]
        pressure = None
        if args.pressure_fd is not None:
            pressure = AckPressure()
            _hear_pressure(args.pressure_fd, pressure)
        inbox = inbox_worker(channels, args.concurrency, pressure)
        if inbox is not None:
            tasks.append(asyncio.create_task(inbox.run(stop)))
        if args.parent_pid:
            tasks.append(asyncio.create_task(_stop_with_parent(args.parent_pid, stop)))
        try:
            await asyncio.gather(*tasks)
        finally:
            await channels.slack.close()
    return 0


def _hear_pressure(fd: int, pressure: AckPressure) -> None:
    """Follow the server's ack pressure from the pipe `serve --workers` gave: the last byte
    read says it (b"1" busy, b"0" not); the server gone, there is no pressure."""
    loop = asyncio.get_running_loop()
    os.set_blocking(fd, False)

    def readable() -> None:
        try:
            data = os.read(fd, 512)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            loop.remove_reader(fd)
            os.close(fd)
            pressure.set(False)
            return
        pressure.set(data[-1:] == b"1")

    loop.add_reader(fd, readable)


async def _stop_with_parent(parent: int, stop: asyncio.Event) -> None:
    """A worker started by `serve --workers` ends with its server, even one killed outright."""
    while not stop.is_set():
        if os.getppid() != parent:
            log.warning("the server process %s is gone: the worker stops", parent)
            stop.set()
            return
        try:
            await asyncio.wait_for(stop.wait(), timeout=1.0)
        except asyncio.TimeoutError:
            pass


async def cmd_slack_manifest(settings: Settings, args: argparse.Namespace) -> int:
    from adapters.slack import render_manifest

    try:
        print(render_manifest(args.url, socket_mode=args.socket_mode), end="")
    except ValueError as exc:
        raise UsageError(f"--url: {exc}") from None
    return 0


async def cmd_teams_package(settings: Settings, args: argparse.Namespace) -> int:
    from pathlib import Path

    from adapters.teams import build_package

    try:
        out = build_package(args.app_id, Path(args.out))
    except ValueError as exc:
        raise UsageError(f"--app-id: {exc}") from None
    print(f"Teams app package written to {out}")
    return 0


async def cmd_db_upgrade(settings: Settings, args: argparse.Namespace) -> int:
    async with _desk(settings):
        print("database schema is up to date")
    return 0


async def cmd_directory_load(settings: Settings, args: argparse.Namespace) -> int:
    try:
        directory = read_directory_file(args.file)
    except DirectoryError as exc:
        raise UsageError(str(exc)) from None
    async with _desk(settings) as desk:
        counts = await desk.store.replace_directory(directory)
    print(f"directory loaded: {counts.companies} companies, {counts.contacts} contacts, {counts.staff} staff, "
          f"{len(directory.rota)} on-call shifts")
    return 0


async def cmd_oncall_show(settings: Settings, args: argparse.Namespace) -> int:
    from bot.domain.oncall import on_duty

    async with _desk(settings) as desk:
        at = _parse_time(args.at, settings, "--at") if args.at else desk.now()
        rota = await desk.store.get_rota()
        duty = on_duty(rota, at, settings.calendar.tz)
        people: dict[str, str] = {}
        for email in (duty.person, duty.backup) if duty else ():
            member = await desk.store.find_staff(email) if email else None
            if email and member:
                people[email] = f"{member.name} <{member.email}>" + (f" {member.phone}" if member.phone else "")
            elif email:
                people[email] = email
    local = at.astimezone(settings.calendar.tz)
    if args.json:
        _print_json({"at": local.isoformat(), "on_duty": duty.person if duty else None,
                     "backup": duty.backup if duty else None, "until": duty.until.isoformat() if duty else None})
        return 0
    print(f"at {local:%Y-%m-%d %H:%M} ({settings.calendar.timezone})")
    if not rota:
        print("no on-call rota: load one with `caredesk directory load` (oncall: in the directory file)")
    if duty is None:
        print("nobody on duty: an emergency page goes to the level-1 manager")
        return 0
    print(f"on duty: {people[duty.person]}")
    print(f"backup:  {people[duty.backup] if duty.backup else '(none: the level-1 manager)'}")
    print(f"until:   {duty.until:%Y-%m-%d %H:%M}")
    return 0


def _parse_time(text: str, settings: Settings, option: str, lang: str = "en") -> datetime:
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise UsageError(f"{option}: expected an ISO date-time such as 2026-11-27T16:00, got {text!r}") from None
    if value.tzinfo is not None:
        return value
    try:
        # Local time: one the clocks skip (spring) or repeat (autumn) is explained, not guessed.
        return combine_local(value.date(), value.time(), settings.calendar.tz)
    except Invalid as exc:
        raise UsageError(f"{option}: {translate(lang, exc.key, **exc.params)}") from None


async def cmd_quote(settings: Settings, args: argparse.Namespace) -> int:
    from bot.dialogs.common import total_label
    from bot.i18n import format_duration, format_money, format_number, format_rate

    start = _parse_time(args.start, settings, "--start", args.lang)
    end = _parse_time(args.end, settings, "--end", args.lang)
    async with _desk(settings) as desk:
        try:
            quote = await desk.quote(args.service, start, end, args.participants, args.customer)
        except QuoteError as exc:
            params = dict(exc.params)
            service = settings.service(args.service)
            if service is not None and "service" in params:
                params["service"] = service.name(args.lang)  # a person's words, not the key
            raise UsageError(translate(args.lang, exc.key, **params)) from None
    if args.json:
        _print_json(quote.as_dict())
        return 0
    lang = args.lang
    rate = format_rate(quote.service.rate, lang, quote.currency)
    print(f"{quote.service.name(lang)} — {rate}")
    print(f"  {translate(lang, 'common.times_in', zone=settings.calendar.timezone)}")
    for line in quote.lines:
        local_start = line.start.astimezone(settings.calendar.tz)
        local_end = line.end.astimezone(settings.calendar.tz)
        print(
            f"  {local_start:%Y-%m-%d %H:%M} → {local_end:%Y-%m-%d %H:%M}  "
            f"{format_duration(int((line.end - line.start).total_seconds() // 60), lang)} × {rate} × "
            f"{format_number(line.multiplier * 100, lang)} %  "
            f"= {format_money(line.amount, lang, quote.currency)}"
        )
    print(f"  {total_label(settings, lang)}: {format_money(quote.total, lang, quote.currency)}")
    return 0


def _invalid_message(exc: Invalid) -> str:
    field = exc.params.get("field")
    text = translate("en", exc.key, **exc.params)
    return f"--{field}: {text}" if field else text


async def cmd_tickets_create(settings: Settings, args: argparse.Namespace) -> int:
    async with _desk(settings) as desk:
        try:
            ticket = await desk.register_ticket(
                kind=args.kind,
                requester_email=args.requester,
                module=args.module,
                description=args.description,
                reproduce=args.reproduce,
                diagnostics=args.diagnostics,
                urgency=args.urgency,
                channel="agent",
                created_by=args.by,
            )
        except Invalid as exc:
            raise UsageError(_invalid_message(exc)) from None
    if args.json:
        _print_json(ticket.as_dict())
    else:
        print(f"created {ticket.number} ({ticket.kind.value}) for {ticket.requester_name} <{ticket.requester_email}>")
    return 0


async def cmd_tickets_list(settings: Settings, args: argparse.Namespace) -> int:
    async with _desk(settings) as desk:
        tickets = await desk.store.list_tickets(
            requester_email=args.requester, company=args.company, open_only=args.open, limit=1000
        )
    if args.json:
        _print_json([t.as_dict() for t in tickets])
        return 0
    if not tickets:
        print("no tickets")
    for t in tickets:
        summary = t.description.splitlines()[0][:60]
        print(f"{t.number}  {t.status.value:<20} {t.kind.value:<15} {t.company or '-':<24} {summary}")
    return 0


async def cmd_tickets_show(settings: Settings, args: argparse.Namespace) -> int:
    async with _desk(settings) as desk:
        ticket = await desk.store.get_ticket(args.number)
        comments = await desk.store.list_ticket_comments(args.number, include_internal=True) if ticket else []
    if ticket is None:
        raise UsageError(f"no ticket {args.number}")
    if args.json:
        _print_json(ticket.as_dict())
        return 0
    for key, value in ticket.as_dict().items():
        if value not in (None, ""):
            print(f"{key + ':':<24}{value}")
    # The comments too, internal notes marked: an accepted emergency's terms are one (issue 15).
    for c in comments:
        print(f"{'note:' if c.get('internal') else 'comment:':<24}{c.get('author')}: {c.get('text')}")
    return 0


async def cmd_billing_report(settings: Settings, args: argparse.Namespace) -> int:
    import csv

    from bot.domain.time_entries import billing_csv_rows, billing_report, month_bounds

    try:
        start, end = month_bounds(args.month, settings.calendar.tz)
    except ValueError as exc:
        raise UsageError(f"--month: {exc}") from None
    async with _desk(settings) as desk:
        if args.customer and await desk.store.get_company(args.customer) is None:
            raise UsageError(f"--customer: unknown customer {args.customer!r}")
        entries = await desk.store.list_time_entries(company=args.customer, started_from=start, started_before=end)
    report = billing_report(entries, args.month, settings.currency)
    if args.format == "json":
        _print_json(report)
    elif args.format == "csv":
        csv.writer(sys.stdout, lineterminator="\n").writerows(billing_csv_rows(report))
    else:
        tz = settings.calendar.tz
        # Local times, with the zone named: an accountant reads wall-clock times, not UTC.
        print(f"Billing {report['month']} ({report['currency']}; times in {settings.calendar.timezone})")
        for customer in report["customers"]:
            print(f"\n{customer['customer']}")
            for ticket in customer["tickets"]:
                print(f"  {ticket['ticket']}")
                for entry in ticket["entries"]:
                    local = datetime.fromisoformat(entry["start"]).astimezone(tz)
                    print(f"    #{entry['id']} {local:%Y-%m-%d %H:%M} {entry['service']:<12} {entry['agent']:<36} {entry['amount']:>10}")
                    for line in entry["lines"]:
                        print(f"        {line['hours']:>6} h x {line['multiplier']:<4} x {line['rate']} = {line['amount']:>10}")
                print(f"  {'ticket total':<60}{ticket['total']:>12}")
            print(f"{'customer total':<62}{customer['total']:>12}")
        print(f"\n{'TOTAL':<62}{report['total']:>12}")
    return 0


async def cmd_escalations_list(settings: Settings, args: argparse.Namespace) -> int:
    from bot.app.escalations import describe

    async with _desk(settings) as desk:
        escalations = await desk.store.list_escalations(open_only=not args.all)
        rows = describe(escalations, desk.now())
    if args.json:
        _print_json(rows)
        return 0
    if not rows:
        print("no open escalations")
    for r in rows:
        hours, minutes = divmod(int(r["age_minutes"]), 60)
        by = f" by {r['acknowledged_by']}" if r["acknowledged_by"] else ""
        print(f"#{r['id']:<4} {r['ticket']:<16} level {r['level']}  {r['status']}{by:<30}  age {hours}h{minutes:02d}  {r['reason']}")
    return 0


async def cmd_outbox_list(settings: Settings, args: argparse.Namespace) -> int:
    async with _desk(settings) as desk:
        messages = await desk.store.list_outbox("failed" if args.failed else None)
    if args.json:
        _print_json([
            {"id": m.id, "recipient": m.recipient, "kind": m.kind, "status": m.status, "attempts": m.attempts,
             "next_attempt_at": m.next_attempt_at.isoformat(), "last_error": m.last_error,
             "payload": dict(m.payload)} for m in messages])
        return 0
    if not messages:
        print("no messages")
    for m in messages:
        error = f"  last error: {m.last_error}" if m.last_error else ""
        print(f"#{m.id:<5} {m.status:<8} {m.kind:<20} {m.recipient:<40} attempts {m.attempts}{error}")
    return 0


async def cmd_outbox_retry(settings: Settings, args: argparse.Namespace) -> int:
    async with _desk(settings) as desk:
        count = await desk.store.requeue_failed(desk.now(), args.ids or None)
    print(f"{count} message(s) re-queued")
    return 0


async def cmd_inbox_list(settings: Settings, args: argparse.Namespace) -> int:
    """A dead letter is shown, not re-queued: its conversation went on without it, and answering
    it now would answer out of turn. The person was told nothing for it: look at last_error."""
    async with _desk(settings) as desk:
        if args.failed:
            items = list(await desk.store.list_inbound("failed"))
        elif args.all:
            items = list(await desk.store.list_inbound())
        else:
            items = [i for i in await desk.store.list_inbound() if i.status in ("pending", "working")]
    if args.json:
        _print_json([
            {"id": i.id, "channel": i.channel, "kind": i.kind, "conversation": i.conversation_key,
             "status": i.status, "attempts": i.attempts, "received_at": i.received_at.isoformat(),
             "next_attempt_at": i.next_attempt_at.isoformat(), "last_error": i.last_error} for i in items])
        return 0
    if not items:
        print("no items")
    for i in items:
        error = f"  last error: {i.last_error}" if i.last_error else ""
        print(f"#{i.id:<6} {i.status:<8} {i.channel}/{i.kind:<11} {i.conversation_key:<40} "
              f"received {i.received_at:%Y-%m-%d %H:%M:%S}Z attempts {i.attempts}{error}")
    return 0


async def cmd_chat(settings: Settings, args: argparse.Namespace) -> int:
    from adapters.console import run_chat
    from bot.app.runner import TurnRunner

    if not is_email(args.email):
        raise UsageError(f"--as: not an e-mail address: {args.email!r}")
    async with _desk(settings) as desk:
        return await run_chat(TurnRunner(desk), args.email, args.lang)


if __name__ == "__main__":
    raise SystemExit(main())
