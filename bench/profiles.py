"""`python -m bench.profiles`: where the stream path spends its CPU, per build, at bulk and at the
trickle: each reader run of `python -m bench.readers` sampled by py-spy (with native frames, so
the compiled build's functions and C code show), summarised as text.

    python -m bench.profiles --tree pure=. --tree compiled=build/compiled --out docs/performance

Each summary lists the functions by inclusive and by self share of the samples, import time
left out. Sampling shows shares, not costs: the figures to compare builds with come from
`make bench`.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

from bench.readers import Tree, parse_tree
from bench.render import render
from bench.servers import loopback, simulator

_LINE = re.compile(r":\d+\)$")  # a frame's line number: functions are summed over their lines
_TOP = 40
_IDLE = ("epoll_wait (libc.so.6)",)
# Frames of what a run does once before it reads: imports, settings, TLS context, the app.
_START_UP = (
    "_find_and_load",
    "settings_for (",
    "Exporter.__init__ (",
    "create_ssl_context (",
    "ArgumentParser",
    "_parse_args",
)


def _function(frame: str) -> str:
    name = _LINE.sub(")", frame.strip())
    # Paths shortened to what names the module: site-packages/…, or the tree's own.
    return re.sub(r"\((?:[^()]*/)?(site-packages|lib/python3\.\d+)/", r"(", name)


def summarise(raw: str, title: str) -> str:
    """Inclusive and self shares per function from py-spy's raw (collapsed) output."""
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit() or stack.endswith(_IDLE):
            continue  # waiting in epoll spends no CPU
        if "BaseEventLoop._run_once" not in stack or any(m in stack for m in _START_UP):
            continue  # outside the event loop's turns (start-up, exit), or setting up
        frames = [_function(f) for f in stack.split(";")]
        n = int(count)
        total += n
        for name in set(frames):
            inclusive[name] += n
        own[frames[-1]] += n
    lines = [
        title,
        f"samples: {total:,} in the event loop's turns (set-up, exit, waits left out)",
        "",
    ]
    for label, counts in (("inclusive", inclusive), ("self", own)):
        lines.append(f"{label:>9}  function")
        for name, n in counts.most_common(_TOP):
            lines.append(f"{n / max(total, 1):>8.1%}  {name}")
        lines.append("")
    return "\n".join(lines)


def _profile(py_spy: str, tree: Tree, args: list[str]) -> str:
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder, "raw.txt")
        subprocess.run(
            [
                py_spy,
                "record",
                "--native",
                "--rate",
                "500",
                "--format",
                "raw",
                "-o",
                str(out),
                "--",
                sys.executable,
                "-m",
                "bench.readers",
                *args,
            ],
            cwd=tree.path,
            check=True,
            capture_output=True,
            timeout=600,
        )
        return out.read_text()


def main() -> None:
    """Profile each tree's reader at bulk (both framings) and at the trickle."""
    parser = argparse.ArgumentParser(prog="python -m bench.profiles", description=__doc__)
    parser.add_argument("--tree", type=parse_tree, action="append", required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--seconds", type=float, default=60.0, help="the trickle's window")
    args = parser.parse_args()
    py_spy = shutil.which("py-spy", path=str(Path(sys.executable).parent))
    if py_spy is None:
        raise SystemExit("py-spy is not installed (the bench extra installs it)")
    args.out.mkdir(parents=True, exist_ok=True)
    stream = render(args.events)
    trees: list[Tree] = args.tree
    with (
        loopback(stream, trees[0].path) as (port, _),
        simulator(200.0, trees[0].path) as base_url,
    ):
        for tree in trees:
            runs = {
                f"bulk-{framing}": [
                    *("bulk", "exporter", f"http://127.0.0.1:{port}/{framing}"),
                    str(stream.last_position),
                ]
                for framing in ("coalesced", "per-event")
            }
            runs["trickle"] = ["trickle", "exporter", base_url, "--seconds", str(args.seconds)]
            for name, reader in runs.items():
                size = (
                    f"{args.seconds:g} s at 200 updates/s"
                    if name == "trickle"
                    else f"{args.events:,} updates"
                )
                title = f"{tree.build}, {name} ({size}), sampled by py-spy --native"
                print(title, flush=True)
                text = summarise(_profile(py_spy, tree, reader), title)
                Path(args.out, f"profile-{tree.name}-{name}.txt").write_text(text + "\n")


if __name__ == "__main__":
    main()
