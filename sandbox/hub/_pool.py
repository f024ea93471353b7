"""A warm pool: items started ahead of time, each handed out once, refilled in the background.

The hub keeps one pool of MCP connections per stateful server, so that an episode gets a connection
whose server process is already running and whose session is already initialised. An item taken
from the pool is never returned to it (its state belongs to the episode that used it); the pool
starts a replacement at once.

``take`` prefers, in order: a ready item; a start already under way that nobody has claimed (it
began earlier, so it finishes sooner than a new one); a new start of its own. A pool of size 0 keeps
nothing ready: every ``take`` starts a new item (a cold start).

A background start that fails is not retried on its own: the pool stays short until the next
``take`` (or ``warm``) asks for more, so a server that cannot start does not spin in a loop.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Awaitable, Callable
from typing import Generic, Protocol, TypeVar

import anyio
from anyio.abc import TaskGroup


class Poolable(Protocol):
    """What the pool needs of an item: whether it still works, and a way to close it."""

    @property
    def alive(self) -> bool: ...

    def close(self) -> None: ...


T = TypeVar("T", bound=Poolable)


class PoolClosedError(Exception):
    """``take`` on a pool that was closed (its hub is shutting down)."""


class _Start(Generic[T]):
    """One start under way, claimed by a taker or bound for the pool."""

    def __init__(self) -> None:
        self.item: T | None = None
        self.error: Exception | None = None
        self.done = anyio.Event()
        self.abandoned = False  # its taker was cancelled: the item is closed on arrival


class WarmPool(Generic[T]):
    """Keeps ``size`` items of one kind started, hands each out once, and refills."""

    def __init__(self, name: str, size: int, open_item: Callable[[], Awaitable[T]]) -> None:
        if size < 0:
            raise ValueError(f"pool size must be 0 or more, not {size}")
        self.name = name
        self.size = size
        self._open = open_item
        self._ready: deque[T] = deque()
        self._pending: deque[_Start[T]] = deque()  # unclaimed starts: they join the pool when done
        self._group: TaskGroup | None = None
        self._closed = False
        self._failures = 0
        self._last_error: Exception | None = None
        self._changed = anyio.Event()

    @property
    def ready(self) -> int:
        """Items started, still alive, and waiting to be taken."""
        return sum(1 for item in self._ready if item.alive)

    def start(self, group: TaskGroup) -> None:
        """Begin filling, with the starts running as tasks of ``group`` (once; later calls do nothing)."""
        if self._group is not None:
            return
        self._group = group
        self._fill()

    def give(self, item: T) -> None:
        """Add an item started elsewhere (a fresh, unused one) to the ready ones; it is closed
        instead when the pool is closed or already holds or awaits ``size`` items."""
        if self._closed or not item.alive or len(self._ready) + len(self._pending) >= self.size:
            item.close()
            return
        self._ready.append(item)
        self._notify()

    async def take(self) -> T:
        """An item for one user: a warm one when the pool has it, else the soonest to come."""
        if self._closed:
            raise PoolClosedError(f"the pool of {self.name!r} is closed")
        self._drop_dead()
        if self._ready:
            item = self._ready.popleft()
            self._fill()
            return item
        if self._pending:
            start = self._pending.popleft()
            self._fill()
            return await self._claim(start)
        self._fill()
        return await self._open()

    async def warm(self) -> None:
        """Wait until the pool holds ``size`` live items; raise the error of a start that fails."""
        failures = self._failures
        while True:
            self._drop_dead()
            if len(self._ready) >= self.size:
                return
            if self._failures > failures and self._last_error is not None:
                raise self._last_error
            if self._closed:
                raise PoolClosedError(f"the pool of {self.name!r} is closed")
            self._fill()
            await self._changed.wait()

    def close(self) -> None:
        """Close every waiting item; starts still under way close their item when it arrives."""
        self._closed = True
        while self._ready:
            self._ready.popleft().close()
        self._notify()

    # -- internals -------------------------------------------------------------------------

    def _drop_dead(self) -> None:
        """Close and forget the items whose server died while they waited."""
        for item in [item for item in self._ready if not item.alive]:
            self._ready.remove(item)
            item.close()

    def _fill(self) -> None:
        if self._closed or self._group is None:
            return
        for _ in range(self.size - len(self._ready) - len(self._pending)):
            start: _Start[T] = _Start()
            self._pending.append(start)
            self._group.start_soon(self._run_start, start)

    async def _run_start(self, start: _Start[T]) -> None:
        try:
            start.item = await self._open()
        except Exception as exc:  # recorded for whoever waits on this start
            start.error = exc
        finally:
            start.done.set()
        if start in self._pending:  # nobody claimed it: it joins the pool
            self._pending.remove(start)
            if start.item is None:
                self._failures += 1
                self._last_error = start.error
            elif self._closed:
                start.item.close()
            else:
                self._ready.append(start.item)
        elif start.abandoned and start.item is not None:
            start.item.close()
        self._notify()

    async def _claim(self, start: _Start[T]) -> T:
        try:
            await start.done.wait()
        except BaseException:  # the taker was cancelled: the item must not be left open
            if start.item is not None:
                start.item.close()
            start.abandoned = True
            raise
        if start.item is None:
            assert start.error is not None
            raise start.error
        return start.item

    def _notify(self) -> None:
        self._changed.set()
        self._changed = anyio.Event()
