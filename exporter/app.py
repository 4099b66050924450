"""Wiring: stream -> pipeline -> tracker -> sinks, the HTTP server, signals and shutdown.

One asyncio task group runs the stream and the periodic jobs; SIGTERM or SIGINT stops reading,
saves the state file, then flushes the sinks and exits 0 (1 when the final save failed).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx

from exporter import __version__, is_compiled
from exporter.config import Settings
from exporter.core.checkpoint import StateFile
from exporter.core.errors import ConfigError, NotFound, Unauthorized
from exporter.core.saving import Checkpointer, watch_loop_lag
from exporter.core.scrapemark import ScrapeMark
from exporter.core.status import StreamStatus
from exporter.core.tracker import Tracker
from exporter.metrics.otlp_push import OtlpMetricsPusher, build_metric_exporter, build_resource
from exporter.metrics.process import ProcessMetrics
from exporter.metrics.store import Metrics
from exporter.requence.intake import Handler
from exporter.requence.pipeline import Pipeline, RecentIds
from exporter.requence.stream import WatchStream
from exporter.serving.activity import Activity
from exporter.serving.endpoints import ExporterEndpoints
from exporter.serving.failure_log import FailureLog
from exporter.serving.failures import FailureRecorder, FailureRing
from exporter.serving.http_server import HTTPServer
from exporter.serving.webconfig import WebConfig, load_web_config
from exporter.traces.sink import build_trace_sink

__all__ = ["Exporter", "run_exporter"]

log = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_STATE = 1  # stopped cleanly, but the final state file save failed
EXIT_CONFIG = 2


def _now_iso() -> str:
    now = datetime.now(UTC)
    return now.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Exporter:
    """The running exporter: owns its tracker, sinks, stream and HTTP server."""

    def __init__(self, settings: Settings, *, clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.status = StreamStatus()
        self.traces = build_trace_sink(settings.tracing)
        traces = self.traces
        self.metrics = Metrics(
            max_label_values=settings.max_label_values,
            task_buckets=settings.task_buckets,
            node_buckets=settings.node_buckets,
            status=self.status,
            exemplars=traces is not None,
            span_stats=(lambda: (traces.exported, traces.dropped)) if traces else None,
            process=ProcessMetrics(),
        )
        self.failures = FailureRing(settings.recent_failures)
        self.failure_log = (
            FailureLog(
                per_second=settings.log_failures_per_second,
                json_fields=settings.log_format == "json",
            )
            if settings.log_failures
            else None
        )
        self.recorder = FailureRecorder(
            self.failures, [self.failure_log] if self.failure_log is not None else []
        )
        self.tracker = Tracker(
            observers=[self.metrics, *([traces] if traces else [])],
            failures=self.recorder,
            max_tasks=settings.max_tracked_tasks,
            task_ttl=settings.task_ttl,
            # Finished node attempts are kept until their task's spans are built.
            keep_attempts=traces is not None,
        )
        self.metrics.tracker = self.tracker
        self.otlp_metrics = (
            OtlpMetricsPusher(
                self.metrics, build_metric_exporter(os.environ), build_resource(settings.tracing)
            )
            if settings.otlp_metrics
            else None
        )
        self.pipeline = Pipeline(
            tracker=self.tracker, metrics=self.metrics, status=self.status, shard=settings.shard
        )
        self._clock = clock
        self.activity = Activity(self.metrics.updates_by_type, self.status, clock=clock)
        self.state_file = StateFile(settings.state_file) if settings.state_file else None
        self.scrape_mark = (
            ScrapeMark(settings.state_file.with_name(f"{settings.state_file.name}.scraped"))
            if settings.state_file
            else None
        )
        self.checkpointer = (
            Checkpointer(
                state_file=self.state_file,
                tracker=self.tracker,
                status=self.status,
                # A lambda: restoring replaces the pipeline's ring.
                recent_ids=lambda: self.pipeline.recent_ids.ids(),  # noqa: PLW0108
                scrape_mark=self.scrape_mark,
                on_failure=self._save_failed,
            )
            if self.state_file is not None
            else None
        )
        self._ready = False
        self._stream: WatchStream | None = None
        self._stream_task: asyncio.Task[None] | None = None
        self.server: HTTPServer | None = None
        self.address: tuple[str, int] | None = None

    def is_ready(self) -> bool:
        """Readiness: serving, and any saved state restored (never tied to Requence)."""
        return self._ready

    def is_alive(self) -> bool:
        """Liveness: the stream loop runs and has not been stuck past any sane bound."""
        task = self._stream_task
        if task is None or self._stream is None:
            return not self._ready  # starting up
        if task.done():
            return False
        stuck_after = self.settings.read_timeout + 120.0
        return time.monotonic() - self._stream.alive_at < stuck_after

    async def start_server(self) -> tuple[str, int]:
        """Start the HTTP server (with the web config's TLS and auth); return its address.

        Raises ConfigError when the web config file is wrong.
        """
        endpoints = ExporterEndpoints(
            metrics=self.metrics,
            tracker=self.tracker,
            status=self.status,
            is_alive=self.is_alive,
            is_ready=self.is_ready,
            clock=self._clock,
            failures=self.failures,
            activity=self.activity,
            trace_url_template=self.settings.trace_url_template,
            on_scrape=self._scraped if self.scrape_mark is not None else None,
        )
        web = WebConfig()
        if self.settings.web_config_file is not None:
            web = load_web_config(self.settings.web_config_file)
        # wrap() leaves /healthz and /readyz open: kubelet probes cannot easily send credentials.
        self.server = HTTPServer(
            web.wrap(endpoints),
            ssl_context=web.ssl_context,
            headers=web.headers,
            limits=self.settings.server_limits,
        )
        self.metrics.connections_refused = self.server.refused
        self.address = await self.server.start(*self.settings.listen)
        return self.address

    def _scraped(self) -> None:
        position = self.status.position
        if self.scrape_mark is not None and self._ready and position is not None:
            # While a quiet replay runs, what was collected before the crash still counts.
            position = max(position, self.pipeline.quiet_until)
            self.scrape_mark.mark(self.status.since, position)

    async def restore(self) -> str | None:
        """Load the state file, if any, into the tracker and stream status; return its since.

        Reading and checking a large file takes a while: it runs in a thread, so the probes are
        answered meanwhile (/readyz says not ready until it is done).
        """
        if self.state_file is None:
            return None
        saved = await asyncio.to_thread(self.state_file.load, self.settings.max_tracked_tasks)
        if saved is None:
            return None
        tasks, finished_ids, latest, dropped, trims = saved.tracker
        self.tracker.load(tasks, finished_ids, latest, dropped)
        # What the file held beyond the stream's bounds is counted as the stream's would be.
        for field, count in trims.cut.items():
            self.metrics.values_cut[field] += count
        self.tracker.stats.nodes_dropped += trims.nodes_dropped
        self.tracker.stats.attempts_dropped += trims.attempts_dropped
        self.metrics.restored(self.tracker.tasks())
        self.status.position = saved.position
        self.status.last_update_timestamp = saved.last_update_timestamp
        if self.checkpointer is not None:
            self.checkpointer.saved_position = saved.position
        self.pipeline.recent_ids = RecentIds(ids=saved.recent_ids)
        mark = self.scrape_mark.read() if self.scrape_mark is not None else None
        if mark is not None and mark[0] == saved.since and mark[1] > (saved.position or 0):
            # A crash after a scrape: what it collected is replayed quietly, not counted again.
            self.pipeline.quiet_until = mark[1]
            log.info(
                "the last scrape saw position %s, past the checkpoint: updates up to it are "
                "applied without counting them again",
                mark[1],
            )
        log.info(
            "resuming from %s: since %s, after position %s, %d tasks in flight",
            self.state_file.path,
            saved.since,
            saved.position,
            len(self.tracker),
        )
        if dropped:
            log.warning(
                "state file %s held %d tasks more than --max-tracked-tasks %d: the least "
                "recently updated were dropped and counted as evicted",
                self.state_file.path,
                dropped,
                self.settings.max_tracked_tasks,
            )
        return saved.since

    def _save_failed(self) -> None:
        self.metrics.state_save_failures += 1

    async def checkpoint(self, *, force: bool = False) -> bool:
        """Save the state file when anything was processed since the last save, without
        holding the event loop (`exporter.core.Checkpointer`).

        Return whether the state on disk is now current; a failed save is counted in
        `requence_exporter_state_save_failures_total` and logged at most once a minute.
        """
        if self.checkpointer is None:
            return True
        return await self.checkpointer.save(force=force)

    async def _every_second(self) -> None:
        # The status page's rates come from these samples, and suppressed failure lines are
        # reported.
        while True:
            self.activity.sample()
            if self.failure_log is not None:
                self.failure_log.tick()
            await asyncio.sleep(1.0)

    def watch_stream(
        self, client: httpx.AsyncClient, since: str, handler: Handler | None = None
    ) -> WatchStream:
        """The watch-all stream from `since`, built from the settings; its reads go to the
        pipeline, or to `handler` (the benchmark's, which counts them on the way)."""
        settings = self.settings
        return WatchStream(
            client=client,
            credentials=settings.credentials,
            since=since,
            status=self.status,
            handler=self.pipeline.feed if handler is None else handler,
            read_timeout=settings.read_timeout,
            max_event_bytes=settings.max_event_bytes,
            reader=settings.stream_reader,
            gather=settings.gather_reads,
            clock=self._clock,
            backpressure=self.traces.backpressure if self.traces is not None else None,
        )

    async def run(self, stop: asyncio.Event) -> int:
        """Stream until `stop` is set; return the process exit code."""
        settings = self.settings
        if self.state_file is not None:
            try:
                self.state_file.lock()
            except ConfigError as exc:
                log.error("%s", exc)
                await self.aclose()
                return EXIT_CONFIG
        saved_since = await self.restore()
        if saved_since and settings.since and saved_since != settings.since:
            log.info("--since %s ignored: resuming the state file's stream", settings.since)
        since = saved_since or settings.since or _now_iso()
        if self.server is None:
            await self.start_server()
        log.info(
            "requence-exporter %s (%s) starting",
            __version__,
            "compiled" if is_compiled() else "pure Python",
            extra={"fields": _startup_fields(settings)},
        )
        async with httpx.AsyncClient(trust_env=True) as client:
            self._stream = self.watch_stream(client, since)
            self._ready = True
            code = EXIT_OK
            try:
                async with asyncio.TaskGroup() as group:
                    self._stream_task = group.create_task(self._stream.run())
                    jobs = [
                        self._stream_task,
                        group.create_task(self._every_second()),
                        group.create_task(watch_loop_lag(self.metrics.observe_loop_lag)),
                    ]
                    if self.checkpointer is not None:
                        checkpoints = self.checkpointer.run(settings.checkpoint_interval)
                        jobs.append(group.create_task(checkpoints))
                    if self.otlp_metrics is not None:
                        jobs.append(group.create_task(self.otlp_metrics.run()))
                    group.create_task(self._stop_on(stop, group_tasks=jobs))
            except* (Unauthorized, NotFound) as failure:
                log.error("%s", failure.exceptions[0])
                code = EXIT_CONFIG
        # The state first: flushing spans and metrics waits on collectors (up to their export
        # timeouts), and a pod killed at the end of its grace period must leave its state.
        if not await self.checkpoint(force=True) and code == EXIT_OK:
            log.error("the final state file save failed: the next start resumes from an older one")
            code = EXIT_STATE
        if self.traces is not None:
            await asyncio.to_thread(self.traces.shutdown)
        if self.otlp_metrics is not None:
            await self.otlp_metrics.aclose()
        if self.scrape_mark is not None:
            self.scrape_mark.close()
        if self.state_file is not None:
            self.state_file.unlock()
        await self.aclose()
        return code

    async def _stop_on(self, stop: asyncio.Event, group_tasks: list[asyncio.Task[None]]) -> None:
        await stop.wait()
        log.info("stopping: finishing the current read, saving state, flushing")
        for task in group_tasks:
            task.cancel()

    async def aclose(self) -> None:
        """Stop serving."""
        if self.server is not None:
            await self.server.aclose()
            self.server = None


def install_signal_handlers(stop: asyncio.Event) -> None:
    """SIGTERM and SIGINT set `stop` (a second SIGINT is not needed: stopping is prompt)."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)


async def run_exporter(settings: Settings) -> int:
    """Run until SIGTERM/SIGINT; the `run` command."""
    stop = asyncio.Event()
    install_signal_handlers(stop)
    try:
        exporter = Exporter(settings)
    except ConfigError as exc:
        log.error("%s", exc)
        return EXIT_CONFIG
    try:
        host, port = await exporter.start_server()
    except ConfigError as exc:
        log.error("%s", exc)
        return EXIT_CONFIG
    except OSError as exc:
        log.error("cannot listen on %s:%s: %s (set --listen)", *settings.listen, exc.strerror)
        return EXIT_CONFIG
    scheme = "https" if exporter.server is not None and exporter.server.tls else "http"
    log.info("serving metrics on %s://%s:%s/metrics", scheme, host, port)
    return await exporter.run(stop)


def _startup_fields(settings: Settings) -> dict[str, Any]:
    """Settings for the start-up log line, secrets left out."""
    return {
        "api_url": settings.credentials.api_url,
        "listen": f"{settings.listen[0]}:{settings.listen[1]}",
        "since": settings.since,  # None: the state file's, else the start-up time
        "state_file": str(settings.state_file) if settings.state_file else None,
        "shard": "/".join(map(str, settings.shard)) if settings.shard else None,
        "max_tracked_tasks": settings.max_tracked_tasks,
        "traces": settings.tracing.endpoint if settings.tracing.enabled else "off",
    }
