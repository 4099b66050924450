"""`python -m bench.profiles`: where the stream path spends its CPU, per build, at bulk and at the
trickle: each reader run of `python -m bench.readers` sampled, summarised as text.

    python -m bench.profiles --tree pure=. --tree compiled=build/compiled --out docs/performance

The pure build is sampled by py-spy, Python frames only: its functions are Python, and the C
they call (msgspec, datetime, llhttp) counts as its caller's own time. The compiled build's
functions are C, so it is sampled by Linux `perf` (the CPU clock, stacks unwound from DWARF),
which sees them and everything under them. py-spy's own native unwinding held the reader stopped
for minutes at a time on this machine, so it is not used.

Each summary lists the functions by inclusive and by self share of the samples, start-up, exit
and idle waits left out. Sampling shows shares, not costs: the figures to compare builds with
come from `make bench`.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path

from bench.readers import Tree, parse_tree
from bench.render import render
from bench.servers import loopback, simulator

__all__ = ["perf_stacks", "py_spy_stacks", "summarise"]

Stack = tuple[list[str], int]  # frames, outermost first, and how many samples had them

_TOP = 40
_RATE = 999  # samples a second: not a multiple of common timer rates
_LINE = re.compile(r":\d+\)$")  # a frame's line number: functions are summed over their lines
# py-spy: frames of what a run does once before it reads (imports, settings, TLS context, the
# app); only the event loop's turns count.
_START_UP = (
    "_find_and_load",
    "settings_for (",
    "Exporter.__init__ (",
    "create_ssl_context (",
    "ArgumentParser",
    "_parse_args",
)
# perf: frames of the process's start-up and exit (loading, imports, compiling the main module,
# the TLS context's certificates, finalization, exit handlers). Idle waits take no CPU clock and
# are never sampled.
_PERF_OUTSIDE = re.compile(
    r"^(_dl_|dl_main|pymain_init|Py_InitializeFromConfig|PyImport_|import_find_and_load|"
    r"builtin_compile|Py_FinalizeEx|finalize_modules|__run_exit_handlers|OPENSSL_cleanup|X509_|"
    r"SSL_CTX_load_verify|CPyDef_app___Exporter_____init__)"
)
# perf: the interpreter's own call machinery, left out of the inclusive list (not of the counts).
_PLUMBING = re.compile(
    r"^(_PyEval_|PyEval_|_?PyObject_(Vectorcall|Call|FastCall|MakeTpCall)|_PyFunction_Vectorcall|"
    r"_PyVectorcall|Py_RunMain|Py_BytesMain|pymain|_PyRun|PyRun_|run_mod|run_eval_code_obj|"
    r"_start|__libc_start|cfunction_|method_vectorcall|object_vacall|context_run|builtin_exec|"
    r"do_call_core|type_call|slot_tp_call|vectorcall_|_Py_RunMain|\[unknown\])"
)


def _function(frame: str) -> str:
    name = _LINE.sub(")", frame.strip())
    # Paths shortened to what names the module: site-packages/…, or the tree's own.
    return re.sub(r"\((?:[^()]*/)?(site-packages|lib/python3\.\d+)/", r"(", name)


def py_spy_stacks(raw: str) -> Iterator[Stack]:
    """The stacks of py-spy's raw (collapsed) output in the event loop's turns."""
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        if "BaseEventLoop._run_once" not in stack or any(m in stack for m in _START_UP):
            continue  # outside the event loop's turns (start-up, exit), or setting up
        yield [_function(f) for f in stack.split(";")], int(count)


def perf_stacks(script: str) -> Iterator[Stack]:
    """The stacks of `perf script -F ip,sym` output, start-up and exit left out. Each sample is
    a block of frames, innermost first (`ADDRESS SYMBOL`, a function inlined into its caller
    marked `(inlined)`: named as the function), blocks apart by blank lines."""
    for block in script.split("\n\n"):
        frames = []
        for line in block.strip().splitlines():
            _, _, symbol = line.strip().partition(" ")
            frames.append(symbol.strip().removesuffix(" (inlined)") or "[unknown]")
        if frames and not any(_PERF_OUTSIDE.match(f) for f in frames):
            yield frames[::-1], 1


def summarise(
    stacks: Iterable[Stack],
    title: str,
    *,
    listed: re.Pattern[str] | None = None,
    compiled: str | None = None,
) -> str:
    """Inclusive and self shares per function; `listed` leaves the functions it matches out of
    the inclusive list (not out of any count); `compiled`, the prefix of the compiled build's
    functions, adds the share of samples in none of them."""
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = outside = 0
    for frames, n in stacks:
        total += n
        if compiled is not None and not any(f.startswith(compiled) for f in frames):
            outside += n
        for name in set(frames):
            inclusive[name] += n
        own[frames[-1]] += n
    if listed is not None:
        inclusive = Counter({k: v for k, v in inclusive.items() if not listed.match(k)})
    lines = [title, f"samples: {total:,} (start-up, exit and idle waits left out)", ""]
    if compiled is not None:
        share = outside / max(total, 1)
        where = f"outside the compiled functions ({compiled}...): event loop, system calls"
        lines[2:2] = [f"{share:.1%} {where}"]
    for label, counts in (("inclusive", inclusive), ("self", own)):
        lines.append(f"{label:>9}  function")
        for name, n in counts.most_common(_TOP):
            lines.append(f"{n / max(total, 1):>8.1%}  {name}")
        lines.append("")
    return "\n".join(lines)


def _record(sampler: list[str], tree: Tree, args: list[str]) -> None:
    """One reader's run from `tree`, under `sampler`."""
    command = [*sampler, sys.executable, "-m", "bench.readers", *args]
    subprocess.run(command, cwd=tree.path, check=True, capture_output=True, timeout=600)


def _py_spy(tool: str, tree: Tree, args: list[str], title: str) -> str:
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder, "raw.txt")
        # Only samples that hold the GIL: a wait in epoll releases it (and so, briefly, does a
        # socket read); without native frames nothing else tells a wait from work.
        command = [tool, "record", "--gil", "--rate", str(_RATE), "--format", "raw", "-o", str(out)]
        _record([*command, "--"], tree, args)
        return summarise(py_spy_stacks(out.read_text()), f"{title}, sampled by py-spy")


def _perf(tool: str, tree: Tree, args: list[str], title: str) -> str:
    with tempfile.TemporaryDirectory() as folder:
        data = str(Path(folder, "perf.data"))
        record = [tool, "record", "-e", "cpu-clock", "-F", str(_RATE), "--call-graph", "dwarf"]
        _record([*record, "-o", data, "--"], tree, args)
        script = subprocess.run(
            [tool, "script", "-i", data, "-F", "ip,sym"],
            check=True,
            capture_output=True,
            text=True,
            timeout=600,
        ).stdout
        return summarise(
            perf_stacks(script), f"{title}, sampled by perf", listed=_PLUMBING, compiled="CPyDef_"
        )


def _tool(name: str, hint: str) -> str:
    found = shutil.which(name, path=f"{Path(sys.executable).parent}:/usr/bin:/usr/local/bin")
    if found is None:
        raise SystemExit(f"{name} is not installed ({hint})")
    return found


def main() -> None:
    """Profile each tree's reader at bulk (both framings) and at the trickle."""
    parser = argparse.ArgumentParser(prog="python -m bench.profiles", description=__doc__)
    parser.add_argument("--tree", type=parse_tree, action="append", required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--events", type=int, default=300_000)
    parser.add_argument("--seconds", type=float, default=60.0, help="the trickle's window")
    args = parser.parse_args()
    trees: list[Tree] = args.tree
    samplers = {
        tree.name: (
            (_perf, _tool("perf", "apt-get install linux-perf"))
            if tree.name == "compiled"
            else (_py_spy, _tool("py-spy", "the bench extra installs it"))
        )
        for tree in trees
    }
    args.out.mkdir(parents=True, exist_ok=True)
    stream = render(args.events)
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
            sample, tool = samplers[tree.name]
            for name, reader in runs.items():
                size = (
                    f"{args.seconds:g} s at 200 updates/s"
                    if name == "trickle"
                    else f"{args.events:,} updates"
                )
                title = f"{tree.build}, {name} ({size})"
                print(title, flush=True)
                text = sample(tool, tree, reader, title)
                Path(args.out, f"profile-{tree.name}-{name}.txt").write_text(text + "\n")


if __name__ == "__main__":
    main()
