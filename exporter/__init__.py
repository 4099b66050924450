"""requence-exporter: metrics and traces from the Requence watch-all stream."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("requence-exporter")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.1.0"

__all__ = ["__version__", "is_compiled"]


def is_compiled() -> bool:
    """Whether the per-update modules run as mypyc-compiled extensions (see setup.py)."""
    from exporter.core import tracker

    return not tracker.__file__.endswith(".py")
