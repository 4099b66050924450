"""Fixtures shared by the test modules."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from tests.pki import Pki, make_pki


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client for talking to servers on loopback."""
    async with httpx.AsyncClient(timeout=10.0) as http:
        yield http


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """A throw-away CA with server and client certificates for 127.0.0.1."""
    return make_pki(tmp_path_factory.mktemp("pki"))
