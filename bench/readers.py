"""`python -m bench.readers`: one reader's run, in a fresh process of the tree it runs from,
printed as JSON. `python -m bench` runs every reader this way, from the source tree (the pure
build) and from the compiled tree, alternating, so both builds and the floors meet the same
machine state.

    python -m bench.readers bulk READER URL LAST_POSITION [--otlp URL] [--port P --size N]
    python -m bench.readers trickle READER BASE_URL --warmup S --seconds S
"""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path
from typing import Any, NamedTuple

from bench.stream_runs import exporter_run, raw_floor, sse_floor, sync_floor
from bench.trickle import trickle_async_floor, trickle_exporter, trickle_sync_floor
from exporter import is_compiled
from exporter.core.runtime import tune

BULK_READERS = (
    "raw_socket",
    "httpx_sse",
    "httpx_sse_json_async",
    "httpx_sse_json",
    "exporter",
    "exporter_traces",
    "exporter_httpx",
)
TRICKLE_READERS = ("httpx_sse_json", "httpx_sse_json_async", "exporter", "exporter_httpx")


class Tree(NamedTuple):
    """A tree the readers run from: its name in the report and the build it must import."""

    name: str
    path: Path

    @property
    def build(self) -> str:
        return "compiled" if self.name == "compiled" else "pure Python"


def parse_tree(text: str) -> Tree:
    """`--tree pure=DIR` or `compiled=DIR`, DIR holding bench/ (and the build it names)."""
    name, sep, path = text.partition("=")
    if not sep or name not in ("pure", "compiled") or not Path(path, "bench").is_dir():
        raise argparse.ArgumentTypeError("expected pure=DIR or compiled=DIR, DIR holding bench/")
    return Tree(name, Path(path).resolve())


def bulk(args: argparse.Namespace) -> dict[str, Any]:
    """One timed read of the whole pre-rendered stream."""
    url, last = args.url, args.last_position
    match args.reader:
        case "raw_socket":
            return {"seconds": raw_floor(args.port, args.path, args.size)}
        case "httpx_sse":
            return {"seconds": asyncio.run(sse_floor(url, last, parse_json=False))}
        case "httpx_sse_json_async":
            return {"seconds": asyncio.run(sse_floor(url, last, parse_json=True))}
        case "httpx_sse_json":
            return {"seconds": sync_floor(url, last)}
        case "exporter":
            return asyncio.run(exporter_run(url, last))
        case "exporter_traces":
            return asyncio.run(exporter_run(url, last, otlp_endpoint=args.otlp))
        case "exporter_httpx":
            return asyncio.run(exporter_run(url, last, reader="httpx"))
    raise SystemExit(f"unknown reader {args.reader}")


def trickle(args: argparse.Namespace) -> dict[str, Any]:
    """CPU seconds and updates over one window of the simulator's steady rate."""
    url, warmup, seconds = args.url, args.warmup, args.seconds
    match args.reader:
        case "httpx_sse_json":
            return trickle_sync_floor(url, warmup, seconds)
        case "httpx_sse_json_async":
            return asyncio.run(trickle_async_floor(url, warmup, seconds))
        case "exporter":
            return asyncio.run(trickle_exporter(url, warmup, seconds))
        case "exporter_httpx":
            return asyncio.run(trickle_exporter(url, warmup, seconds, reader="httpx"))
    raise SystemExit(f"unknown reader {args.reader}")


def main() -> None:
    """Parse, run once, print the JSON (with the build this process imported)."""
    parser = argparse.ArgumentParser(prog="python -m bench.readers", description=__doc__)
    modes = parser.add_subparsers(dest="mode", required=True)
    one = modes.add_parser("bulk")
    one.add_argument("reader", choices=BULK_READERS)
    one.add_argument("url")
    one.add_argument("last_position", type=int)
    one.add_argument("--otlp", default=None)
    one.add_argument("--port", type=int, default=0)
    one.add_argument("--path", default="")
    one.add_argument("--size", type=int, default=0)
    steady = modes.add_parser("trickle")
    steady.add_argument("reader", choices=TRICKLE_READERS)
    steady.add_argument("url")
    steady.add_argument("--warmup", type=float, default=3.0)
    steady.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args()
    if args.reader.startswith("exporter"):
        tune()  # as `requence-exporter` starts; the floors run with Python's defaults
    result = bulk(args) if args.mode == "bulk" else trickle(args)
    result["build"] = "compiled" if is_compiled() else "pure Python"
    print(json.dumps(result))


if __name__ == "__main__":
    main()
