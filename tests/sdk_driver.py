"""Runs inside a Python 3.12+ virtualenv with the official `requence` SDK; reports JSON lines.

`watch TOKEN SECONDS`: follow the stream with the SDK's own `TaskWatcher` (since a minute ago,
a naive local `datetime` as its users write it) and print every update it yields, then how it
stopped.
`ingress URL BEARER COUNT`: read COUNT raw events and pass every payload through the SDK's ingress
transformer (`requence.task.ingress.inbound`), fetching claim-checks; print a summary.

Objects the SDK builds from references are printed as what they were built from, so the test on
the other side can compare them with what the simulator sent.
"""

from __future__ import annotations

import json
import queue
import sys
import threading
import time
from collections import Counter
from datetime import datetime, timedelta
from typing import Any

import requests
import sseclient
from requence.files import DEFAULT_HTTP_CLIENT, RequenceFile, RequenceStream
from requence.task import TaskWatcher
from requence.task.ingress import forbid_callbacks, inbound, observe_only_callbacks

TAG = "__REQUENCE_type"


def describe(value: Any) -> Any:
    """JSON for what the SDK made of a payload: references back as the dicts they came from."""
    if isinstance(value, RequenceFile):
        return {"RequenceFile": value.file_object}
    if isinstance(value, RequenceStream):
        return {"RequenceStream": value.stream_object}
    if callable(value):
        return "<callback>"
    if isinstance(value, dict):
        return {key: describe(item) for key, item in value.items()}
    if isinstance(value, list):
        return [describe(item) for item in value]
    return value


def emit(record: dict[str, Any]) -> None:
    print(json.dumps(record), flush=True)


def watch(token: str, seconds: float) -> None:
    failures: list[BaseException | None] = []
    threading.excepthook = lambda args: failures.append(args.exc_value)
    since = datetime.now() - timedelta(minutes=1)
    emit({"since": since.isoformat()})
    watcher = TaskWatcher(since=since, access_token=token)
    items: queue.Queue[tuple[dict[str, Any], bool]] = queue.Queue()

    def pump() -> None:
        for item in watcher.sync().updates:
            items.put(item)

    threading.Thread(target=pump, daemon=True).start()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            update, incomplete = items.get(timeout=0.2)
        except queue.Empty:
            if failures:
                break
            continue
        context = update.pop("context")
        emit(
            {
                "update": update,
                "incomplete": incomplete,
                "context": {key: describe(value) for key, value in context.items()},
            }
        )
    watcher.stop()
    stop = failures[0] if failures else None
    emit(
        {
            "stopped": type(stop).__name__ if stop is not None else None,
            "args": [str(arg) for arg in stop.args] if stop is not None else [],
        }
    )


class CountingHttp:
    """The SDK's own HTTP client, counting what the transformer fetched."""

    def __init__(self) -> None:
        self.urls: list[str] = []

    def request(self, url: str, **options: Any) -> Any:
        self.urls.append(url)
        return DEFAULT_HTTP_CLIENT.request(url, **options)


def kinds(value: Any, seen: Counter[str]) -> None:
    if isinstance(value, dict):
        if TAG in value:
            tag = value[TAG]
            seen[f"{tag}/{value['lifetime']}" if tag == "RequenceCallback" else tag] += 1
        for item in value.values():
            kinds(item, seen)
    elif isinstance(value, list):
        for item in value:
            kinds(item, seen)


def ingress(base_url: str, bearer: str, count: int) -> None:
    response = requests.post(
        f"{base_url}/task/watch-all",
        json={"since": "2000-01-01T00:00:00"},
        headers={"Authorization": f"Bearer {bearer}", "Accept": "text/event-stream"},
        stream=True,
        timeout=30,
    )
    client = sseclient.SSEClient(response)
    http = CountingHttp()
    types: Counter[str] = Counter()
    seen: Counter[str] = Counter()
    errors: list[str] = []
    files: list[list[int]] = []
    streams: list[int] = []
    for event in client.events():
        types[event.event] += 1
        update = json.loads(event.data)
        for field in ("input", "data", "result"):
            if field not in update:
                continue
            kinds(update[field], seen)
            guard = forbid_callbacks if field == "input" else observe_only_callbacks
            try:
                value = inbound(update[field], on_callback_invoke=guard, http=http)
            except Exception as exc:
                errors.append(f"{event.id} {field}: {type(exc).__name__}: {exc}")
                continue
            read_some(value, files, streams)
        if sum(types.values()) >= count:
            break
    client.close()
    fetched = [url for url in http.urls if "/claim-check/" in url]
    emit(
        {
            "types": types,
            "kinds": seen,
            "errors": errors[:20],
            "claim_checks_fetched": len(fetched),
            "files": files,
            "streams": streams,
        }
    )


def read_some(value: Any, files: list[list[int]], streams: list[int]) -> None:
    """Read a few files and streams through the SDK: size as stated, streams end cleanly."""
    if isinstance(value, RequenceFile) and len(files) < 5:
        files.append([len(value.blob()), value.size])
    elif isinstance(value, RequenceStream) and len(streams) < 5:
        streams.append(sum(len(chunk) for chunk in value.iterable()))
    elif isinstance(value, dict):
        for item in value.values():
            read_some(item, files, streams)
    elif isinstance(value, list):
        for item in value:
            read_some(item, files, streams)


if __name__ == "__main__":
    if sys.argv[1] == "watch":
        watch(sys.argv[2], float(sys.argv[3]))
    else:
        ingress(sys.argv[2], sys.argv[3], int(sys.argv[4]))
