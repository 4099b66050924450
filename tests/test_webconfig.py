"""The web config file: TLS, mTLS, basic auth and headers on the real exporter over loopback."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import os
import socket
import ssl
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import bcrypt
import httpx
import pytest

from exporter.app import Exporter
from exporter.config import settings_for
from exporter.core.errors import ConfigError
from exporter.serving.basicauth import BasicAuth, parse_basic_credentials
from exporter.serving.webconfig import load_web_config
from tests.pki import Pki

USER = "prometheus"
PASSWORD = "correct horse battery staple"


@pytest.fixture(scope="module")
def password_hash() -> str:
    """A bcrypt hash of PASSWORD at the lowest cost, to keep the tests quick."""
    return bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(4)).decode()


@pytest.fixture
def refused_url() -> Iterator[str]:
    """An API URL whose port is bound but never listens: every connection is refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"


def tls_section(pki: Pki, **extra: str) -> str:
    lines = [
        "tls_server_config:",
        f"  cert_file: {pki.server_cert}",
        f"  key_file: {pki.server_key}",
    ]
    lines.extend(f"  {key}: {value}" for key, value in extra.items())
    return "\n".join(lines) + "\n"


def users_section(password_hash: str) -> str:
    return f"basic_auth_users:\n  {USER}: '{password_hash}'\n"


StartExporter = Callable[[str], Awaitable[str]]


@pytest.fixture
async def start_exporter(tmp_path: Path, refused_url: str) -> AsyncIterator[StartExporter]:
    """Run the real exporter (stream pointed at a refused port) with a given web config."""
    running: list[tuple[Exporter, asyncio.Event, asyncio.Task[int]]] = []

    async def start(web_config: str) -> str:
        config = tmp_path / f"web-{len(running)}.yml"
        config.write_text(web_config)
        settings = settings_for(
            [
                "--api-url", refused_url, "--bearer-token", "unused",
                "--listen", "127.0.0.1:0", "--web.config.file", str(config),
            ],
            env={},
        )  # fmt: skip
        exporter = Exporter(settings)
        host, port = await exporter.start_server()
        stop = asyncio.Event()
        task = asyncio.create_task(exporter.run(stop))
        running.append((exporter, stop, task))
        for _ in range(1000):  # bounded: 10 s at most
            if exporter.is_ready():
                break
            await asyncio.sleep(0.01)
        assert exporter.is_ready()
        return f"{host}:{port}"

    yield start
    for _exporter, stop, task in running:
        stop.set()
        async with asyncio.timeout(10):
            assert await task == 0


def client_context(pki: Pki, *, with_cert: bool = False) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(pki.ca))
    if with_cert:
        context.load_cert_chain(pki.client_cert, pki.client_key)
    return context


def basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


# --- TLS ---------------------------------------------------------------------------------------


async def test_https_with_the_ca_serves_metrics_and_plain_http_fails(
    start_exporter: StartExporter, pki: Pki
) -> None:
    address = await start_exporter(tls_section(pki))
    async with httpx.AsyncClient(verify=client_context(pki)) as client:
        response = await client.get(f"https://{address}/metrics")
    assert response.status_code == 200
    assert "requence_exporter_stream_connected 0" in response.text
    async with httpx.AsyncClient() as plain:
        with pytest.raises(httpx.TransportError):
            await plain.get(f"http://{address}/metrics")
    async with httpx.AsyncClient(verify=ssl.create_default_context()) as untrusting:
        with pytest.raises(httpx.ConnectError):
            await untrusting.get(f"https://{address}/metrics")


async def test_relative_file_names_resolve_beside_the_config_file(pki: Pki) -> None:
    config = pki.dir / "relative.yml"
    config.write_text(
        f"tls_server_config:\n  cert_file: {pki.server_cert.name}\n"
        f"  key_file: {pki.server_key.name}\n"
    )
    assert load_web_config(config).ssl_context is not None


async def test_rotated_certificate_files_are_served_without_a_restart(
    start_exporter: StartExporter, pki: Pki, tmp_path: Path
) -> None:
    cert, key = tmp_path / "tls.crt", tmp_path / "tls.key"
    cert.write_bytes(pki.server_cert.read_bytes())
    key.write_bytes(pki.server_key.read_bytes())
    address = await start_exporter(f"tls_server_config:\n  cert_file: {cert}\n  key_file: {key}\n")
    host, port = address.split(":")

    async def served_name() -> str:
        async with asyncio.timeout(10):
            _reader, writer = await asyncio.open_connection(
                host, int(port), ssl=client_context(pki)
            )
        try:
            subject = writer.get_extra_info("peercert")["subject"]
            return str(dict(pair[0] for pair in subject)["commonName"])
        finally:
            writer.close()
            with contextlib.suppress(ssl.SSLError, ConnectionError):
                await writer.wait_closed()

    assert await served_name() == "server"
    # Rotate the way a Kubernetes Secret does: new files swapped in, not edited in place.
    for source, target in ((pki.dir / "rotated.pem", cert), (pki.dir / "rotated.key", key)):
        staged = target.with_suffix(".new")
        staged.write_bytes(source.read_bytes())
        os.replace(staged, target)
    assert await served_name() == "rotated"
    # A broken rotation keeps the last good certificate.
    key.write_text("half written")
    assert await served_name() == "rotated"


async def test_require_and_verify_client_cert_rejects_a_client_without_one(
    start_exporter: StartExporter, pki: Pki
) -> None:
    address = await start_exporter(
        tls_section(pki, client_auth_type="RequireAndVerifyClientCert", client_ca_file=pki.ca)
    )
    async with httpx.AsyncClient(verify=client_context(pki)) as anonymous:
        with pytest.raises(httpx.TransportError):
            await anonymous.get(f"https://{address}/metrics")
    async with httpx.AsyncClient(verify=client_context(pki, with_cert=True)) as client:
        response = await client.get(f"https://{address}/metrics")
    assert response.status_code == 200


async def test_verify_client_cert_if_given_admits_a_client_without_one(
    start_exporter: StartExporter, pki: Pki
) -> None:
    address = await start_exporter(
        tls_section(pki, client_auth_type="VerifyClientCertIfGiven", client_ca_file=pki.ca)
    )
    for with_cert in (False, True):
        async with httpx.AsyncClient(verify=client_context(pki, with_cert=with_cert)) as client:
            assert (await client.get(f"https://{address}/metrics")).status_code == 200
    # A certificate the CA did not sign is refused even though one is optional.
    stranger = client_context(pki)
    stranger.load_cert_chain(pki.dir / "stranger.pem", pki.dir / "stranger.key")
    async with httpx.AsyncClient(verify=stranger) as client:
        with pytest.raises(httpx.TransportError):
            await client.get(f"https://{address}/metrics")


async def test_min_version_tls13_refuses_a_tls12_client(
    start_exporter: StartExporter, pki: Pki
) -> None:
    address = await start_exporter(tls_section(pki, min_version="TLS13"))
    old = client_context(pki)
    old.maximum_version = ssl.TLSVersion.TLSv1_2
    async with httpx.AsyncClient(verify=old) as client:
        with pytest.raises(httpx.ConnectError):
            await client.get(f"https://{address}/metrics")
    async with httpx.AsyncClient(verify=client_context(pki)) as client:
        assert (await client.get(f"https://{address}/metrics")).status_code == 200


async def test_cipher_suites_restrict_tls12(start_exporter: StartExporter, pki: Pki) -> None:
    address = await start_exporter(
        tls_section(
            pki, max_version="TLS12", cipher_suites="[TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384]"
        )
    )
    host, port = address.split(":")

    async def negotiate(ciphers: str | None) -> str:
        context = client_context(pki)
        if ciphers:
            context.set_ciphers(ciphers)
        async with asyncio.timeout(10):
            _reader, writer = await asyncio.open_connection(host, int(port), ssl=context)
        try:
            cipher = writer.get_extra_info("ssl_object").cipher()
            return str(cipher[0])
        finally:
            writer.close()
            with contextlib.suppress(ssl.SSLError, ConnectionError):
                await writer.wait_closed()

    assert await negotiate(None) == "ECDHE-RSA-AES256-GCM-SHA384"
    # The server answers a client offering no allowed suite with an alert or a reset.
    with pytest.raises((ssl.SSLError, ConnectionError)):
        await negotiate("ECDHE-RSA-AES128-GCM-SHA256")


# --- basic auth and headers ---------------------------------------------------------------------


async def test_basic_auth_guards_everything_but_the_probes(
    start_exporter: StartExporter,
    pki: Pki,
    password_hash: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    headers = (
        "http_server_config:\n  headers:\n    X-Frame-Options: deny\n"
        "    Strict-Transport-Security: max-age=31536000\n"
    )
    address = await start_exporter(tls_section(pki) + users_section(password_hash) + headers)
    url = f"https://{address}"
    async with httpx.AsyncClient(verify=client_context(pki)) as client:
        anonymous = await client.get(f"{url}/metrics")
        assert anonymous.status_code == 401
        assert anonymous.headers["www-authenticate"] == 'Basic realm="requence-exporter"'
        assert anonymous.headers["x-frame-options"] == "deny"
        assert (await client.get(f"{url}/metrics", headers=basic(USER, "wrong"))).status_code == 401
        stranger = await client.get(f"{url}/metrics", headers=basic("nobody", PASSWORD))
        assert stranger.status_code == 401
        for path in ("/status", "/", "/healthz/", "/nowhere"):
            assert (await client.get(f"{url}{path}")).status_code == 401, path
        scraped = await client.get(f"{url}/metrics", headers=basic(USER, PASSWORD))
        assert scraped.status_code == 200
        assert "requence_exporter_tracked_tasks" in scraped.text
        assert scraped.headers["strict-transport-security"] == "max-age=31536000"
        again = await client.get(f"{url}/metrics", headers=basic(USER, PASSWORD))
        assert again.status_code == 200
        status = await client.get(f"{url}/status", headers=basic(USER, PASSWORD))
        assert status.json()["ready"] is True
        # Kubelet probes send no credentials; they stay open on purpose.
        for probe in ("/healthz", "/readyz"):
            response = await client.get(f"{url}{probe}")
            assert response.status_code == 200, probe
            assert response.headers["x-frame-options"] == "deny"
    assert "wrong user or password" in caplog.text
    assert "no basic auth credentials" in caplog.text
    assert PASSWORD not in caplog.text
    assert password_hash not in caplog.text


async def test_basic_auth_without_tls_works_and_warns(
    start_exporter: StartExporter, password_hash: str, caplog: pytest.LogCaptureFixture
) -> None:
    address = await start_exporter(users_section(password_hash))
    async with httpx.AsyncClient() as client:
        assert (await client.get(f"http://{address}/metrics")).status_code == 401
        ok = await client.get(f"http://{address}/metrics", headers=basic(USER, PASSWORD))
        assert ok.status_code == 200
    assert "clear text" in caplog.text


async def test_an_empty_config_serves_plain_http_openly(start_exporter: StartExporter) -> None:
    address = await start_exporter("")
    async with httpx.AsyncClient() as client:
        assert (await client.get(f"http://{address}/metrics")).status_code == 200


class CountingAuth(BasicAuth):
    """BasicAuth that counts its bcrypt checks, to see what the cache saves."""

    def __init__(self, users: dict[str, bytes]) -> None:
        super().__init__(users)
        self.bcrypt_checks = 0

    def _bcrypt_check(self, password: bytes, stored: bytes | int) -> bool:
        self.bcrypt_checks += 1
        return super()._bcrypt_check(password, stored)


async def test_a_verified_password_is_not_checked_with_bcrypt_again(password_hash: str) -> None:
    auth = CountingAuth({USER: password_hash.encode()})
    assert await auth.check(USER, PASSWORD.encode())
    assert await auth.check(USER, PASSWORD.encode())
    assert auth.bcrypt_checks == 1
    assert not await auth.check(USER, b"wrong")
    assert auth.bcrypt_checks == 2
    # An unknown user costs a bcrypt check too, so timing does not reveal who exists.
    assert not await auth.check("nobody", PASSWORD.encode())
    assert auth.bcrypt_checks == 3
    assert not await auth.check(USER, b"x" * 100)  # over bcrypt's 72-byte limit
    assert await auth.check(USER, PASSWORD.encode())
    assert auth.bcrypt_checks == 4


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("Basic " + base64.b64encode(b"a:b:c").decode(), ("a", b"b:c")),
        ("basic " + base64.b64encode(b"a:").decode(), ("a", b"")),
        ("Basic " + base64.b64encode("é:p".encode()).decode(), ("é", b"p")),
        ("Basic " + base64.b64encode(b"no-colon").decode(), None),
        ("Basic not base64!", None),
        ("Bearer abc", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_basic_credentials(header: str | None, expected: tuple[str, bytes] | None) -> None:
    assert parse_basic_credentials(header) == expected


# --- configuration errors -----------------------------------------------------------------------


def config_error(tmp_path: Path, text: str) -> str:
    path = tmp_path / "web.yml"
    path.write_text(text)
    with pytest.raises(ConfigError) as raised:
        load_web_config(path)
    message = str(raised.value)
    assert "--web.config.file" in message
    assert "REQUENCE_EXPORTER_WEB_CONFIG_FILE" in message
    return message


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("tls_server_config: [\n", "not valid YAML at line"),
        ("- a list\n", "(top level)"),
        ("tls_config: {}\n", "tls_config: unknown key"),
        ("tls_server_config:\n  cert_file: a.pem\n", "tls_server_config.key_file"),
        ("tls_server_config:\n  key_file: a.key\n", "tls_server_config.cert_file"),
        ("tls_server_config:\n  cert_fil: a.pem\n", "tls_server_config.cert_fil: unknown"),
        ("tls_server_config:\n  client_allowed_sans: [a]\n", "client_allowed_sans"),
        ("http_server_config:\n  headers:\n    Server: x\n", "headers.Server"),
        ("http_server_config:\n  headers:\n    X-Frame-Options: allow\n", "X-Frame-Options"),
        ("http_server_config:\n  header: {}\n", "http_server_config.header"),
        ("basic_auth_users: [a]\n", "basic_auth_users"),
        ("basic_auth_users:\n  123: x\n", "basic_auth_users"),
    ],
)
def test_malformed_config_names_the_key(tmp_path: Path, text: str, key: str) -> None:
    assert key in config_error(tmp_path, text)


@pytest.mark.parametrize(
    ("extra", "key"),
    [
        ({"client_auth_type": "Sometimes"}, "tls_server_config.client_auth_type"),
        ({"client_auth_type": "RequireAnyClientCert"}, "tls_server_config.client_auth_type"),
        ({"client_auth_type": "RequireAndVerifyClientCert"}, "tls_server_config.client_ca_file"),
        ({"client_ca_file": "ca.pem"}, "tls_server_config.client_ca_file"),
        ({"min_version": "TLS14"}, "tls_server_config.min_version"),
        ({"max_version": "SSL3"}, "tls_server_config.max_version"),
        ({"min_version": "TLS13", "max_version": "TLS12"}, "tls_server_config.min_version"),
        ({"cipher_suites": "[TLS_MADE_UP]"}, "tls_server_config.cipher_suites"),
        ({"cipher_suites": "not-a-list"}, "tls_server_config.cipher_suites"),
        (
            {"client_auth_type": "VerifyClientCertIfGiven", "client_ca_file": "missing.pem"},
            "tls_server_config.client_ca_file",
        ),
        (
            {"client_auth_type": "VerifyClientCertIfGiven", "client_ca_file": "server.key"},
            "tls_server_config.client_ca_file",
        ),
    ],
)
def test_malformed_tls_settings_name_the_key(
    pki: Pki, tmp_path: Path, extra: dict[str, str], key: str
) -> None:
    # Absolute file names so tmp_path (not the PKI directory) can hold the config.
    fixed = {k: str(pki.dir / v) if k == "client_ca_file" else v for k, v in extra.items()}
    assert key in config_error(tmp_path, tls_section(pki, **fixed))


def test_unreadable_or_mismatched_certificates_name_the_key(pki: Pki, tmp_path: Path) -> None:
    missing = config_error(
        tmp_path, f"tls_server_config:\n  cert_file: nope.pem\n  key_file: {pki.server_key}\n"
    )
    assert "tls_server_config.cert_file: cannot read" in missing
    mismatched = config_error(
        tmp_path,
        f"tls_server_config:\n  cert_file: {pki.server_cert}\n  key_file: {pki.client_key}\n",
    )
    assert "tls_server_config.cert_file" in mismatched
    assert "not a usable certificate and key" in mismatched
    assert "PRIVATE KEY" not in mismatched


def test_a_bad_hash_is_named_by_user_but_never_quoted(
    tmp_path: Path, password_hash: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    truncated = password_hash[:-3]
    message = config_error(tmp_path, f"basic_auth_users:\n  alice: '{truncated}'\n")
    assert "basic_auth_users.alice" in message
    assert truncated not in message
    assert truncated not in caplog.text


@pytest.mark.slow
def test_exporter_exits_2_with_one_clear_line_on_a_bad_web_config(
    tmp_path: Path, refused_url: str, password_hash: str
) -> None:
    config = tmp_path / "web.yml"
    config.write_text(f"basic_auth_users:\n  alice: '{password_hash[:-3]}'\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("REQUENCE")}
    result = subprocess.run(
        [
            sys.executable, "-m", "exporter", "run", "--api-url", refused_url,
            "--bearer-token", "unused", "--listen", "127.0.0.1:0",
            "--web.config.file", str(config),
        ],
        capture_output=True, text=True, timeout=60, env=env, check=False,
    )  # fmt: skip
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if "ERROR" in line]
    assert len(errors) == 1
    assert "basic_auth_users.alice: is not a bcrypt hash" in errors[0]
    assert password_hash[:-3] not in result.stderr
