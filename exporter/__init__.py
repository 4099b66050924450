"""requence-exporter: metrics and traces from the Requence watch-all stream."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("requence-exporter")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.1.0"

__all__ = ["__version__"]
