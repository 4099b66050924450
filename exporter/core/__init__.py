"""The core every stage shares; it imports no other subpackage.

`updates` (the update model), `tasks` and `tracker` (the only task state and what its
observers receive), `checkpoint` (the state file), `status` (the stream's status),
`errors`, `logs`, `headers` (values bound for HTTP headers, secrets among them), `ids` (trace
and span ids), `malloc` (the allocator setting) and `options` (every command's flags in one
style: variables, metavars, defaults in the help).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

__all__ = [
    "FOREIGN_LIMIT",
    "MAX_POSITION",
    "NODE_DEFER",
    "NODE_END",
    "NODE_ERROR",
    "NODE_START",
    "NODE_TYPES",
    "NODE_UPDATE",
    "RECONNECT_REASONS",
    "SKIP_REASONS",
    "SNAPSHOT_VERSION",
    "STATE_VERSION",
    "TASK_ABORTED",
    "TASK_END",
    "TASK_ERROR",
    "TASK_START",
    "TASK_TERMINAL_TYPES",
    "UNNAMED",
    "UPDATE_TYPES",
    "BadSnapshot",
    "ConfigError",
    "ExporterError",
    "FinishedTask",
    "HelpFormatter",
    "JsonFormatter",
    "LoadedState",
    "Node",
    "NodeAttempt",
    "NotFound",
    "Observer",
    "RateLimitedWarning",
    "RestoredTracker",
    "SavedState",
    "ScrapeMark",
    "StateFile",
    "StreamError",
    "StreamStatus",
    "TaskState",
    "TextFormatter",
    "TokenError",
    "Tracker",
    "TrackerStats",
    "Unauthorized",
    "Unreachable",
    "Update",
    "bind_environment",
    "encode_state",
    "env_name",
    "header_value_problem",
    "last_seen_of",
    "lazy_exports",
    "logfmt",
    "logfmt_value",
    "node_span_id",
    "node_span_id_bytes",
    "parse_snapshot",
    "pin_mmap_threshold",
    "read_state",
    "setup_logging",
    "task_span_id",
    "task_span_id_bytes",
    "trace_id",
    "trace_id_hex",
    "transport_failure",
    "truthy",
]

if TYPE_CHECKING:
    from exporter.core.checkpoint import STATE_VERSION, LoadedState, SavedState, StateFile
    from exporter.core.errors import (
        ConfigError,
        ExporterError,
        NotFound,
        StreamError,
        TokenError,
        Unauthorized,
        Unreachable,
    )
    from exporter.core.headers import header_value_problem, transport_failure
    from exporter.core.ids import (
        node_span_id,
        node_span_id_bytes,
        task_span_id,
        task_span_id_bytes,
        trace_id,
        trace_id_hex,
    )
    from exporter.core.lazy import lazy_exports
    from exporter.core.logs import (
        JsonFormatter,
        RateLimitedWarning,
        TextFormatter,
        logfmt,
        logfmt_value,
        setup_logging,
    )
    from exporter.core.malloc import pin_mmap_threshold
    from exporter.core.options import HelpFormatter, bind_environment, env_name, truthy
    from exporter.core.scrapemark import ScrapeMark
    from exporter.core.snapshot import (
        SNAPSHOT_VERSION,
        BadSnapshot,
        RestoredTracker,
        last_seen_of,
        parse_snapshot,
    )
    from exporter.core.statelayout import FOREIGN_LIMIT, encode_state, read_state
    from exporter.core.status import RECONNECT_REASONS, StreamStatus
    from exporter.core.tasks import (
        UNNAMED,
        FinishedTask,
        NodeAttempt,
        Observer,
        TaskState,
        TrackerStats,
    )
    from exporter.core.tracker import Tracker
    from exporter.core.updates import (
        MAX_POSITION,
        NODE_DEFER,
        NODE_END,
        NODE_ERROR,
        NODE_START,
        NODE_TYPES,
        NODE_UPDATE,
        SKIP_REASONS,
        TASK_ABORTED,
        TASK_END,
        TASK_ERROR,
        TASK_START,
        TASK_TERMINAL_TYPES,
        UPDATE_TYPES,
        Node,
        Update,
    )
else:
    # Each name is imported from its module on first use, so importing the package
    # loads only the modules used (the span process, for one, never loads the metrics).
    from exporter.core.lazy import lazy_exports

    _MODULES = {
        "lazy_exports": "exporter.core.lazy",
        "BadSnapshot": "exporter.core.snapshot",
        "ConfigError": "exporter.core.errors",
        "header_value_problem": "exporter.core.headers",
        "transport_failure": "exporter.core.headers",
        "ExporterError": "exporter.core.errors",
        "FOREIGN_LIMIT": "exporter.core.statelayout",
        "FinishedTask": "exporter.core.tasks",
        "HelpFormatter": "exporter.core.options",
        "JsonFormatter": "exporter.core.logs",
        "LoadedState": "exporter.core.checkpoint",
        "MAX_POSITION": "exporter.core.updates",
        "NODE_DEFER": "exporter.core.updates",
        "NODE_END": "exporter.core.updates",
        "NODE_ERROR": "exporter.core.updates",
        "NODE_START": "exporter.core.updates",
        "NODE_TYPES": "exporter.core.updates",
        "NODE_UPDATE": "exporter.core.updates",
        "Node": "exporter.core.updates",
        "NodeAttempt": "exporter.core.tasks",
        "NotFound": "exporter.core.errors",
        "Observer": "exporter.core.tasks",
        "RECONNECT_REASONS": "exporter.core.status",
        "RateLimitedWarning": "exporter.core.logs",
        "RestoredTracker": "exporter.core.snapshot",
        "SKIP_REASONS": "exporter.core.updates",
        "SNAPSHOT_VERSION": "exporter.core.snapshot",
        "STATE_VERSION": "exporter.core.checkpoint",
        "SavedState": "exporter.core.checkpoint",
        "ScrapeMark": "exporter.core.scrapemark",
        "StateFile": "exporter.core.checkpoint",
        "StreamError": "exporter.core.errors",
        "StreamStatus": "exporter.core.status",
        "TASK_ABORTED": "exporter.core.updates",
        "TASK_END": "exporter.core.updates",
        "TASK_ERROR": "exporter.core.updates",
        "TASK_START": "exporter.core.updates",
        "TASK_TERMINAL_TYPES": "exporter.core.updates",
        "TaskState": "exporter.core.tasks",
        "TextFormatter": "exporter.core.logs",
        "TokenError": "exporter.core.errors",
        "Tracker": "exporter.core.tracker",
        "TrackerStats": "exporter.core.tasks",
        "UNNAMED": "exporter.core.tasks",
        "UPDATE_TYPES": "exporter.core.updates",
        "Unauthorized": "exporter.core.errors",
        "Unreachable": "exporter.core.errors",
        "Update": "exporter.core.updates",
        "bind_environment": "exporter.core.options",
        "encode_state": "exporter.core.statelayout",
        "env_name": "exporter.core.options",
        "last_seen_of": "exporter.core.snapshot",
        "logfmt": "exporter.core.logs",
        "logfmt_value": "exporter.core.logs",
        "node_span_id": "exporter.core.ids",
        "node_span_id_bytes": "exporter.core.ids",
        "parse_snapshot": "exporter.core.snapshot",
        "pin_mmap_threshold": "exporter.core.malloc",
        "read_state": "exporter.core.statelayout",
        "setup_logging": "exporter.core.logs",
        "task_span_id": "exporter.core.ids",
        "task_span_id_bytes": "exporter.core.ids",
        "trace_id": "exporter.core.ids",
        "trace_id_hex": "exporter.core.ids",
        "truthy": "exporter.core.options",
    }

    __getattr__ = lazy_exports(globals(), _MODULES)
