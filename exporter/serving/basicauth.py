"""HTTP basic authentication against bcrypt hashes, in front of the exporter's endpoints.

A bcrypt check is deliberately slow, and Prometheus sends the same credentials every scrape, so
the outcome of a check is remembered as a keyed digest of the user name and password: verified
credentials, and (up to `MAX_REMEMBERED_FAILURES`) ones that failed, are answered at once without
waiting for any check. Unknown users still cost one bcrypt check against a dummy hash whose cost
is one of the configured users' costs, picked by a keyed hash of the name: unknown names answer
as fast or as slowly as real ones, so response times do not reveal which user names exist.

Checks run one at a time, each client address with at most one waiting. Suspect addresses
(credentials failed within `SUSPECT_SECONDS`, or refused again and again within seconds) wait
in a lane of their own, served only when no other address waits and at most
`MAX_WAITING_SUSPECT` long; the others at most `MAX_WAITING_CHECKS` long; excess requests get
429 at once. So a flood of wrong passwords, from however many addresses, never keeps a valid
scrape from another address waiting for long, not even right after a restart, when nothing is
verified yet.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import ipaddress
import logging
import secrets
import time
from collections import Counter, OrderedDict, deque
from collections.abc import Mapping
from typing import Final, TypeVar

from exporter.serving.http_exchange import Handler, Request, Responder

__all__ = [
    "MAX_REMEMBERED_FAILURES",
    "MAX_WAITING_CHECKS",
    "MAX_WAITING_SUSPECT",
    "PROBE_PATHS",
    "REALM",
    "BasicAuth",
    "BasicAuthHandler",
    "Busy",
    "parse_basic_credentials",
]

log = logging.getLogger(__name__)
_K = TypeVar("_K")
_V = TypeVar("_V")

REALM: Final = "requence-exporter"
# Kubelet probes cannot easily send credentials, and the probes reveal nothing but "ok":
# they stay open so an authenticated exporter is not restarted or taken out of service.
PROBE_PATHS: Final = frozenset({"/healthz", "/readyz"})
_CHALLENGE: Final = (
    ("WWW-Authenticate", f'Basic realm="{REALM}"'),
    ("Content-Type", "text/plain; charset=utf-8"),
)
_BUSY: Final = (("Retry-After", "1"), ("Content-Type", "text/plain; charset=utf-8"))
# Checks that may wait for the one running, one per client address; more are refused (429).
MAX_WAITING_CHECKS: Final = 8  # eight checks at cost 10 take a second or two
MAX_WAITING_SUSPECT: Final = 4
# Suspect: an address whose credentials failed in the last ten minutes, or that asked again
# and again while refused (a scraper asks once an interval; a flood at once).
SUSPECT_SECONDS: Final = 600.0
_PUSHY_REFUSALS: Final = 3
_PUSHY_SECONDS: Final = 10.0
# Credentials remembered as wrong (keyed digests), and suspect addresses: the most kept, least
# recently seen forgotten first.
MAX_REMEMBERED_FAILURES: Final = 4096


class _Turns:
    """One check at a time; waiters of the first lane go before those of the second."""

    def __init__(self) -> None:
        self._busy = False
        self._lanes: tuple[deque[asyncio.Future[None]], ...] = (deque(), deque())

    def waiting(self, lane: int) -> int:
        """How many wait in `lane`."""
        return len(self._lanes[lane])

    async def take(self, lane: int) -> None:
        """Wait for the turn; `give_back()` when done."""
        if not self._busy:
            self._busy = True
            return
        future = asyncio.get_running_loop().create_future()
        self._lanes[lane].append(future)
        try:
            await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():
                self.give_back()  # the turn came just as the request was given up
            else:
                self._lanes[lane].remove(future)
            raise

    def give_back(self) -> None:
        """End a turn: the next waiter, first lane first, has it."""
        for lane in self._lanes:
            if lane:
                lane.popleft().set_result(None)
                return
        self._busy = False


def _address(client: str) -> str:
    """The address a client is known by: an IPv6 client by its /64, which one host holds."""
    if ":" not in client:
        return client
    try:
        return str(ipaddress.ip_network(f"{client}/64", strict=False))
    except ValueError:
        return client


class Busy(Exception):
    """Too many password checks are waiting: try again shortly."""


def parse_basic_credentials(header: str | None) -> tuple[str, bytes] | None:
    """The (user, password) of an `Authorization: Basic ...` header, or None if there is none."""
    if not header:
        return None
    scheme, _, encoded = header.strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        raw = base64.b64decode(encoded.strip(), validate=True)
        user_bytes, sep, password = raw.partition(b":")
        user = user_bytes.decode("utf-8")
    except ValueError:  # binascii.Error, UnicodeDecodeError, or non-ASCII text for b64decode
        return None
    return (user, password) if sep else None


class BasicAuth:
    """Checks user names and passwords against bcrypt hashes (user name -> hash)."""

    def __init__(self, users: Mapping[str, bytes]) -> None:
        self._users = dict(users)
        # Digests of checked credentials are keyed by a per-process secret, so what sits in
        # memory cannot be brute-forced faster than the bcrypt hashes themselves.
        self._key = secrets.token_bytes(32)
        self._verified: dict[str, bytes] = {}
        self._failed: OrderedDict[bytes, None] = OrderedDict()
        # One bcrypt at a time: a flood of wrong passwords then costs one core, not all.
        self._turns = _Turns()
        self._waiting: Counter[str] = Counter()  # checks waiting, by client address
        self._suspects: OrderedDict[str, float] = OrderedDict()  # address -> its last failure
        self._refusals: OrderedDict[str, tuple[float, int]] = OrderedDict()  # since, how many
        # Every configured cost once per user, so unknown names take the costs in proportion.
        self._costs = sorted(int(h.split(b"$")[2]) for h in self._users.values()) or [10]
        self._dummies: dict[int, bytes] = {}

    def _digest(self, user: str, password: bytes, stored: bytes) -> bytes:
        message = b"\0".join((user.encode("utf-8"), stored, password))
        return hmac.new(self._key, message, hashlib.sha256).digest()

    def dummy_cost(self, user: str) -> int:
        """The bcrypt cost an unknown `user` is checked at: stable per name, unguessable."""
        pick = hmac.new(self._key, b"cost\0" + user.encode("utf-8"), hashlib.sha256).digest()
        return self._costs[int.from_bytes(pick[:8], "big") % len(self._costs)]

    def suspect(self, client: str) -> bool:
        """Whether credentials from `client`'s address failed within `SUSPECT_SECONDS`, or it
        was refused `_PUSHY_REFUSALS` times within `_PUSHY_SECONDS`."""
        address = _address(client)
        now = time.monotonic()
        failed_at = self._suspects.get(address)
        if failed_at is not None and now - failed_at < SUSPECT_SECONDS:
            return True
        since, refusals = self._refusals.get(address, (now, 0))
        return refusals >= _PUSHY_REFUSALS and now - since < _PUSHY_SECONDS

    def _refuse(self, address: str) -> Busy:
        now = time.monotonic()
        since, refusals = self._refusals.get(address, (now, 0))
        if now - since >= _PUSHY_SECONDS:
            since, refusals = now, 0
        _remember(self._refusals, address, (since, refusals + 1))
        return Busy()

    async def check(self, user: str, password: bytes, client: str = "") -> bool:
        """Whether `password` is right for `user`; cheap once the same pair was checked.

        Raise Busy when a check from `client` is already waiting, or its lane is full.
        """
        stored = self._users.get(user)
        digest = self._digest(user, password, stored or b"")
        if stored is not None:
            remembered = self._verified.get(user)
            if remembered is not None and hmac.compare_digest(remembered, digest):
                return True
        if digest in self._failed:
            self._failed.move_to_end(digest)
            return False
        address = _address(client)
        lane = int(self.suspect(client))
        room = (MAX_WAITING_CHECKS, MAX_WAITING_SUSPECT)[lane]
        if self._waiting[address] or self._turns.waiting(lane) >= room:
            raise self._refuse(address)
        self._waiting[address] += 1
        try:
            await self._turns.take(lane)
        finally:
            self._waiting[address] -= 1
            if not self._waiting[address]:
                del self._waiting[address]
        try:
            target = stored if stored is not None else self.dummy_cost(user)
            matches = await asyncio.to_thread(self._bcrypt_check, password, target)
        finally:
            self._turns.give_back()
        if matches and stored is not None:
            self._verified[user] = digest
            self._suspects.pop(address, None)
            return True
        _remember(self._failed, digest, None)
        _remember(self._suspects, address, time.monotonic())
        return False

    def _bcrypt_check(self, password: bytes, stored: bytes | int) -> bool:
        """Check against a stored hash, or (given a cost) against a dummy hash of that cost."""
        import bcrypt

        if isinstance(stored, int):
            dummy = self._dummies.get(stored)
            if dummy is None:
                dummy = bcrypt.hashpw(secrets.token_bytes(16), bcrypt.gensalt(stored))
                self._dummies[stored] = dummy
            stored = dummy
        try:
            return bcrypt.checkpw(password, stored)
        except ValueError:
            return False  # bcrypt refuses passwords over 72 bytes: no hash can match them


def _remember(memory: OrderedDict[_K, _V], key: _K, value: _V) -> None:
    """Keep `key` as the most recent, forgetting the least recent past the bound."""
    memory[key] = value
    memory.move_to_end(key)
    if len(memory) > MAX_REMEMBERED_FAILURES:
        memory.popitem(last=False)


class BasicAuthHandler:
    """Answers 401 unless the request carries valid credentials; `exempt` paths pass freely."""

    def __init__(
        self, inner: Handler, auth: BasicAuth, *, exempt: frozenset[str] = PROBE_PATHS
    ) -> None:
        self._inner = inner
        self._auth = auth
        self._exempt = exempt

    async def __call__(self, request: Request, respond: Responder) -> None:
        """Pass an authenticated (or exempt) request on; challenge any other."""
        if request.path in self._exempt:
            await self._inner(request, respond)
            return
        credentials = parse_basic_credentials(request.headers.get("authorization"))
        client = request.peer.rpartition(":")[0]
        try:
            if credentials is not None and await self._auth.check(*credentials, client):
                await self._inner(request, respond)
                return
        except Busy:
            respond.send(429, _BUSY, b"Too many password checks waiting; retry shortly\n")
            return
        log.debug(
            "refused %s %s from %s: %s",
            request.method,
            request.path,
            request.peer,
            "no basic auth credentials" if credentials is None else "wrong user or password",
        )
        respond.send(401, _CHALLENGE, b"Unauthorized\n")
