"""Fixtures shared by the test modules."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client for talking to servers on loopback."""
    async with httpx.AsyncClient(timeout=10.0) as http:
        yield http
