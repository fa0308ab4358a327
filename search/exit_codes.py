"""The exit codes of ``lars-search`` and of its worker processes, in one place.

A signal's code is 128 + its number, as a shell reports a process the signal ended, so that a
script sees the same status whether the worker was killed or handled the signal and exited.
"""

from __future__ import annotations

import signal

from search.errors import Terminated

__all__ = ["FAILED", "USER_ERROR", "INTERRUPTED", "BROKEN_PIPE", "TERMINATED", "for_interrupt"]

FAILED = 1  # an internal error, every `train` seed diverged, no verb given
USER_ERROR = 2  # a SearchError (bad study file, unknown study, unusable storage ...), one line on stderr
INTERRUPTED = 128 + signal.SIGINT  # 130: Ctrl-C, after the running trial was marked FAIL and its retry enqueued
BROKEN_PIPE = 128 + signal.SIGPIPE  # 141: the reader of stdout went away (`compare ... | head`)
TERMINATED = 128 + signal.SIGTERM  # 143: SIGTERM, handled as Ctrl-C


def for_interrupt(exc: KeyboardInterrupt) -> int:
    """The exit code of a Ctrl-C (:data:`INTERRUPTED`) or a SIGTERM (:data:`TERMINATED`)."""
    return TERMINATED if isinstance(exc, Terminated) else INTERRUPTED
