"""The package imports and reports a version."""

import exporter


def test_version_is_set() -> None:
    assert exporter.__version__.count(".") >= 2
