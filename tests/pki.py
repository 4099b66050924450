"""A throw-away certificate authority for TLS tests, made with the openssl command line."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import NamedTuple

from tests.tools import require_tool

__all__ = ["Pki", "make_pki"]


class Pki(NamedTuple):
    """A throw-away CA with a server certificate (for 127.0.0.1) and a client certificate.

    `dir` also holds `rotated.pem`/`.key` (a second server certificate of the CA) and
    `stranger.pem`/`.key` (a self-signed client certificate the CA never signed).
    """

    dir: Path
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path


def _openssl(openssl: str, *args: str) -> None:
    subprocess.run([openssl, *args], check=True, capture_output=True, timeout=60)


def make_pki(d: Path) -> Pki:
    """Generate the CA and certificates in directory `d` (skips the test without openssl)."""
    openssl = require_tool("openssl")
    _openssl(
        openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
        "-keyout", str(d / "ca.key"), "-out", str(d / "ca.pem"), "-subj", "/CN=test CA",
        # Python 3.13 verifies strictly (VERIFY_X509_STRICT): a CA must state its key usage.
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
    )  # fmt: skip
    _openssl(
        openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
        "-keyout", str(d / "stranger.key"), "-out", str(d / "stranger.pem"),
        "-subj", "/CN=stranger", "-addext", "extendedKeyUsage=clientAuth",
        "-addext", "keyUsage=critical,digitalSignature,keyEncipherment",
    )  # fmt: skip
    leaf = (
        "basicConstraints=CA:FALSE\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n"
        "keyUsage=critical,digitalSignature,keyEncipherment\n"
    )
    for name, usage in (
        ("server", "serverAuth"),
        ("rotated", "serverAuth"),
        ("client", "clientAuth"),
    ):
        (d / f"{name}.ext").write_text(
            f"{leaf}extendedKeyUsage={usage}\nsubjectAltName=IP:127.0.0.1\n"
        )
        _openssl(
            openssl, "req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(d / f"{name}.key"),
            "-out", str(d / f"{name}.csr"), "-subj", f"/CN={name}",
        )  # fmt: skip
        _openssl(
            openssl, "x509", "-req", "-in", str(d / f"{name}.csr"), "-CA", str(d / "ca.pem"),
            "-CAkey", str(d / "ca.key"), "-CAcreateserial", "-days", "1",
            "-extfile", str(d / f"{name}.ext"), "-out", str(d / f"{name}.pem"),
        )  # fmt: skip
    return Pki(
        d, d / "ca.pem", d / "server.pem", d / "server.key", d / "client.pem", d / "client.key"
    )
