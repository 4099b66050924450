"""`simulate` and `demo`: the built-in Requence stand-in, alone or with the exporter reading it."""

from __future__ import annotations

import asyncio
import logging
import secrets
import time

from exporter.app import EXIT_CONFIG, Exporter, install_signal_handlers
from exporter.config import Settings, parse_listen, settings_for
from exporter.core.errors import ConfigError
from exporter.simulator.incidents import Incident, drill_simulator, run_drill
from exporter.simulator.server import WatchAllSimulator

__all__ = ["run_demo", "run_simulator"]

log = logging.getLogger(__name__)


def _simulator(
    bearer: str, seed: int, rate: float, incident: Incident | None, delay: float
) -> WatchAllSimulator:
    if incident is None:
        return WatchAllSimulator(bearer=bearer, seed=seed, rate=rate)
    return drill_simulator(incident, delay, bearer=bearer, seed=seed, rate=rate)


async def run_simulator(
    listen: str,
    *,
    seed: int,
    rate: float,
    incident: Incident | None = None,
    delay: float = 0.0,
) -> int:
    """Serve a simulated watch-all stream until SIGTERM/SIGINT; print the token for it."""
    try:
        host, port = parse_listen(listen)
    except ConfigError as exc:
        print(f"requence-exporter simulate: {exc}")
        return EXIT_CONFIG
    stop = asyncio.Event()
    install_signal_handlers(stop)
    simulator = _simulator(secrets.token_urlsafe(16), seed, rate, incident, delay)
    await simulator.start(host, port)
    print(f"simulated Requence API on {simulator.base_url} (seed {seed}, ~{rate:g} updates/s)")
    print(f"REQUENCE_ACCESS_TOKEN={simulator.access_token}", flush=True)
    drill = None if incident is None else asyncio.create_task(run_drill(simulator, incident, delay))
    try:
        await stop.wait()
    finally:
        if drill is not None:
            drill.cancel()
        await simulator.aclose()
    return 0


class _Summary:
    """One line every few seconds: rate, task outcomes, in progress, lag."""

    def __init__(self, exporter: Exporter) -> None:
        self._exporter = exporter
        self._last_total = 0
        self._last_time = time.monotonic()

    def line(self) -> str:
        counts = self._exporter.metrics.updates_by_type()
        total = sum(counts.values())
        now = time.monotonic()
        rate = (total - self._last_total) / max(now - self._last_time, 1e-9)
        self._last_total, self._last_time = total, now
        status = self._exporter.status
        lag = "-"
        if status.last_update_timestamp is not None and status.last_update_arrival is not None:
            lag = (
                f"{max(status.last_update_arrival - status.last_update_timestamp, 0) * 1000:.0f}ms"
            )
        tasks, _nodes, _oldest = self._exporter.tracker.progress()
        return (
            f"{rate:7.1f} updates/s | tasks started {counts['taskStart']} ended "
            f"{counts['taskEnd']} errored {counts['taskError']} aborted {counts['taskAborted']} "
            f"| in progress {sum(tasks.values())} | lag {lag}"
            + ("" if status.connected else " | DISCONNECTED")
        )


def _banner(base: str, simulated: str, seed: int, rate: float, settings: Settings) -> str:
    """Where to look, and what the dashboards need beyond the exporter."""
    if settings.tracing.enabled:
        traces = (
            f"Traces go to {settings.tracing.endpoint}; latency buckets carry their trace ids "
            "as exemplars (OpenMetrics scrapes)."
        )
    else:
        traces = (
            "Traces are off, so latency buckets carry no exemplars: set "
            "OTEL_EXPORTER_OTLP_ENDPOINT (an OTLP endpoint such as Tempo's) to turn them on."
        )
    return (
        f"\nrequence-exporter demo: a simulated Requence account ({simulated}, seed {seed}, "
        f"~{rate:g} updates/s) followed by the exporter.\n"
        f"  status page  {base}/\n"
        f"  metrics      {base}/metrics\n"
        f"  failures     {base}/failures\n"
        f"  status JSON  {base}/status\n"
        "Prometheus: scrape the metrics and load grafana/alerts.yml as a rule file (or the "
        "output of requence-exporter rules): the alerts, and the recording rules the "
        "Requence / SLOs dashboard reads.\n"
        "Grafana: import grafana/dashboards/*.json.\n"
        f"{traces}\n"
        "Ctrl-C stops.\n"
    )


async def run_demo(
    listen: str,
    *,
    seed: int,
    rate: float,
    every: float,
    trace_url_template: str | None = None,
    incident: Incident | None = None,
    delay: float = 0.0,
) -> int:
    """The simulator and the exporter in one process; print URLs, then a live summary."""
    try:
        parse_listen(listen)
    except ConfigError as exc:
        print(f"requence-exporter demo: {exc}")
        return EXIT_CONFIG
    stop = asyncio.Event()
    install_signal_handlers(stop)
    bearer = secrets.token_urlsafe(16)
    simulator = _simulator(bearer, seed, rate, incident, delay)
    await simulator.start("127.0.0.1", 0)
    drill = None if incident is None else asyncio.create_task(run_drill(simulator, incident, delay))
    try:
        # `=`: a random token may start with "-", which argparse would take for a flag.
        argv = ["--api-url", simulator.base_url, f"--bearer-token={bearer}", "--listen", listen]
        if trace_url_template:
            argv.append(f"--trace-url-template={trace_url_template}")
        try:
            settings = settings_for(argv)
        except ConfigError as exc:
            print(f"requence-exporter demo: {exc}")
            return EXIT_CONFIG
        exporter = Exporter(settings)
        try:
            host, port = await exporter.start_server()
        except OSError as exc:
            print(
                f"requence-exporter demo: cannot listen on {listen}: {exc.strerror} "
                "(choose another with --listen, or `make demo LISTEN=127.0.0.1:9000`)"
            )
            return EXIT_CONFIG
        print(
            _banner(f"http://{host}:{port}", simulator.base_url, seed, rate, settings), flush=True
        )
        summary = _Summary(exporter)

        async def report() -> None:
            while True:
                await asyncio.sleep(every)
                print(summary.line(), flush=True)

        reporter = asyncio.create_task(report())
        try:
            return await exporter.run(stop)
        finally:
            reporter.cancel()
    finally:
        if drill is not None:
            drill.cancel()
        await simulator.aclose()
