"""Exact per-arm trial budgets when many workers share one storage.

Each arm is one Optuna study with a budget of ``B`` trials. Several processes (on one
machine or many) call :func:`claim_trial` at the same time; the arm must end with
exactly ``B`` counted trials, none run twice, including when a worker is killed and
its trial is retried.

Counting slots
--------------
A *slot* is one trial the budget paid for. Optuna's retry callback (see
:mod:`search.storage.database`) re-enqueues a heartbeat-stale trial as a new WAITING trial whose
``system_attrs["failed_trial"]`` names the original; the retry reuses the original's
slot. So

    count_slots(study) = #{ trials t : "failed_trial" not in t.system_attrs }

which equals COMPLETE + PRUNED + final FAIL + RUNNING + WAITING, where a FAIL is final
unless it was retried. The count never goes down: between the instant a stale trial
is set to FAIL and the instant its retry is enqueued, the FAIL still holds its slot,
so no other worker can slip an extra trial into that gap.

Claiming under a lock
---------------------
``count then ask`` is a race (two workers both see ``B - 1`` and both ask). Claims on
one arm are therefore serialised by a lock that every process on every machine sees
and that dies with its holder:

* PostgreSQL: a transaction advisory lock ``pg_advisory_xact_lock(k)``, ``k`` a 63-bit
  hash of the study name, on its own pooled connection (released at its COMMIT, or by
  the server if the connection drops);
* MySQL: ``GET_LOCK(name, timeout)`` likewise;
* SQLite (one machine by construction): ``flock`` on ``<db file>.lock``.

Under the lock a claim (1) fails stale trials and enqueues their retries
(``optuna.storages.fail_stale_trials``, at most once per heartbeat interval, and only
after this process has reached the database for a whole grace period: an outage of the
database silences every heartbeat at once and must not fail the trials of live
workers; a RUNNING trial that never beat, its worker killed between ``ask`` and its
first beat, is given one beat so that it goes stale too), (2) counts slots, and
(3) calls ``study.ask()`` only if a WAITING trial exists (a retry or an enqueued
trial: its slot is already counted) or a slot is free (then ``ask`` creates exactly
one trial).
The new trial's first heartbeat is written before the lock is released, and a daemon
thread keeps beating every ``heartbeat_interval`` seconds until the trial is finished
(it checks the trial's state after each beat), surviving transient storage errors
instead of dying with them (optuna#4994). A SIGKILL stops the beats; after the grace
period the next claim on that arm fails the trial and enqueues its retry.

The lock is held for one count and one ``ask`` (a few milliseconds with TPE); a
sampler's relative sampling (CMA-ES, GP) runs inside ``ask`` and so under the lock.

A claim that finds the arm full while a trial has stopped beating logs once which trial
it is waiting for and about when it will be failed and retried, instead of waiting
silently. Optuna's private names are used only through :mod:`search.storage.optuna_internals`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import hashlib
import logging
import threading
import time
import warnings
from collections.abc import Iterator

import optuna
import sqlalchemy
from optuna.trial import TrialState

from search.errors import first_line
from search.storage import optuna_internals as internals
from search.storage._retry import retry
from search.storage.database import storage_lock
from search.storage.url import mask_url, one_line

__all__ = ["count_slots", "slot_counts", "SlotCounts", "claim_trial", "is_complete", "arm_lock", "RETRY_ATTR"]

_logger = logging.getLogger(__name__)

RETRY_ATTR = "failed_trial"  # Optuna's retry callback marks a retried trial with this system attr
_CLAIM_RETRY_TIMEOUT_S = 120.0


def _check_budget(budget: object) -> int:
    if isinstance(budget, bool) or not isinstance(budget, int) or budget < 0:
        raise ValueError(f"budget must be an integer >= 0, got {budget!r}")
    return budget


def _slots(trials: list[optuna.trial.FrozenTrial]) -> int:
    return sum(1 for t in trials if RETRY_ATTR not in t.system_attrs)


@dataclasses.dataclass(frozen=True)
class SlotCounts:
    slots: int  # trials that are not retries of another trial
    waiting: int
    running: int


def _backend(study: optuna.Study) -> optuna.storages.RDBStorage | None:
    return internals.rdb_backend(internals.storage_of(study))


def slot_counts(study: optuna.Study) -> SlotCounts:
    """Slot, WAITING and RUNNING counts of ``study``, fresh from the database.

    On an RDB storage this is one SQL statement (:func:`search.storage.optuna_internals.count_trials`)
    instead of loading every trial with its params and attrs, which a claim and the study
    loop would otherwise do several times per trial. Other storages load the trials.
    """
    backend = _backend(study)
    if backend is not None:
        study_id = internals.study_id_of(study)
        total, retries, waiting, running = retry(
            lambda: internals.count_trials(backend, study_id, RETRY_ATTR),
            what="counting trials", url=backend.url, timeout=getattr(backend, "retry_timeout", 60.0),
        )  # fmt: skip
        return SlotCounts(slots=total - retries, waiting=waiting, running=running)
    trials = study.get_trials(deepcopy=False)
    return SlotCounts(
        slots=_slots(trials),
        waiting=sum(1 for t in trials if t.state == TrialState.WAITING),
        running=sum(1 for t in trials if t.state == TrialState.RUNNING),
    )


def count_slots(study: optuna.Study) -> int:
    """Trials that count toward the arm's budget (see the module docstring).

    COMPLETE, PRUNED, final FAIL (not retried), plus RUNNING and WAITING (in flight);
    a retry shares the slot of the trial it retries.
    """
    return slot_counts(study).slots


def _heartbeat_on(study: optuna.Study) -> bool:
    backend = _backend(study)
    return backend is not None and backend.get_heartbeat_interval() is not None


def is_complete(study: optuna.Study, budget: int) -> bool:
    """True when the arm's budget is spent and nothing is in flight any more.

    With heartbeats on, a RUNNING trial may still turn into a retry (its worker may be
    dead), so an arm is complete only when every slot is taken and no trial is RUNNING
    or WAITING; workers should keep polling :func:`claim_trial` until then. Without
    heartbeats nobody could recover a dead worker's trial, so a spent budget suffices.
    """
    budget = _check_budget(budget)
    counts = slot_counts(study)
    if counts.slots < budget:
        return False
    if not _heartbeat_on(study):
        return True
    return counts.running == 0 and counts.waiting == 0


# ------------------------------------------------------------------------- locks
def _lock_key(study: optuna.Study) -> int:
    digest = hashlib.sha256(f"lars-search:{study.study_name}".encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1  # fits a signed bigint


_memory_lock = threading.Lock()  # in-memory storages live in one process


@contextlib.contextmanager
def arm_lock(study: optuna.Study) -> Iterator[None]:
    """The lock that serialises claims on one arm across processes and machines (module docstring)."""
    backend = _backend(study)
    if backend is None:
        with _memory_lock:
            yield
        return
    dialect = backend.engine.dialect.name
    if dialect == "sqlite":
        with storage_lock(backend.url, key=study.study_name):
            yield
        return
    if dialect not in ("postgresql", "mysql"):
        raise NotImplementedError(f"exact budgets need a sqlite, postgresql or mysql storage, got {dialect!r}")
    key = _lock_key(study)
    connection = backend.engine.connect()
    try:
        if dialect == "postgresql":
            # A transaction-level lock: released by the COMMIT below, or by the server
            # when the connection dies (SIGKILL, network loss, server restart).
            connection.execute(sqlalchemy.text("SELECT pg_advisory_xact_lock(:k)"), {"k": key})
            try:
                yield
            finally:
                try:
                    connection.commit()
                except Exception as error:  # the connection died and took the lock with it
                    _release_failed(study, backend, connection, error)
            return
        name = f"lars-search:{key:x}"
        got = connection.execute(sqlalchemy.text("SELECT GET_LOCK(:n, 600)"), {"n": name}).scalar()
        if got != 1:
            raise TimeoutError(f"could not lock arm {study.study_name!r} in 600 s")
        try:
            yield
        finally:
            try:
                connection.execute(sqlalchemy.text("SELECT RELEASE_LOCK(:n)"), {"n": name})
                connection.commit()
            except Exception as error:
                _release_failed(study, backend, connection, error)
    finally:
        connection.close()


def _release_failed(study: optuna.Study, backend, connection, error: Exception) -> None:
    """The lock's connection died, and the server released the lock with it.

    Raising here would make the caller claim again although this claim already happened.
    """
    _logger.warning("releasing the lock of %r failed (%s); the connection is dropped",
                    study.study_name, one_line(error, backend.url))  # fmt: skip
    connection.invalidate()


# --------------------------------------------------------------------- heartbeat
def _adopt_orphans(backend: optuna.storages.RDBStorage, study_id: int) -> None:
    """Give one heartbeat to every RUNNING trial of the study that has none.

    Optuna judges only trials with a heartbeat row, so a worker killed between
    ``ask`` and its first beat would leave a RUNNING trial that is never failed, and
    the arm would never be complete. Claims write the first beat under the arm's lock,
    and this runs under the same lock, so a trial without a beat here is an orphan (or
    a live trial whose first beat failed; its own thread beats again within one
    interval). After the grace period the usual check fails and retries it.
    """
    _, running = internals.running_heartbeats(backend, study_id)
    for trial_id, number, beat in running:
        if beat is None:
            _logger.warning("trial %d is RUNNING without a heartbeat; it fails after the grace period "
                            "unless its worker is alive", number)  # fmt: skip
            backend.record_heartbeat(trial_id)


class _HeartbeatThread(threading.Thread):
    """Beat for one trial until it is finished; log and carry on through storage errors."""

    def __init__(self, backend: optuna.storages.RDBStorage, trial_id: int, interval: float):
        super().__init__(name=f"lars-search-heartbeat-{trial_id}", daemon=True)
        self._backend = backend
        self._trial_id = trial_id
        self._interval = interval
        self._stop_event = threading.Event()

    def stop(self) -> None:
        self._stop_event.set()

    def run(self) -> None:
        while not self._stop_event.wait(self._interval):
            try:
                if self._backend.get_trial(self._trial_id).state.is_finished():
                    return
                self._backend.record_heartbeat(self._trial_id)
            except Exception as error:  # keep beating: a lost beat is not a lost trial
                _logger.warning(
                    "heartbeat of trial id %d on %s failed: %s",
                    self._trial_id, mask_url(self._backend.url),
                    first_line(error) or type(error).__name__,
                )  # fmt: skip


# ------------------------------------------------------------------------- claim
_last_stale_check: dict[tuple[int, str], float] = {}


def _stale_check_due(study: optuna.Study, backend: optuna.storages.RDBStorage) -> bool:
    """At most one stale-trial check per arm, process and heartbeat interval.

    A heartbeat only changes every interval, so checking more often finds nothing new;
    it saves a query per claim when trials are short.
    """
    key = (id(backend), study.study_name)
    now = time.monotonic()
    if now - _last_stale_check.get(key, -float("inf")) < (backend.get_heartbeat_interval() or 0):
        return False
    _last_stale_check[key] = now
    return True


def _grace(backend: optuna.storages.RDBStorage) -> float:
    return getattr(backend, "grace_period", None) or 2 * (backend.get_heartbeat_interval() or 0)


def _healthy_for_grace(backend: optuna.storages.RDBStorage) -> bool:
    """Whether this process has reached the database for a whole grace period.

    A database outage stops every worker's heartbeat at once; the first claim after it
    would find every RUNNING trial stale and fail trials whose workers are alive. So a
    process judges staleness only after ``grace_period`` seconds without a transient
    error (and after ``grace_period`` seconds since it opened the storage), by which time
    every live worker has beaten again.
    """
    since = getattr(backend, "healthy_since", None)
    return since is None or time.monotonic() - since >= _grace(backend)


_announced_stale: set[tuple[int, int]] = set()


def _announce_silent_trials(study: optuna.Study, backend: optuna.storages.RDBStorage) -> None:
    """Log once per trial which RUNNING trial has missed its heartbeats, and when it will be retried.

    Called when the arm is full and this worker waits: a trial whose last beat is older
    than one and a half intervals has most likely lost its worker (SIGKILL, a crash).
    """
    interval = backend.get_heartbeat_interval() or 0
    now, running = internals.running_heartbeats(backend, internals.study_id_of(study))
    since = getattr(backend, "healthy_since", None)
    judged_from = 0.0 if since is None else max(0.0, since + _grace(backend) - time.monotonic())
    for trial_id, number, beat in running:
        key = (id(backend), trial_id)
        if beat is None or key in _announced_stale:
            continue
        silent = (now - beat).total_seconds()
        if silent < 1.5 * interval:
            continue
        _announced_stale.add(key)
        wait = max(_grace(backend) - silent, judged_from) + interval
        at = (datetime.datetime.now() + datetime.timedelta(seconds=wait)).strftime("%H:%M:%S")
        _logger.warning(
            "waiting for %s trial %d: no heartbeat for %.0f s (its worker stopped?); it will be failed "
            "and retried at about %s (in %.0f s)", study.study_name, number, silent, at, wait,
        )  # fmt: skip


def _say_why_stale(study: optuna.Study, backend: optuna.storages.RDBStorage) -> None:
    """Give every RUNNING trial silent for longer than the grace period its ``fail_reason``, before
    ``fail_stale_trials`` fails it (a finished trial's attrs can no longer be set).

    Judged on the database's clock, as Optuna judges staleness a moment later: a trial found
    stale here is stale there too.
    """
    now, running = internals.running_heartbeats(backend, internals.study_id_of(study))
    for trial_id, _, beat in running:
        silent = None if beat is None else (now - beat).total_seconds()
        if silent is not None and silent > _grace(backend):
            backend.set_trial_user_attr(trial_id, "fail_reason", f"no heartbeat for {silent:.0f} s: its worker "
                                        "stopped (killed, or its machine lost); retried")  # fmt: skip


def _claim_locked(study: optuna.Study, budget: int) -> optuna.trial.Trial | None:
    backend = _backend(study)
    heartbeat = backend is not None and backend.get_heartbeat_interval() is not None
    with arm_lock(study):
        if heartbeat and _healthy_for_grace(backend) and _stale_check_due(study, backend):
            _say_why_stale(study, backend)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                optuna.storages.fail_stale_trials(study)
            _adopt_orphans(backend, internals.study_id_of(study))
        counts = slot_counts(study)
        if counts.waiting == 0 and counts.slots >= budget:
            trial = None
        else:
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed")
                trial = study.ask()
            if heartbeat:
                try:  # a failed first beat must not undo the claim: the thread beats again
                    backend.record_heartbeat(internals.trial_id_of(trial))
                except Exception as error:
                    _logger.warning("first heartbeat of trial %d failed: %s", trial.number, error)
    if trial is None:
        if heartbeat and counts.running:
            _announce_silent_trials(study, backend)
        return None
    if heartbeat:
        _HeartbeatThread(backend, internals.trial_id_of(trial), backend.get_heartbeat_interval()).start()
    return trial


def claim_trial(study: optuna.Study, budget: int) -> optuna.trial.Trial | None:
    """Ask one trial of ``study`` if the arm still has budget, else return None.

    Pops a WAITING trial (a retry of a dead worker's trial, or an enqueued one) first,
    as ``study.ask()`` does; a retry is returned even when the budget is spent, since
    it reuses its original's slot. Safe when many processes on many machines call it
    at once: the arm never holds more than ``budget`` counted trials (see module
    docstring). With heartbeats on, the returned trial's heartbeat runs in a daemon
    thread until the trial is told (``study.tell``) or the process dies.

    Transient storage errors (a locked SQLite file, a restarting server) are retried
    for up to two minutes; a claim either happens once or not at all.

    Args:
        study: the arm's study (on an RDB or in-memory storage).
        budget: the arm's total number of trials, an integer >= 0.

    Returns:
        an ``optuna.trial.Trial`` to run and ``tell``, or None when the arm is full.
    """
    budget = _check_budget(budget)
    backend = _backend(study)
    return retry(
        lambda: _claim_locked(study, budget),
        what=f"claiming a trial of {study.study_name!r}",
        url=backend.url if backend is not None else "",
        timeout=_CLAIM_RETRY_TIMEOUT_S,
        on_retry=getattr(backend, "note_transient_error", None),
        first_delay=0.1,
    )
