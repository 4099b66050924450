"""`python -m exporter.simulator`: run a watch-all simulator and print how to connect to it."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import secrets

from exporter.simulator.server import serve_simulator


def _address(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        raise argparse.ArgumentTypeError("expected HOST:PORT, for example 127.0.0.1:0")
    return host.strip("[]") or "127.0.0.1", int(port)


async def _run(args: argparse.Namespace) -> None:
    host, port = args.listen
    simulator = await serve_simulator(
        host,
        port,
        seed=args.seed,
        rate=args.rate,
        bearer=args.bearer or secrets.token_urlsafe(24),
        time_scale=args.time_scale,
    )
    try:
        print(f"base URL:     {simulator.base_url}", flush=True)
        print(f"access token: {simulator.access_token}", flush=True)
        await asyncio.Event().wait()
    finally:
        await simulator.aclose()


def main(argv: list[str] | None = None) -> int:
    """Parse the flags and serve until interrupted."""
    parser = argparse.ArgumentParser(
        prog="python -m exporter.simulator", description="Serve a simulated Requence watch-all."
    )
    parser.add_argument("--listen", type=_address, default=("127.0.0.1", 0), help="HOST:PORT")
    parser.add_argument("--seed", type=int, default=1, help="workload seed (same seed, same run)")
    parser.add_argument("--rate", type=float, default=50.0, help="updates per second on average")
    parser.add_argument("--time-scale", type=float, default=0.1, help="factor on task durations")
    parser.add_argument("--bearer", default=None, help="bearer token to expect (default: random)")
    args = parser.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_run(args))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
