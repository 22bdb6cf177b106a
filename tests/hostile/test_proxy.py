"""The recommended deployment (docs/deployment.md): nginx in front of CareDesk, with the very
file examples/nginx/caredesk.conf (its host names, ports, certificate paths and, to keep the test
short, its two client timeouts substituted). nginx and CareDesk run on free loopback ports, with
a self-signed certificate made here; the client connects from 127.0.0.3, so that the address
CareDesk logs tells whether it came from the proxy's X-Forwarded-For or from the connection.

Runs when nginx is installed (`.ci/run` installs it under CI=true, where a missing nginx fails
the test instead of skipping it)."""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import logging
import os
import shutil
import socket
import ssl
import subprocess
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio

from adapters.server.limits import ConnectionLimits
from adapters.shared.network import forwarded_client
from tests.conftest import is_ci
from tests.hostile.conftest import ALL_TABLES, snapshot
from tests.hostile.test_http import dm_event_body
from tests.hostile.test_limits import closed_within, serve_both, trickle
from tests.slack.conftest import ROOT, sign
from tests.teams.conftest import ONE_TRANSPORT

EXAMPLE = ROOT / "examples" / "nginx" / "caredesk.conf"
NGINX = shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if os.path.exists(p)),
                                      None)
CLIENT_ADDRESS = "127.0.0.3"  # a loopback address that is not the proxy's (127.0.0.1)
CLIENT_TIMEOUT_S = 2  # the example's client_header_timeout / client_body_timeout, shortened
PROMPTLY = 10.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def self_signed(directory: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "caredesk.test")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = directory / "fullchain.pem", directory / "privkey.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def nginx_config(directory: Path, caredesk_port: int, https_port: int, http_port: int) -> Path:
    cert, key = self_signed(directory)
    site = EXAMPLE.read_text()
    substitutions = [
        ("server 127.0.0.1:3978;", f"server 127.0.0.1:{caredesk_port};"),
        ("listen 443 ssl;", f"listen 127.0.0.1:{https_port} ssl;"),
        ("listen 80;", f"listen 127.0.0.1:{http_port};"),
        ("/etc/ssl/caredesk/fullchain.pem", str(cert)),
        ("/etc/ssl/caredesk/privkey.pem", str(key)),
        ("client_header_timeout 10s;", f"client_header_timeout {CLIENT_TIMEOUT_S}s;"),
        ("client_body_timeout 10s;", f"client_body_timeout {CLIENT_TIMEOUT_S}s;"),
    ]
    for old, new in substitutions:
        assert site.count(old) == 1, f"{EXAMPLE} no longer has {old!r}: update the test"
        site = site.replace(old, new)
    (directory / "caredesk.conf").write_text(site)
    temp = {name: directory / name for name in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")}
    for path in temp.values():
        path.mkdir()
    main = directory / "nginx.conf"
    main.write_text(f"""
daemon off;
master_process off;
pid {directory / 'nginx.pid'};
error_log {directory / 'error.log'} info;
events {{ worker_connections 256; }}
http {{
    access_log {directory / 'access.log'};
    client_body_temp_path {temp['client_body']};
    proxy_temp_path {temp['proxy']};
    fastcgi_temp_path {temp['fastcgi']};
    uwsgi_temp_path {temp['uwsgi']};
    scgi_temp_path {temp['scgi']};
    include {directory / 'caredesk.conf'};
}}
""")
    return main


async def listening(port: int, process: subprocess.Popen, timeout: float = 15.0) -> None:
    async with asyncio.timeout(timeout):
        while True:
            assert process.poll() is None, "nginx exited"
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.close()
                return
            except OSError:
                await asyncio.sleep(0.05)


def start_nginx(config: Path, directory: Path) -> tuple[subprocess.Popen, Any]:
    log = open(directory / "nginx.out", "wb")
    process = subprocess.Popen([NGINX or "nginx", "-c", str(config), "-p", str(directory),
                                "-e", str(directory / "error.log")], stdout=log, stderr=subprocess.STDOUT)
    return process, log


class Proxied:
    def __init__(self, caredesk, https_port: int, http_port: int, cert: Path) -> None:
        self.caredesk = caredesk
        self.https = f"https://127.0.0.1:{https_port}"
        self.http = f"http://127.0.0.1:{http_port}"
        self.https_port = https_port
        self.tls = ssl.create_default_context(cafile=str(cert))

    def session(self) -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(ssl=self.tls, local_addr=(CLIENT_ADDRESS, 0), force_close=True)
        return aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=PROMPTLY))


@pytest_asyncio.fixture
async def proxied(hostile_store, fake_slack, fake_bf, tmp_path):
    if NGINX is None:
        if is_ci():
            pytest.fail("CI=true: nginx must be installed (.ci/run installs it)")
        pytest.skip("nginx is not installed (apt-get install nginx-light); CI installs it")
    # CareDesk as docs/deployment.md sets it up: loopback, the proxy on 127.0.0.1 trusted.
    caredesk = await serve_both(hostile_store, fake_slack, fake_bf, ConnectionLimits(),
                                trusted_proxies=frozenset({"127.0.0.1"}))
    https_port, http_port = free_port(), free_port()
    config = nginx_config(tmp_path, caredesk.port, https_port, http_port)
    process, log = start_nginx(config, tmp_path)
    try:
        await listening(https_port, process)
        yield Proxied(caredesk, https_port, http_port, tmp_path / "fullchain.pem")
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
        await caredesk.runner.cleanup()


def clients_logged(caplog) -> list[str]:
    return [r.getMessage().split(" ")[0] for r in caplog.records
            if r.name == "caredesk.web" and '"POST /slack/events"' in r.getMessage()]


@ONE_TRANSPORT
@pytest.mark.slow
async def test_tls_in_front_and_a_signed_request_goes_through(proxied, caplog):
    caplog.set_level(logging.INFO, "caredesk.web")
    async with proxied.session() as http:
        async with http.get(proxied.https + "/healthz") as response:
            assert response.status == 200 and (await response.json()) == {"status": "ok"}
        body = dm_event_body("help", "EvPROXY1")
        async with http.post(proxied.https + "/slack/events", data=body.encode(),
                             headers={"Content-Type": "application/json", **sign(body)}) as response:
            assert response.status == 200
        # Plain HTTP only redirects to HTTPS; /readyz is not published.
        async with http.get(proxied.http + "/healthz", allow_redirects=False) as response:
            assert response.status == 301 and response.headers["Location"].startswith("https://")
        async with http.get(proxied.https + "/readyz") as response:
            assert response.status == 404
    # An untrusted certificate is refused by a client that checks (the proxy really speaks TLS).
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=PROMPTLY)) as strict:
        with pytest.raises(aiohttp.ClientConnectorCertificateError):
            await strict.get(proxied.https + "/healthz")


@ONE_TRANSPORT
@pytest.mark.slow
async def test_the_proxy_refuses_a_body_over_1_mib(proxied):
    before = await snapshot(proxied.caredesk.desk.store, ALL_TABLES)
    body = '{"type": "event_callback", "padding": "' + "x" * (1024 * 1024) + '"}'
    async with proxied.session() as http:
        async with http.post(proxied.https + "/slack/events", data=body.encode(),
                             headers={"Content-Type": "application/json", **sign(body)}) as response:
            assert response.status == 413
            assert "nginx" in await response.text()  # refused at the edge, not by CareDesk
    assert await snapshot(proxied.caredesk.desk.store, ALL_TABLES) == before


async def _tls_connection(proxied):
    return await asyncio.open_connection("127.0.0.1", proxied.https_port, ssl=proxied.tls,
                                         server_hostname="127.0.0.1", local_addr=(CLIENT_ADDRESS, 0))


@ONE_TRANSPORT
@pytest.mark.slow
async def test_the_proxy_cuts_off_a_trickled_head_and_a_stalled_body(proxied):
    body = dm_event_body("help", "EvSLOW1").encode()
    head = (f"POST /slack/events HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode()
    # A head trickled in: client_header_timeout counts for the whole head.
    reader, writer = await _tls_connection(proxied)
    sender = asyncio.create_task(trickle(writer, head, pause=0.3))
    try:
        answer = await closed_within(reader, CLIENT_TIMEOUT_S + PROMPTLY)
        assert not sender.done()
        assert answer == b"" or answer.startswith(b"HTTP/1.1 408")
    finally:
        sender.cancel()
        writer.close()
    # A body that stops half-way: client_body_timeout (which counts between two reads).
    reader, writer = await _tls_connection(proxied)
    writer.write(head + body[:len(body) // 2])
    try:
        answer = await closed_within(reader, CLIENT_TIMEOUT_S + PROMPTLY)
        assert answer == b"" or answer.startswith(b"HTTP/1.1 408")
    finally:
        writer.close()
    assert proxied.caredesk.gate.open == {}


@ONE_TRANSPORT
@pytest.mark.slow
async def test_a_body_trickled_in_never_reaches_caredesk(proxied):
    """nginx's client_body_timeout counts between two reads, so a body sent one byte at a time
    keeps an nginx connection (cheap there); but nginx reads the whole body before it opens a
    connection to CareDesk, so CareDesk holds nothing for it (its own body_timeout guards a
    server reached directly: test_limits.py)."""
    body = dm_event_body("help", "EvSLOW2").encode()
    head = (f"POST /slack/events HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode()
    reader, writer = await _tls_connection(proxied)
    writer.write(head)
    sender = asyncio.create_task(trickle(writer, body, pause=0.2))
    try:
        for _ in range(2 * CLIENT_TIMEOUT_S * 10):
            await asyncio.sleep(0.1)
            assert proxied.caredesk.gate.open == {}
        assert not sender.done()
    finally:
        sender.cancel()
        writer.close()


@ONE_TRANSPORT
@pytest.mark.slow
async def test_x_forwarded_for_is_trusted_from_the_proxy_only(proxied, caplog):
    caplog.set_level(logging.INFO, "caredesk.web")
    spoofed = {"X-Forwarded-For": "6.6.6.6"}
    body = dm_event_body("help", "EvXFF1")
    async with proxied.session() as http:
        # Through the proxy: the client's own address (the proxy replaces what the client wrote).
        async with http.post(proxied.https + "/slack/events", data=body.encode(),
                             headers={"Content-Type": "application/json", **sign(body), **spoofed}) as response:
            assert response.status == 200
        # Straight to CareDesk from an address that is not the proxy: the header is ignored.
        async with http.post(proxied.caredesk.url + "/slack/events", data=body.encode(),
                             headers={"Content-Type": "application/json", **sign(body), **spoofed}) as response:
            assert response.status == 200
    assert clients_logged(caplog) == [CLIENT_ADDRESS, CLIENT_ADDRESS]


@pytest.mark.parametrize("peer,header,client", [
    ("127.0.0.1", "203.0.113.9", "203.0.113.9"),            # from the proxy: its word
    ("127.0.0.1", "6.6.6.6, 203.0.113.9", "203.0.113.9"),   # a proxy that appends: the last entry
    ("127.0.0.1", "not-an-address", "127.0.0.1"),
    ("127.0.0.1", None, "127.0.0.1"),
    ("198.51.100.7", "127.0.0.1", "198.51.100.7"),          # from anyone else: ignored
    (None, "6.6.6.6", "unknown"),
])
def test_whose_x_forwarded_for_counts(peer, header, client):
    assert forwarded_client(peer, header, frozenset({"127.0.0.1"})) == client
