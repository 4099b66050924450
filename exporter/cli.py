"""Command line: `run`, `simulate`, `demo` (filled in by the core)."""


def main() -> int:
    """Entry point of the `requence-exporter` command."""
    raise SystemExit("not yet wired")
