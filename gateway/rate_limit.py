"""Rate limits: fixed-window counters kept where every worker sees them, checked in O(1) per request.

Litestar's limiter kept a list of every request's time in the window and decoded it, extended
it and encoded it again on every request (through a file per client under ``serve --workers N``):
a get by key cost 2.6x its CPU with counters in memory and 7.9x with the files. Here a request
adds one to one counter:

- ``MemoryCounters``: one process (``bridgehead serve`` with one worker, tests).
- ``SharedFileCounters``: the workers of one host (``serve --workers N``): a table of counters in
  a memory-mapped file, each change made under an exclusive ``flock`` held for microseconds, so
  workers answering in turn draw on one budget exactly.
- ``RedisCounters``: every process and host (``api.rate_limit.redis_url``): ``SET NX EX`` then
  ``INCR``, one round trip.

A client's window starts with its first request and lasts ``period`` seconds (as Litestar's did);
a client over its limit is told exactly when it ends (``Retry-After``, ``RateLimit-Reset``).
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import hashlib
import math
import mmap
import os
import struct
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import structlog

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = (
    "Counters",
    "Limit",
    "MemoryCounters",
    "RedisCounters",
    "SharedFileCounters",
    "Verdict",
)


log = structlog.get_logger("bridgehead.rate_limit")


class Counters(Protocol):
    """Where the counts of the current windows live."""

    async def hit(self, key: bytes, period_s: int) -> tuple[int, float]:
        """Add one to ``key``'s count and return it with the seconds its window has left.

        A key without a window, or whose window has ended, starts one now of ``period_s`` at 0.
        The time left is the store's own reckoning, so no caller mixes its clock with the store's.
        """
        ...

    async def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class Verdict:
    """One limit's answer for one request."""

    allowed: bool
    limit: int
    remaining: int
    reset_s: int
    """Seconds until the window ends (at least 1)."""
    period_s: int
    label: str

    def headers(self) -> dict[str, str]:
        """The IETF draft's ``RateLimit-*`` fields (and ``Retry-After`` when refused)."""
        found = {
            "RateLimit-Policy": f"{self.limit}; w={self.period_s}",
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(self.remaining),
            "RateLimit-Reset": str(self.reset_s),
        }
        if not self.allowed:
            found["Retry-After"] = str(self.reset_s)
        return found


RETRY_AFTER_FAILURE_S = 5.0
STORE_TIMEOUT_S = 0.25
"""Redis's connect and answer timeout: a rate-limit check never holds a request longer."""


@dataclass(frozen=True, slots=True)
class Limit:
    """``count`` requests per ``period_s`` for each identity ``identify`` finds in a request's scope."""

    count: int
    period_s: int
    unit: str
    label: str
    """What is counted (``per client address``, ``per token identity``): in the 429's detail, and the key."""
    identify: Callable[[Any], str | None]
    """The identity counted for a request's ASGI scope; None: this limit does not apply to it."""
    counters: Counters
    clock: Callable[[], float] = time.time
    _outage: list[float] = field(default_factory=lambda: [0.0, 0.0], repr=False, compare=False)
    """[no counting until, no warning until]: after a store failure, requests go uncounted for
    ``RETRY_AFTER_FAILURE_S`` (a black-holed Redis must not cost every request its timeout)."""

    async def check(self, scope: Any) -> Verdict | None:
        """Count the request against its identity's window; None when the limit does not apply."""
        identity = self.identify(scope)
        if identity is None:
            return None
        outage = self._outage
        if outage[0] and self.clock() < outage[0]:
            return None
        key = f"{self.label}|{self.period_s}|{identity}".encode()
        try:
            used, left_s = await self.counters.hit(key, self.period_s)
        except Exception as exc:  # whatever the store raised, the API keeps answering
            # Fail open: a limit guards against runaway clients; losing its store (Redis down, a file
            # gone) must not turn every request into an error. Logged without the store's address.
            now = self.clock()
            outage[0] = now + RETRY_AFTER_FAILURE_S
            if now >= outage[1]:
                outage[1] = now + 60
                log.warning("rate-limit counters unreachable: requests are not counted", limit=self.label,
                            error=type(exc).__name__, retry_in_s=RETRY_AFTER_FAILURE_S)  # fmt: skip
            return None
        outage[0] = 0.0
        reset_s = max(1, math.ceil(left_s))
        return Verdict(used <= self.count, self.count, max(0, self.count - used), reset_s, self.period_s, self.label)


class MemoryCounters:
    """This process's counters: a dict, windows past their end dropped as it grows, at most ``capacity``.

    Past ``capacity`` live windows (a flood from very many addresses), the half that end soonest are
    dropped: those clients' counts start again, as a full shared table's do, and memory stays bounded.
    """

    def __init__(
        self, clock: Callable[[], float] = time.time, *, prune_at: int = 10_000, capacity: int = 1_000_000
    ) -> None:
        self._counts: dict[bytes, list[Any]] = {}
        self._clock = clock
        self._prune_at = min(prune_at, capacity)
        self._capacity = capacity

    async def hit(self, key: bytes, period_s: int) -> tuple[int, float]:
        now = self._clock()
        found = self._counts.get(key)
        if found is None or found[1] <= now:
            if found is None and len(self._counts) >= self._prune_at:
                self._prune()
            self._counts[key] = found = [0, now + period_s]
        found[0] += 1
        return int(found[0]), found[1] - now

    def _prune(self) -> None:
        now = self._clock()
        live = {k: v for k, v in self._counts.items() if v[1] > now}
        if len(live) >= self._capacity:
            keep = sorted(live.items(), key=lambda item: item[1][1])[len(live) - self._capacity // 2 :]
            live = dict(keep)
        self._counts = live
        # All live: grow rather than prune on every hit, never past the capacity.
        self._prune_at = min(self._capacity, max(self._prune_at, 2 * len(live)))

    async def close(self) -> None:
        self._counts.clear()


_SLOT = struct.Struct("<QdQ")  # key hash (0: empty), window end (epoch s), count
SLOTS = 1 << 16
"""Counters in the shared table: distinct (identity, window) pairs live at once (1.5 MB of file)."""
PROBES = 32


class SharedFileCounters:
    """Counters in one memory-mapped file that the workers of a host share.

    An open-addressed table of ``SLOTS`` slots; a key's slot is found by linear probing from its
    hash. Every read-modify-write holds ``flock(LOCK_EX)`` on the file, so two workers never both
    read the same count (the kernel wakes a waiter as soon as the lock is free: no polling). A slot
    whose window has ended is reused. When all ``PROBES`` slots of a key are live (65,536 pairs
    counted at once), the one whose window ends first is taken over: that client's count starts
    again, a few requests more, never a refusal it did not earn.
    """

    def __init__(self, folder: Path, clock: Callable[[], float] = time.time, *, slots: int = SLOTS) -> None:
        self.path = folder / "rate-limit-counters.bin"
        self._clock = clock
        self._slots = slots
        size = slots * _SLOT.size
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            with self._locked():
                if os.fstat(self._fd).st_size < size:  # the first worker sizes it; zeros are empty slots
                    os.ftruncate(self._fd, size)
            self._map = mmap.mmap(self._fd, size)
        except BaseException:
            os.close(self._fd)
            raise

    def _locked(self) -> _Flock:
        return _Flock(self._fd)

    async def hit(self, key: bytes, period_s: int) -> tuple[int, float]:
        return self.hit_now(key, period_s)

    def hit_now(self, key: bytes, period_s: int) -> tuple[int, float]:
        """``hit`` without the coroutine: the lock is held for microseconds, never across an await."""
        digest = int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "little") or 1
        start = digest % self._slots
        table = self._map
        with self._locked():
            now = self._clock()  # read under the lock: a window ends at one instant for every worker
            spare = oldest = -1
            oldest_end = 0.0
            for probe in range(PROBES):
                slot = (start + probe) % self._slots
                offset = slot * _SLOT.size
                held, ends, count = _SLOT.unpack_from(table, offset)
                if held == digest and ends > now:
                    _SLOT.pack_into(table, offset, digest, ends, count + 1)
                    return int(count + 1), float(ends - now)
                if held == digest or (spare < 0 and (held == 0 or ends <= now)):
                    spare = slot  # its own ended window first, else the first free slot
                    if held == digest:
                        break
                if oldest < 0 or ends < oldest_end:
                    oldest, oldest_end = slot, ends
            chosen = spare if spare >= 0 else oldest
            _SLOT.pack_into(table, chosen * _SLOT.size, digest, now + period_s, 1)
            return 1, float(period_s)

    async def close(self) -> None:
        self._map.close()
        os.close(self._fd)


def _flock_holding_the_gil() -> Callable[[int, int], int] | None:
    """libc's ``flock`` called with the GIL held (``ctypes.PyDLL``), or None where there is none.

    ``fcntl.flock`` releases the GIL around the call, and getting it back from the executor's
    threads took 50 µs a call on the event loop (measured: 2 calls a request, 0.14 ms of a get's
    0.5 ms). The lock is only ever held for the few microseconds of one counter's update, so
    waiting for it with the GIL held stalls this process no longer than that.
    """
    try:
        libc = ctypes.PyDLL(None, use_errno=True)
        call = libc.flock
    except (OSError, AttributeError):
        return None
    call.argtypes, call.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    return call


_LIBC_FLOCK = _flock_holding_the_gil()


class _Flock:
    __slots__ = ("fd",)

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def __enter__(self) -> None:
        _flock(self.fd, fcntl.LOCK_EX)

    def __exit__(self, *_: object) -> None:
        _flock(self.fd, fcntl.LOCK_UN)


def _flock(fd: int, operation: int) -> None:
    if _LIBC_FLOCK is None:
        fcntl.flock(fd, operation)
        return
    while _LIBC_FLOCK(fd, operation) != 0:
        code = ctypes.get_errno()
        if code != errno.EINTR:  # a signal during the wait: wait again, as fcntl.flock does
            raise OSError(code, os.strerror(code))


class RedisCounters:
    """Counters in Redis (every process and host): one pipelined round trip per request."""

    def __init__(self, url: str, *, namespace: str = "bridgehead-rate-limit") -> None:
        from redis.asyncio import Redis

        self._redis = Redis.from_url(url, socket_connect_timeout=STORE_TIMEOUT_S, socket_timeout=STORE_TIMEOUT_S)
        self._namespace = namespace.encode() + b":"

    async def hit(self, key: bytes, period_s: int) -> tuple[int, float]:
        name = self._namespace + hashlib.blake2b(key, digest_size=16).hexdigest().encode()
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.set(name, 0, px=period_s * 1000, nx=True)  # the window starts with the first request
            pipe.incr(name)
            pipe.pttl(name)
            _, count, left_ms = await pipe.execute()
        if left_ms < 0:  # the key ended between SET and INCR, so INCR made one without an expiry: give it one
            await self._redis.pexpire(name, period_s * 1000)
            left_ms = period_s * 1000
        return int(count), int(left_ms) / 1000

    async def close(self) -> None:
        await self._redis.aclose()
