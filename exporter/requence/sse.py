"""An incremental Server-Sent Events decoder over bytes; it knows nothing of the network.

It follows the WHATWG event-stream rules (any of CRLF, LF, CR ends a line; a blank line ends an
event; `:` starts a comment; one space after the colon is dropped; data lines join with LF) and
bounds memory: an event larger than `max_event_bytes` is skipped as it streams by, and reported
as oversized with whatever `event` and `id` came before its data. An event's size is that of its
block (its lines, line ends as LF) without the blank line that ends it or blank lines before it,
so how the bytes were split into reads never changes which events are oversized: a read that
ends inside the blank line holds one LF more than the event, and that LF is not counted.

Decoding stays linear in the bytes fed: a long event is collected as a list of chunks and joined
once when it ends (concatenating each read to what came before copied it again and again), and a
large read is parsed block by block and a large block window by window, so no list of lines ever
grows with the event: memory stays within a small multiple of `max_event_bytes`.

Nor does it hold the event loop: a read that completes more than `_BIG` bytes of blocks is parsed
about `STEP` bytes at a time. `feed` returns the events of the first step and leaves the rest as
a backlog (`backlog`); the reader calls `resume` for each further step, yielding to the loop in
between (a 16 MiB event of short lines took the loop for seconds when parsed in one go).
"""

from __future__ import annotations

import re
from typing import Final, NamedTuple

__all__ = ["STEP", "RawEvent", "SSEDecoder"]

_HEAD_SCAN: Final = 4096  # bytes of an oversized event searched for its `event` and `id`
# A partial event longer than this is collected as a list of chunks rather than one bytes value.
_JOIN_LIMIT: Final = 65536
# Reads and blocks longer than this are not split into lines all at once.
_BIG: Final = 1 << 20
_WINDOW: Final = 65536  # bytes of a large block split into lines at a time
STEP: Final = 128 * 1024  # bytes of a large read's blocks parsed between two yields
# A field's line in a large block (CR and CRLF are LF by then): its name, alone or followed by
# a colon, and the value after one optional space.
_DATA: Final = re.compile(rb"^data(?::(?: )?(.*))?$", re.MULTILINE)
_EVENT: Final = re.compile(rb"^event(?::(?: )?(.*))?$", re.MULTILINE)
_ID: Final = re.compile(rb"^id(?::(?: )?(.*))?$", re.MULTILINE)


class RawEvent(NamedTuple):
    """One dispatched event: its type, id (the position, as text) and raw data bytes."""

    event: str
    id: str | None
    data: bytes
    oversized: bool = False


# NamedTuple's generated __new__ is a Python function; tuple.__new__ builds the same value
# without that frame: 2 % of the pure build's instructions per event (callgrind, 10,000 events).
_new: Final = tuple.__new__


def _parse_block(block: bytes) -> RawEvent | None:
    if len(block) > _BIG:
        return _parse_large(block)
    event = ""
    event_id: str | None = None
    data: list[bytes] = []
    for line in block.split(b"\n"):
        if not line or line[0] == 58:  # empty, or a ':' comment
            continue
        name, sep, value = line.partition(b":")
        if sep and value[:1] == b" ":
            value = value[1:]
        if name == b"data":
            data.append(value)
        elif name == b"event":
            event = value.decode("utf-8", "replace")
        elif name == b"id" and b"\0" not in value:
            event_id = value.decode("utf-8", "replace")
        # `retry` and unknown fields are ignored, as the spec says.
    if not data:
        return None  # a block without data dispatches nothing (keep-alives, stray ids)
    return RawEvent(event, event_id, data[0] if len(data) == 1 else b"\n".join(data))


def _parse_large(block: bytes) -> RawEvent | None:
    """`_parse_block` for a large block, in one go."""
    large = _LargeBlock(block, 0, len(block))
    large.step(len(block))
    return large.result()


class _LargeBlock:
    """A large block of `buffer[start:stop]` parsed a window at a time, its data lines joined
    into one buffer, so a block of millions of short lines costs no list of millions, and
    `step` can stop between windows."""

    __slots__ = ("buffer", "data", "event", "event_id", "has_data", "start", "stop")

    def __init__(self, buffer: bytes, start: int, stop: int) -> None:
        self.buffer = buffer
        self.start = start
        self.stop = stop
        self.event = ""
        self.event_id: str | None = None
        self.data = bytearray()
        self.has_data = False

    def step(self, budget: int) -> int:
        """Parse about `budget` more bytes (whole windows); return how many were parsed."""
        block = self.buffer
        size = self.stop
        start = begin = self.start
        data = self.data
        while start < size and start - begin < budget:
            cut = block.rfind(b"\n", start, min(start + _WINDOW, size))
            if cut < 0:  # one line longer than the window
                cut = block.find(b"\n", start, size)
                if cut < 0:
                    cut = size
            # Each field's lines found by a regular expression (one C loop per window, not a
            # Python turn per line): data values joined, the last event and id kept.
            window = block[start:cut]
            values = _DATA.findall(window)
            if values:
                if self.has_data:
                    data += b"\n"
                data += b"\n".join(values)
                self.has_data = True
            if window.find(b"event") >= 0:
                events = _EVENT.findall(window)
                if events:
                    self.event = events[-1].decode("utf-8", "replace")
            if window.find(b"id") >= 0:
                ids = [v for v in _ID.findall(window) if v.find(b"\0") < 0]
                if ids:
                    self.event_id = ids[-1].decode("utf-8", "replace")
            start = cut + 1
        self.start = start
        return start - begin

    @property
    def done(self) -> bool:
        """Whether the whole block is parsed."""
        return self.start >= self.stop

    def result(self) -> RawEvent | None:
        """The block's event (None without data)."""
        if not self.has_data:
            return None
        return RawEvent(self.event, self.event_id, bytes(self.data))


def _add_block(events: list[RawEvent], block: bytes, limit: int) -> None:
    """Append the event of one block that is not in the usual shape, if it makes one."""
    if len(block) > limit:
        events.append(_oversized(block))
    else:
        event = _parse_block(block)
        if event is not None:
            events.append(event)


def _oversized(head: bytes) -> RawEvent:
    found = _parse_block(head[:_HEAD_SCAN].rpartition(b"\n")[0] + b"\ndata:")
    if found is None:
        return RawEvent("", None, b"", oversized=True)
    return RawEvent(found.event, found.id, b"", oversized=True)


class SSEDecoder:
    """Feed it chunks as they arrive; it returns the events they complete."""

    def __init__(self, max_event_bytes: int = 16 * 1024 * 1024) -> None:
        self.max_event_bytes = max_event_bytes
        self._pending = b""
        self._skipping = False  # inside an oversized event, discarding until its end
        self._carry_cr = False  # the last chunk ended in CR: an LF may follow in the next
        # A long partial event, as the chunks it arrived in (`_pending` then holds nothing).
        self._more: list[bytes] = []
        self._more_size = 0
        # Counts reads that ended a block (an event, a comment, or a skipped event): a stream
        # whose count stands still is not making progress, however many bytes it sends.
        self.progress = 0
        # Complete blocks of a large read not yet parsed: `_backlog[_backlog_at:_backlog_end]`,
        # and the large block being parsed, if any.
        self._backlog = b""
        self._backlog_at = 0
        self._backlog_end = 0
        self._large: _LargeBlock | None = None

    @property
    def backlog(self) -> bool:
        """Whether blocks already received wait to be parsed (call `resume`)."""
        return self._backlog_end != 0

    def resume(self, budget: int = STEP) -> list[RawEvent]:
        """Parse about `budget` bytes more of the backlog; return the events they complete."""
        events: list[RawEvent] = []
        buffer = self._backlog
        end = self._backlog_end
        limit = self.max_event_bytes
        spent = 0
        while spent < budget:
            large = self._large
            if large is not None:
                spent += large.step(budget - spent)
                if not large.done:
                    break
                self._large = None
                found = large.result()
                if found is not None:
                    events.append(found)
                continue
            start = self._backlog_at
            if start >= end:
                break
            stop = buffer.find(b"\n\n", start, end)
            if stop < 0:
                stop = end
            self._backlog_at = stop + 2
            size = stop - start
            spent += size + 2
            if size > limit and buffer[start] == 10:
                # The odd LF of a run of blank lines leads the block but is no part of it.
                start += 1
                size -= 1
            if size > limit:
                events.append(_oversized(buffer[start : start + _HEAD_SCAN]))
            elif size > _BIG:
                self._large = _LargeBlock(buffer, start, stop)
            elif size:
                _add_block(events, buffer[start:stop], limit)
        if self._backlog_at >= end and self._large is None:
            self._backlog = b""  # nothing waits: let the read go
            self._backlog_at = self._backlog_end = 0
        return events

    def feed(self, chunk: bytes, budget: int | None = None) -> list[RawEvent]:
        """Decode a chunk; return the events it completes, in order. With a `budget`, a large
        read is parsed only about that many bytes far: the rest waits in the backlog
        (`backlog`, `resume`)."""
        # `_backlog_end` is 0 unless something waits: one comparison on the common path.
        waiting: list[RawEvent] = []
        while self._backlog_end:  # the reader did not resume: first what waits, in order
            waiting += self.resume(self._backlog_end)
        events = self._feed(chunk)
        while budget is None and self._backlog_end:
            events += self.resume(self._backlog_end)
        return waiting + events if waiting else events

    def _feed(self, chunk: bytes) -> list[RawEvent]:
        if self._carry_cr:
            self._carry_cr = False
            if chunk[:1] == b"\n":
                chunk = chunk[1:]
        # find, not `in`: bytes.__contains__ first tries the needle as an integer, and raises
        # and clears an error before it searches.
        if chunk.find(b"\r") >= 0:
            if chunk[-1:] == b"\r":
                self._carry_cr = True
            chunk = chunk.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        if self._skipping:
            return self._skip(chunk)
        if self._more or len(self._pending) > _JOIN_LIMIT:
            return self._collect(chunk)
        if self._pending:
            return self._dispatch(self._pending + chunk)
        if chunk[:1] == b"\n":
            # Blank lines between events dispatch nothing: drop a run of them at C speed
            # rather than one loop turn each (a compressed stream of newlines is cheap to send).
            chunk = chunk.lstrip(b"\n")
        return self._dispatch(chunk)

    def _dispatch(self, buffer: bytes) -> list[RawEvent]:
        """The events `buffer` completes; what follows the last of them is kept as pending."""
        end = buffer.rfind(b"\n\n")
        if end < 0:
            self._pending = buffer
            return self._check_size()
        if buffer.find(b":", 0, end) >= 0:  # a field or a comment, not only blank lines
            self.progress += 1
        self._pending = buffer[end + 2 :]
        limit = self.max_event_bytes
        if end > _BIG:
            self._backlog = buffer
            self._backlog_at = 0
            self._backlog_end = end
            return [*self.resume(), *self._check_size()]
        events: list[RawEvent] = []
        # Split into lines once and take the shape servers write (`event: T`, `id: N`,
        # `data: {...}`, then a blank line) four lines at a time, without a call per event;
        # any other block is joined back and parsed field by field. Three blank lines at the
        # end let the lookahead run past the last block without bound checks.
        lines = buffer[:end].split(b"\n")
        lines += (b"", b"", b"")
        count = len(lines) - 2
        # Checked once per read rather than per event: no block can be oversized, no id holds NUL.
        small = end <= limit
        clean = buffer.find(b"\0", 0, end) < 0
        i = 0
        while i < count:
            head = lines[i]
            if head[:7] == b"event: ":
                id_line = lines[i + 1]
                data_line = lines[i + 2]
                if (
                    id_line[:4] == b"id: "
                    and data_line[:6] == b"data: "
                    and not lines[i + 3]
                    and (clean or id_line.find(b"\0") < 0)
                    and (small or len(head) + len(id_line) + len(data_line) + 2 <= limit)
                ):
                    events.append(
                        _new(
                            RawEvent,
                            (
                                head[7:].decode("utf-8", "replace"),
                                id_line[4:].decode("utf-8", "replace"),
                                data_line[6:],
                                False,
                            ),
                        )
                    )
                    i += 4
                    continue
            j = i
            while lines[j]:
                j += 1
            if j > i:
                _add_block(events, b"\n".join(lines[i:j]), limit)
            i = j + 1
        events.extend(self._check_size())
        return events

    def _check_size(self) -> list[RawEvent]:
        pending = self._pending
        limit = self.max_event_bytes
        # A last LF may be the first of the blank line that ends the event: not yet counted.
        if len(pending) <= limit or (len(pending) == limit + 1 and pending[-1] == 10):
            return []
        marker = _oversized(self._pending)
        # Keep the last byte: it may be the first LF of the blank line that ends the event.
        self._pending = self._pending[-1:]
        self._skipping = True
        return [marker]

    def _collect(self, chunk: bytes) -> list[RawEvent]:
        """Add a chunk to a long partial event; join it only once the event ends."""
        if not chunk:  # an LF dropped after a CR: `more[-1]` must stay the bytes before it
            return []
        more = self._more
        if not more:
            more.append(self._pending)
            self._more_size = len(self._pending)
            self._pending = b""
        ends = chunk.find(b"\n\n") >= 0 or (chunk[:1] == b"\n" and more[-1][-1:] == b"\n")
        more.append(chunk)
        self._more_size += len(chunk)
        if ends:
            buffer = b"".join(more)
            self._more = []
            self._more_size = 0
            return self._dispatch(buffer)
        size = self._more_size
        limit = self.max_event_bytes
        if size <= limit or (size == limit + 1 and chunk[-1:] == b"\n"):  # as in `_check_size`
            return []
        marker = _oversized(more[0][:_HEAD_SCAN])
        # Keep the last byte: it may be the first LF of the blank line that ends the event.
        self._pending = chunk[-1:]
        self._more = []
        self._more_size = 0
        self._skipping = True
        return [marker]

    def _skip(self, chunk: bytes) -> list[RawEvent]:
        buffer = self._pending + chunk
        end = buffer.find(b"\n\n")
        if end < 0:
            self._pending = buffer[-1:]
            return []
        self.progress += 1
        self._skipping = False
        self._pending = b""
        if end + 2 >= len(buffer):
            return []
        # The rest is decoded as a read of its own, but its CRs are LFs already: a CR that
        # ended this read must still drop an LF that starts the next.
        carry = self._carry_cr
        self._carry_cr = False
        events = self._feed(buffer[end + 2 :])
        self._carry_cr = carry
        return events
