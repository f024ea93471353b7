"""``run_stoppable(main)``: ``anyio.run(main)`` that a first Ctrl-C stops cleanly and a second at once.

``sandbox run``, ``sandbox generate`` and every stage of ``sandbox improve`` that runs episodes go
through it, so all of them stop the same way: the model turn in progress ends at its next token, what
was written stays, and the caller gets ``KeyboardInterrupt`` to say how to resume.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Awaitable, Callable
from typing import TypeVar

import anyio
import anyio.abc

T = TypeVar("T")
INTERRUPTED = 130  # the exit code of a run stopped by Ctrl-C (128 + SIGINT)
STOPPING = "stopping at Ctrl-C (press it again to stop at once)"


def _say(line: str) -> None:
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


def run_stoppable(main: Callable[[], Awaitable[T]], *, say: Callable[[str], None] = _say) -> T:
    """``anyio.run(main)`` that Ctrl-C stops cleanly: the first SIGINT cancels ``main`` (a model turn
    in progress ends at its next token, every trace already written stays, servers and model close)
    and raises ``KeyboardInterrupt`` once it has unwound; a second SIGINT ends the process at once
    (exit 130; the trace file keeps its complete lines, a resume cuts a half-written one). Where
    SIGINT is ignored (a background job of a script) it stays ignored. ``say`` tells the person that
    the run is stopping. A failure of ``main`` is raised as itself."""
    watch = threading.current_thread() is threading.main_thread() and (
        signal.getsignal(signal.SIGINT) is signal.default_int_handler
    )
    interrupted = False
    finished: list[T] = []
    failed: list[Exception] = []

    async def guarded() -> None:
        nonlocal interrupted
        work = anyio.CancelScope()

        async def watcher(*, task_status: anyio.abc.TaskStatus[None]) -> None:
            nonlocal interrupted
            with anyio.open_signal_receiver(signal.SIGINT) as signals:
                task_status.started()
                async for _ in signals:
                    if interrupted:
                        sys.stderr.write("second Ctrl-C: stopped at once\n")
                        sys.stderr.flush()
                        os._exit(INTERRUPTED)
                    interrupted = True
                    say(STOPPING)
                    work.cancel()

        async with anyio.create_task_group() as group:
            if watch:
                await group.start(watcher)
            with work:
                try:
                    finished.append(await main())
                except Exception as exc:  # raised as itself below, not inside this group's ExceptionGroup
                    failed.append(exc)
            group.cancel_scope.cancel()

    anyio.run(guarded)
    if failed:
        raise failed[0]
    if not finished:
        raise KeyboardInterrupt
    return finished[0]
