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
from pathlib import Path
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any, AsyncIterator, Mapping, Sequence

from bot.domain.clock import clock_from_settings
from bot.domain.config import ConfigError, Settings, is_email, load_settings
from bot.app.desk import Desk
from bot.domain.directory import DirectoryError, read_directory_file, tenant_id_problem
from bot.domain.model import SLACK_WORKSPACE, TEAMS_TENANT, Binding
from bot.app.identity import BINDINGS_TTL_S
from adapters.server.config import MAX_WORKERS, MetricsConfig, ServerConfig
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
    from adapters.server.observability import configure_logging

    configure_logging(os.environ.get("CAREDESK_LOG_LEVEL", default_level).upper(), os.environ)
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
    MetricsConfig.load(settings)
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

    co = sub.add_parser("companies", help="which Slack workspaces and Microsoft 365 tenants belong to which "
                        "company (and to the service desk)").add_subparsers(metavar="ACTION")
    for action, text in (("bind", "bind a workspace or tenant to a company or to the service desk"),
                         ("unbind", "undo a binding")):
        cb = co.add_parser(action, help=text)
        who = cb.add_mutually_exclusive_group(required=True)
        who.add_argument("--company", metavar="NAME", help="a company of the directory")
        who.add_argument("--service-desk", action="store_true", help="the service desk's own (its staff)")
        where = cb.add_mutually_exclusive_group(required=True)
        where.add_argument("--slack-team", metavar="T…", help="a Slack workspace's team id")
        where.add_argument("--teams-tenant", metavar="ID", help="a Microsoft 365 tenant id")
        cb.set_defaults(handler=cmd_companies_bind, unbind=action == "unbind")
    cs = co.add_parser("show", help="a company with its workspaces and tenants (and which have installed CareDesk)")
    cs.add_argument("name", help="the company's name, or 'service-desk'")
    cs.add_argument("--json", action="store_true")
    cs.set_defaults(handler=cmd_companies_show)
    cp = co.add_parser("pending", help="Slack workspaces that installed CareDesk and are bound to nobody yet")
    cp.add_argument("--json", action="store_true")
    cp.set_defaults(handler=cmd_companies_pending)

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
    tc = t.add_parser("create", help="register a ticket that came by mail, phone, in person or through the portal")
    tc.add_argument("--kind", required=True, help="incident, service_request or change_request")
    tc.add_argument("--requester", required=True, help="the customer contact's e-mail")
    tc.add_argument("--module", required=True, help="module or hardware/environment")
    tc.add_argument("--description", required=True)
    tc.add_argument("--reproduce", help="how to reproduce it (required for an incident)")
    tc.add_argument("--diagnostics", help="the first tests done (required for an incident)")
    tc.add_argument("--urgency", default="normal", help="low, normal, high or critical")
    tc.add_argument("--intake", required=True, help="how it came: mail, phone, in_person or portal")
    tc.add_argument("--by", required=True, help="the e-mail of the service desk member registering it")
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
    br.add_argument("--format", choices=("text", "csv", "csv-totals", "json", "xlsx"), default="text",
                    help="csv: one row per line of an entry, no totals (csv-totals: the totals alone); "
                         "xlsx: entries and a Totals sheet of formulas (needs --out)")
    br.add_argument("--dialect", choices=("plain", "excel-be"), default="plain",
                    help="CSV only. excel-be: semicolons, decimal commas, UTF-8 with BOM (Excel in Belgium)")
    br.add_argument("--out", help="write to this file; a CSV's totals go beside it (NAME.totals.csv)")
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

    pv = sub.add_parser("privacy", help="a person's personal data (GDPR): export or erase it").add_subparsers(
        metavar="ACTION")
    pe = pv.add_parser("export", help="everything held about the person with this e-mail")
    pe.add_argument("email")
    pe.add_argument("--json", action="store_true")
    pe.set_defaults(handler=cmd_privacy_export)
    px = pv.add_parser("erase", help="remove or pseudonymise the person's data everywhere (tickets and billing are "
                                     "kept under a pseudonym); an audit record is kept")
    px.add_argument("email")
    px.add_argument("--yes", action="store_true", help="required: the erasure cannot be undone")
    px.add_argument("--by", help="who asks for it (recorded in the audit; default: the system user)")
    px.set_defaults(handler=cmd_privacy_erase)
    pa = pv.add_parser("audit", help="the erasures done so far (when, by whom, the pseudonym, rows changed)")
    pa.add_argument("--json", action="store_true")
    pa.set_defaults(handler=cmd_privacy_audit)

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
    from adapters.server.observability import share_metrics_between_processes
    from adapters.server.web import serve

    server = ServerConfig.load(settings, os.environ)
    workers = args.workers if args.workers is not None else server.workers
    if not 0 <= workers <= MAX_WORKERS:
        raise UsageError(f"--workers must be between 0 and {MAX_WORKERS}")
    # The channels check the address really listened on (developer mode only on loopback).
    server = replace(server, host=args.host or server.host, port=args.port if args.port is not None else server.port,
                     workers=workers)
    share_metrics_between_processes(workers)
    async with _desk(settings) as desk:
        _trace(desk)
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
        _trace(desk)
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
            await channels.teams.transport.close()
    return 0


def _trace(desk: Desk) -> None:
    """Traces with OTEL_EXPORTER_OTLP_ENDPOINT set (the `otel` extra installed), else nothing."""
    from adapters.server.observability import configure_tracing, tracing_wanted

    if not tracing_wanted(os.environ):
        return
    try:
        configure_tracing("caredesk", getattr(desk.store, "engine", None))
    except ImportError as exc:
        log.warning("OTEL_EXPORTER_OTLP_ENDPOINT is set but OpenTelemetry is not installed (%s): "
                    "pip install 'caredesk[otel]'", exc)


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


SERVICE_DESK = "service-desk"


async def cmd_companies_bind(settings: Settings, args: argparse.Namespace) -> int:
    channel, tenant = ((SLACK_WORKSPACE, args.slack_team.strip()) if args.slack_team is not None
                       else (TEAMS_TENANT, args.teams_tenant.strip()))
    problem = tenant_id_problem(channel, tenant)
    if problem:
        raise UsageError(problem)
    async with _desk(settings) as desk:
        company = None
        if not args.service_desk:
            found = await desk.store.get_company(args.company)
            if found is None:
                raise UsageError(f"no company {args.company!r} in the directory (caredesk directory load FILE)")
            company = found.name
        binding = Binding(channel, tenant, company)
        whose = company or "the service desk"
        where = f"Slack workspace {tenant}" if channel == SLACK_WORKSPACE else f"Microsoft 365 tenant {tenant}"
        if args.unbind:
            done = await desk.store.unbind_tenant(binding)
            print(f"{where} is no longer bound to {whose}" if done else f"{where} was not bound to {whose}")
            return 0
        done = await desk.store.bind_tenant(binding, desk.now())
        others = [b.company or "the service desk" for b in await desk.store.list_bindings()
                  if (b.channel, b.tenant) == (channel, tenant) and b.party_key != binding.party_key]
    print(f"{where} bound to {whose}" if done else f"{where} was bound to {whose} already")
    if others:
        print(f"note: it is also bound to {', '.join(others)}: each of them trusts the e-mails it shows",
              file=sys.stderr)
    print(f"(running servers apply it within {BINDINGS_TTL_S:g} seconds)")
    return 0


async def cmd_companies_show(settings: Settings, args: argparse.Namespace) -> int:
    from adapters.slack.installations import installed_workspaces

    async with _desk(settings) as desk:
        if args.name.strip().lower() == SERVICE_DESK:
            name, company = "the service desk", None
            bindings = await desk.store.list_bindings(service_desk=True)
        else:
            company = await desk.store.get_company(args.name)
            if company is None:
                raise UsageError(f"no company {args.name!r} in the directory")
            name, bindings = company.name, await desk.store.list_bindings(company.name)
        installed = {w.team_id: w for w in await installed_workspaces(desk.store.engine, desk.store)}  # type: ignore[attr-defined]
    rows = [{"channel": b.channel, "id": b.tenant,
             "installed": (installed[b.tenant].installed_at.isoformat() if b.tenant in installed else None)
             if b.channel == SLACK_WORKSPACE else None,
             "name": installed[b.tenant].team_name if b.tenant in installed else None} for b in bindings]
    if args.json:
        _print_json({"company": company.name if company else None, "sla_plan": company.sla_plan if company else None,
                     "bindings": rows})
        return 0
    print(name + (f" (SLA {company.sla_plan}{', support module' if company.support_module else ''})" if company else ""))
    if not rows:
        print("  no Slack workspace or Microsoft 365 tenant: its people are served as unknown "
              "(caredesk companies bind --company NAME --slack-team T… | --teams-tenant ID)")
    for row in rows:
        if row["channel"] == SLACK_WORKSPACE:
            state = f"installed {row['installed'][:16]}" if row["installed"] else "not installed by OAuth"
            print(f"  Slack workspace {row['id']}" + (f" ({row['name']})" if row["name"] else "") + f": {state}")
        else:
            print(f"  Microsoft 365 tenant {row['id']}")
    return 0


async def cmd_companies_pending(settings: Settings, args: argparse.Namespace) -> int:
    from adapters.slack.installations import installed_workspaces

    async with _desk(settings) as desk:
        workspaces = await installed_workspaces(desk.store.engine, desk.store)  # type: ignore[attr-defined]
    pending = [w for w in workspaces if not w.companies]
    if args.json:
        _print_json([{"slack_team": w.team_id, "name": w.team_name, "installed_at": w.installed_at.isoformat()}
                     for w in pending])
        return 0
    if not pending:
        print("no installed workspace is waiting to be bound")
        return 0
    for w in pending:
        print(f"Slack workspace {w.team_id} ({w.team_name or 'no name'}), installed {w.installed_at:%Y-%m-%d %H:%M} UTC: "
              f"caredesk companies bind --company NAME --slack-team {w.team_id}")
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
    from bot.app.registration import register_for_customer

    async with _desk(settings) as desk:
        try:
            # The chat's checks of every field, the agent a member of the service desk
            # (bot/app/registration.py); the requester is told the number through the outbox.
            registered = await register_for_customer(
                desk, intake=args.intake, by=args.by, requester=args.requester,
                values={"kind": args.kind, "module": args.module, "description": args.description,
                        "reproduce": args.reproduce, "diagnostics": args.diagnostics, "urgency": args.urgency},
            )
        except Invalid as exc:
            raise UsageError(_invalid_message(exc)) from None
    ticket = registered.ticket
    if args.json:
        _print_json({**ticket.as_dict(), "requester_told_on": registered.told_on,
                     "requester_reach": registered.reach.how.value})
    else:
        print(f"created {ticket.number} ({ticket.kind.value}, {ticket.intake.value}) for {ticket.requester_name} "
              f"<{ticket.requester_email}>")
        print(registered.reach.said(lambda key, **params: translate("en", key, **params), ticket.requester_name))
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
    from bot.app.escalations import Escalations
    from bot.app.staff import emergency_mark
    from bot.i18n import format_duration, format_money

    async with _desk(settings) as desk:
        ticket = await desk.store.get_ticket(args.number)
        comments = await desk.store.list_ticket_comments(args.number, include_internal=True) if ticket else []
        entries = await desk.store.list_time_entries(ticket_number=ticket.number) if ticket else []
        emergency = await Escalations(desk).accepted_emergency(ticket.number) if entries and ticket else None
        calendar = desk.calendar
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
    # The time logged, each entry billed under the accepted emergency marked as such (issue 15 §1).
    lang, tz = settings.default_language, settings.calendar.tz
    for e in entries:
        start = e.started_at.astimezone(tz)
        minutes = int((e.ended_at - e.started_at).total_seconds() // 60)
        mark = emergency_mark(lang, e, emergency, calendar, settings.multipliers)
        mark = f" {mark}" if mark else ""
        print(f"{'time:':<24}#{e.id} {start:%Y-%m-%d %H:%M} {e.agent_email}: {format_duration(minutes, lang)}, "
              f"{e.service}, {format_money(e.amount, lang, e.currency)}{mark}")
    return 0


async def cmd_billing_report(settings: Settings, args: argparse.Namespace) -> int:
    from adapters.server.billing_export import totals_path, write_report_csv, write_totals_csv, write_xlsx
    from bot.app.escalations import Escalations
    from bot.domain.time_entries import billing_report, month_bounds

    try:
        start, end = month_bounds(args.month, settings.calendar.tz)
    except ValueError as exc:
        raise UsageError(f"--month: {exc}") from None
    if args.format == "xlsx" and not args.out:
        raise UsageError("--format xlsx: give the file to write with --out, e.g. --out billing-2026-11.xlsx")
    if args.dialect != "plain" and args.format not in ("csv", "csv-totals"):
        raise UsageError("--dialect applies to --format csv and csv-totals only")
    async with _desk(settings) as desk:
        if args.customer and await desk.store.get_company(args.customer) is None:
            known = ", ".join(sorted((c.name for c in await desk.store.list_companies()), key=str.lower))
            raise UsageError(f"--customer: unknown customer {args.customer!r}; known customers: {known or 'none'}")
        entries = await desk.store.list_time_entries(company=args.customer, started_from=start, started_before=end)
        # Why each line's multiplier applies, an accepted emergency's terms included (issue 15 §1).
        emergencies = await Escalations(desk).accepted_emergencies(e.ticket_number for e in entries)
        calendar = desk.calendar
    report = billing_report(entries, args.month, settings.currency, settings.calendar.tz,
                            calendar=calendar, multipliers=settings.multipliers, emergencies=emergencies)
    out = Path(args.out) if args.out else None
    if args.format == "xlsx":
        assert out is not None
        write_xlsx(out, report)
        print(f"wrote {out}")
        return 0
    if args.format in ("csv", "csv-totals") and out is not None:
        # utf-8 (the excel-be dialect writes its own BOM); newline="" as the csv module wants.
        with out.open("w", encoding="utf-8", newline="") as stream:
            (write_report_csv if args.format == "csv" else write_totals_csv)(stream, report, args.dialect)
        if args.format == "csv":
            with totals_path(out).open("w", encoding="utf-8", newline="") as stream:
                write_totals_csv(stream, report, args.dialect)
            print(f"wrote {out} and {totals_path(out)}")
        else:
            print(f"wrote {out}")
        return 0
    if args.format == "json":
        _print_json(report)
    elif args.format == "csv":
        write_report_csv(sys.stdout, report, args.dialect)
    elif args.format == "csv-totals":
        write_totals_csv(sys.stdout, report, args.dialect)
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
                    offset = local.isoformat()[-6:]
                    print(f"    #{entry['id']} {local:%Y-%m-%d %H:%M} {offset} {entry['service']:<12} {entry['agent']:<36} {entry['amount']:>10}")
                    if entry.get("emergency"):
                        em = entry["emergency"]
                        accepted = datetime.fromisoformat(em["accepted_at"]).astimezone(tz)
                        basis = translate("en", f"logtime.emergency.basis.{em['basis']}")
                        print(f"        billed under the accepted emergency: x{em['multiplier']} ({basis}), "
                              f"accepted {accepted:%Y-%m-%d %H:%M} by {em['accepted_by']}")
                    for line in entry["lines"]:
                        print(f"        {line['hours']:>6} h x {line['multiplier']:<4} x {line['rate']} = {line['amount']:>10}"
                              f"  {line.get('basis', '')}")
                print(f"  {'ticket total':<60}{ticket['total']:>12}")
            print(f"{'customer total':<62}{customer['total']:>12}")
        print(f"\n{'TOTAL':<62}{report['total']:>12}")
    return 0


async def cmd_escalations_list(settings: Settings, args: argparse.Namespace) -> int:
    from bot.app.escalations import describe
    from bot.domain.model import EscalationStatus

    async with _desk(settings) as desk:
        escalations = await desk.store.list_escalations(open_only=not args.all)
        if not args.all:
            # Open means waiting for a manager: an acknowledged escalation is done (`--all` shows it).
            escalations = [e for e in escalations if e.status is EscalationStatus.OPEN]
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


async def cmd_privacy_export(settings: Settings, args: argparse.Namespace) -> int:
    if not is_email(args.email):
        raise UsageError(f"not an e-mail address: {args.email!r}")
    async with _desk(settings) as desk:
        export = await desk.store.privacy_export(args.email)
    if export is None:
        raise UsageError(f"nothing is held about {args.email}")
    if args.json:
        _print_json(export)
        return 0
    print(f"Personal data held about {export['email']}")
    print(f"  names:  {', '.join(export['names']) or '-'}")
    print(f"  phones: {', '.join(export['phones']) or '-'}")
    for account in export["platform_accounts"]:
        print(f"  account: {account['channel']} {account['user']}")
    for table, rows in export["tables"].items():
        print(f"\n{table} ({len(rows)})")
        for row in rows:
            print("  " + json.dumps(row, ensure_ascii=False, sort_keys=True))
    return 0


async def cmd_privacy_erase(settings: Settings, args: argparse.Namespace) -> int:
    import getpass

    if not is_email(args.email):
        raise UsageError(f"not an e-mail address: {args.email!r}")
    if not args.yes:
        raise UsageError("the erasure cannot be undone: add --yes (export first: caredesk privacy export EMAIL --json)")
    try:
        by = args.by or getpass.getuser()
    except (KeyError, OSError):  # no name for this user id (a container)
        by = f"uid {os.getuid()}"
    async with _desk(settings) as desk:
        report = await desk.store.privacy_erase(args.email, desk.now(), by)
    if report is None:
        raise UsageError(f"nothing is held about {args.email}")
    print(f"erased: now {report.pseudonym} (audit record #{report.audit_id})")
    for table, count in sorted(report.deleted.items()):
        print(f"  deleted        {table:<22} {count}")
    for table, count in sorted(report.pseudonymised.items()):
        print(f"  pseudonymised  {table:<22} {count}")
    print("remove the person from the directory file too, or the next `caredesk directory load` brings them back")
    return 0


async def cmd_privacy_audit(settings: Settings, args: argparse.Namespace) -> int:
    async with _desk(settings) as desk:
        records = await desk.store.list_privacy_erasures()
    if args.json:
        _print_json(list(records))
        return 0
    if not records:
        print("no erasures")
    for r in records:
        print(f"#{r['id']:<4} {r['erased_at']}  by {r['erased_by']:<30} {r['pseudonym']}")
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
