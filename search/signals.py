"""Ctrl-C and SIGTERM: how lars-search receives them, and where it holds them off.

A Ctrl-C (SIGINT) or a SIGTERM during a trial fails the running trial, enqueues its retry and
ends the process with 130 or 143 (:mod:`search.exit_codes`). :func:`interrupt_signals` makes
both arrive as a ``KeyboardInterrupt`` whatever the process inherited; :func:`signals_deferred`
holds them off while that FAIL and its retry are written, so a second Ctrl-C cannot lose the
retry. Signal handlers can only be set in the main thread: elsewhere both do nothing.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from typing import Any

from search.errors import Terminated

__all__ = ["interrupt_signals", "signals_deferred"]


def _raise_terminated(signum: int, frame: Any) -> None:
    raise Terminated()


@contextlib.contextmanager
def interrupt_signals() -> Iterator[None]:
    """Ctrl-C raises KeyboardInterrupt whatever this process inherited (a shell's background job
    starts with SIGINT ignored), and SIGTERM is handled as Ctrl-C (:class:`Terminated`)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {signal.SIGINT: signal.signal(signal.SIGINT, signal.default_int_handler),
                signal.SIGTERM: signal.signal(signal.SIGTERM, _raise_terminated)}  # fmt: skip
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@contextlib.contextmanager
def signals_deferred() -> Iterator[list[int]]:
    """Ignore SIGINT and SIGTERM inside the block (the main thread's handlers); yields the ones received.

    Used around the writes that record an interrupted trial (FAIL + its retry): a second
    Ctrl-C there would otherwise interrupt them and lose the retry. Outside the main
    thread (where handlers cannot be set) it does nothing.
    """
    received: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield received
        return
    previous = {sig: signal.signal(sig, lambda number, frame: received.append(number))
                for sig in (signal.SIGINT, signal.SIGTERM)}  # fmt: skip
    try:
        yield received
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
