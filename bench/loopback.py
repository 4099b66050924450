"""Loopback servers for the benchmark, run in their own process (`python -m bench.loopback DIR`).

- feed: answers any request whose path starts with `/coalesced` or `/per-event` with a 200
  event stream carrying the pre-rendered body from DIR, then idles until the client leaves;
- otlp: answers 200 to `POST /v1/traces` and discards the body, counting requests and bytes
  (`GET /stats` returns the counts as JSON).
It prints `feed_port otlp_port` on one line once both listen, and serves until stdin closes.
"""

from __future__ import annotations

import contextlib
import json
import socket
import sys
import threading
from pathlib import Path

_STREAM_HEAD = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream; charset=utf-8\r\n"
    b"Cache-Control: no-cache\r\nTransfer-Encoding: chunked\r\n\r\n"
)
_MAX_HEAD = 64 * 1024


def _read_request(conn: socket.socket, buffer: bytes) -> tuple[bytes, bytes, bytes] | None:
    """Read one request: (request line, body, bytes left over); None when the client left."""
    while b"\r\n\r\n" not in buffer:
        data = conn.recv(65536)
        if not data or len(buffer) > _MAX_HEAD:
            return None
        buffer += data
    head, _, rest = buffer.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(rest) < length:
        data = conn.recv(max(65536, length - len(rest)))
        if not data:
            return None
        rest += data
    return lines[0], rest[:length], rest[length:]


class Servers:
    """The feed and OTLP sink listeners, each connection served by its own thread."""

    def __init__(self, bodies: dict[bytes, bytes]) -> None:
        self.bodies = bodies
        self.otlp_requests = 0
        self.otlp_bytes = 0
        self._lock = threading.Lock()
        self.feed = self._listen(self._serve_feed)
        self.otlp = self._listen(self._serve_otlp)

    def _listen(self, serve: object) -> socket.socket:
        sock = socket.create_server(("127.0.0.1", 0), backlog=64)
        threading.Thread(target=self._accept, args=(sock, serve), daemon=True).start()
        return sock

    def _accept(self, sock: socket.socket, serve: object) -> None:
        while True:
            conn, _ = sock.accept()
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            threading.Thread(target=serve, args=(conn,), daemon=True).start()  # type: ignore[arg-type]

    def _serve_feed(self, conn: socket.socket) -> None:
        with conn, contextlib.suppress(OSError):
            request = _read_request(conn, b"")
            if request is None:
                return
            target = request[0].split(b" ")[1]
            body = next((b for p, b in self.bodies.items() if target.startswith(p)), None)
            if body is None:
                conn.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
                return
            conn.sendall(_STREAM_HEAD)
            conn.sendall(body)
            while conn.recv(65536):
                pass  # idle: the stream stays open, as a quiet watch-all does

    def _serve_otlp(self, conn: socket.socket) -> None:
        buffer = b""
        with conn, contextlib.suppress(OSError):
            while (request := _read_request(conn, buffer)) is not None:
                line, body, buffer = request
                if line.startswith(b"GET /stats"):
                    with self._lock:
                        stats = {"requests": self.otlp_requests, "bytes": self.otlp_bytes}
                    payload = json.dumps(stats).encode()
                    ctype = b"application/json"
                else:
                    with self._lock:
                        self.otlp_requests += 1
                        self.otlp_bytes += len(body)
                    payload, ctype = b"", b"application/x-protobuf"
                conn.sendall(
                    b"HTTP/1.1 200 OK\r\nContent-Type: %b\r\nContent-Length: %d\r\n\r\n%b"
                    % (ctype, len(payload), payload)
                )


def main() -> None:
    """Serve the bodies found in the directory given as the only argument."""
    folder = Path(sys.argv[1])
    bodies = {
        b"/coalesced": (folder / "coalesced.bin").read_bytes(),
        b"/per-event": (folder / "per_event.bin").read_bytes(),
    }
    servers = Servers(bodies)
    print(servers.feed.getsockname()[1], servers.otlp.getsockname()[1], flush=True)
    sys.stdin.read()  # the parent closes stdin to stop us


if __name__ == "__main__":
    main()
