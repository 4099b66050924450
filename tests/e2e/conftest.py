"""Fixtures for the end-to-end tests."""

from __future__ import annotations

import pytest

from tests.e2e.rig import Rig


@pytest.fixture(params=["llhttp", "httpx"])
def each_reader(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Runs a test once through each stream reader: the rig's and an exporter process's."""
    reader: str = request.param
    monkeypatch.setattr(Rig, "default_reader", reader)
    monkeypatch.setenv("REQUENCE_EXPORTER_STREAM_READER", reader)
    return reader
