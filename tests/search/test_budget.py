"""search.storage.budget: slot counting, exact claims under concurrency, retries of stale trials."""

from __future__ import annotations

import logging
import multiprocessing
import re
import sqlite3
import threading
import time

import optuna
import pytest
from optuna.trial import TrialState

from search.storage import budget as B
from search.storage.database import open_storage


def _own_messages(caplog) -> list[str]:
    """What this project logged: Optuna's own INFO lines reach caplog too, and vary between its releases."""
    return [r.getMessage() for r in caplog.records if r.name.split(".")[0] in ("search", "objectives", "lars")]


def _study(url: str, name: str = "b/sgd", **kwargs) -> optuna.Study:
    storage = open_storage(url, **kwargs)
    return optuna.create_study(study_name=name, storage=storage, direction="maximize", load_if_exists=True)


def _age_heartbeats(study: optuna.Study, seconds: int) -> None:
    """Make every heartbeat of ``study``'s file ``seconds`` older, and this process healthy for as long:
    what a dead worker and elapsed time do, without waiting."""
    from search.storage.optuna_internals import rdb_backend, storage_of

    backend = rdb_backend(storage_of(study))
    with sqlite3.connect(backend.url.removeprefix("sqlite:///")) as db:
        db.execute("UPDATE trial_heartbeats SET heartbeat = datetime(heartbeat, ?)", (f"-{seconds} seconds",))
    backend.healthy_since -= seconds
    B._last_stale_check.clear()


def _stop_heartbeat(trial: optuna.trial.Trial) -> None:
    """Simulate a dead worker: stop the beats of ``trial`` without finishing it.

    Every thread of that name is stopped: an earlier test's trial of the same id (in another storage) may
    still be beating until its next beat notices it finished.
    """
    threads = [t for t in threading.enumerate() if t.name == f"lars-search-heartbeat-{trial._trial_id}"]
    assert threads, "no heartbeat thread for the trial"
    for thread in threads:
        thread.stop()
        thread.join()


@pytest.mark.parametrize("budget", [-1, 1.5, True, "3"])
def test_budget_must_be_non_negative_integer(tmp_path, budget):
    study = _study(f"sqlite:///{tmp_path}/x.db", heartbeat=False)
    with pytest.raises(ValueError, match=r"budget must be an integer >= 0, got "):
        B.claim_trial(study, budget)


def test_claims_stop_exactly_at_budget(tmp_path):
    study = _study(f"sqlite:///{tmp_path}/x.db", heartbeat=False)
    trials = []
    while (trial := B.claim_trial(study, 5)) is not None:
        trials.append(trial)
    assert [t.number for t in trials] == [0, 1, 2, 3, 4]
    assert B.count_slots(study) == 5
    assert B.claim_trial(study, 0) is None


def test_count_includes_running_waiting_pruned_failed(tmp_path):
    study = _study(f"sqlite:///{tmp_path}/x.db", heartbeat=False)
    states = [TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL]
    for state in states:
        trial = study.ask()
        study.tell(trial, 0.5 if state == TrialState.COMPLETE else None, state=state)
    study.ask()  # RUNNING
    study.enqueue_trial({})  # WAITING
    assert B.count_slots(study) == 5
    # an enqueued WAITING trial is popped even when the budget is spent: its slot is counted
    popped = B.claim_trial(study, 5)
    assert popped is not None and popped.number == 4
    assert B.claim_trial(study, 5) is None


def test_retry_shares_the_slot_of_the_trial_it_retries(tmp_path):
    study = _study(f"sqlite:///{tmp_path}/x.db", heartbeat=False)
    first = study.ask()
    study.tell(first, state=TrialState.FAIL)
    study.add_trial(
        optuna.create_trial(state=TrialState.WAITING, system_attrs={"failed_trial": 0, "retry_history": [0]})
    )
    assert B.count_slots(study) == 1


def test_stale_trial_fails_is_retried_with_same_params_and_budget_stays_exact(tmp_path):
    study = _study(f"sqlite:///{tmp_path}/x.db", heartbeat_interval=1, grace_period=2)
    a = B.claim_trial(study, 2)
    a.suggest_float("x", 0.0, 1.0)
    b = B.claim_trial(study, 2)
    b.suggest_float("x", 0.0, 1.0)
    study.tell(a, 0.9)
    _stop_heartbeat(b)  # b's worker "dies"
    assert B.claim_trial(study, 2) is None  # not yet stale: the slot is held
    assert not B.is_complete(study, 2)
    _age_heartbeats(study, 10)
    retry = B.claim_trial(study, 2)
    assert retry is not None and retry.number == 2
    assert retry.suggest_float("x", 0.0, 1.0) == b.params["x"]
    assert study.trials[1].state == TrialState.FAIL
    assert B.count_slots(study) == 2
    study.tell(retry, 0.5)
    assert B.claim_trial(study, 2) is None
    assert B.is_complete(study, 2)


def test_heartbeat_thread_ends_when_trial_is_told(tmp_path):
    study = _study(f"sqlite:///{tmp_path}/x.db", heartbeat_interval=1, grace_period=2)
    before = set(threading.enumerate())  # an earlier test's trial of the same id may still be beating elsewhere
    trial = B.claim_trial(study, 1)
    name = f"lars-search-heartbeat-{trial._trial_id}"
    [thread] = [t for t in threading.enumerate() if t.name == name and t not in before]
    study.tell(trial, 1.0)
    thread.join(timeout=10.0)  # it notices at its next beat, 1 s later
    assert not thread.is_alive()


def test_is_complete_without_heartbeat_needs_only_spent_budget(tmp_path):
    study = _study(f"sqlite:///{tmp_path}/x.db", heartbeat=False)
    B.claim_trial(study, 1)  # left RUNNING
    assert B.is_complete(study, 1)
    assert not B.is_complete(study, 2)


def _claim_loop(url, budget, barrier, results):
    study = _study(url, heartbeat_interval=1, grace_period=3)
    barrier.wait()
    numbers = []
    while True:
        trial = B.claim_trial(study, budget)
        if trial is None:
            if B.is_complete(study, budget):
                break
            time.sleep(0.02)
            continue
        trial.suggest_float("x", 0.0, 1.0)
        numbers.append(trial.number)
        study.tell(trial, 0.5)
    results.put(numbers)


def test_four_processes_claim_exactly_the_budget(tmp_path):
    url = f"sqlite:///{tmp_path}/x.db"
    _study(url)  # schema and study created once, as the parent of workers does
    ctx = multiprocessing.get_context("fork")
    barrier, results = ctx.Barrier(4), ctx.Queue()
    procs = [ctx.Process(target=_claim_loop, args=(url, 30, barrier, results)) for _ in range(4)]
    for p in procs:
        p.start()
    claimed = [results.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(10)
    numbers = sorted(n for part in claimed for n in part)
    assert numbers == list(range(30))
    study = _study(url, heartbeat=False)
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 30


def test_sql_counts_equal_counts_from_loaded_trials(tmp_path):
    study = _study(f"sqlite:///{tmp_path}/x.db", heartbeat=False)
    for state in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL, TrialState.COMPLETE):
        trial = study.ask()
        study.tell(trial, 0.5 if state == TrialState.COMPLETE else None, state=state)
    study.add_trial(
        optuna.create_trial(state=TrialState.WAITING, system_attrs={"failed_trial": 2, "retry_history": [2]})
    )
    study.ask()  # pops the retry: RUNNING
    study.ask()  # RUNNING
    study.enqueue_trial({})  # WAITING
    counts = B.slot_counts(study)
    trials = study.get_trials()
    assert counts == B.SlotCounts(slots=B._slots(trials), waiting=1, running=2)
    assert counts.slots == 6  # 7 trials, one of them a retry


def test_counts_on_in_memory_storage_use_loaded_trials():
    study = optuna.create_study()
    study.tell(study.ask(), 1.0)
    study.enqueue_trial({})
    assert B.slot_counts(study) == B.SlotCounts(slots=2, waiting=1, running=0)
    assert B.claim_trial(study, 2).number == 1
    assert B.claim_trial(study, 2) is None


@pytest.mark.filterwarnings("ignore:Heartbeat of storage is supposed:UserWarning")
def test_running_trial_without_any_heartbeat_is_adopted_then_failed_and_retried(tmp_path):
    """A worker killed between ``ask`` and its first beat must not block the arm forever."""
    study = _study(f"sqlite:///{tmp_path}/x.db", heartbeat_interval=1, grace_period=2)
    orphan = study.ask()  # RUNNING, no heartbeat row: as if its worker died at once
    orphan.suggest_float("x", 0.0, 1.0)
    _age_heartbeats(study, 10)  # this process has been healthy for a grace period
    assert B.claim_trial(study, 1) is None  # the orphan gets one beat, holds its slot
    _age_heartbeats(study, 10)  # ... which then grows old
    retry = B.claim_trial(study, 1)
    assert retry is not None and retry.params == orphan.params
    assert study.trials[0].state == TrialState.FAIL
    study.tell(retry, 0.7)
    assert B.is_complete(study, 1)


def test_a_silent_running_trial_is_named_with_when_it_will_be_retried(tmp_path, caplog):
    """#16 item 3: after a SIGKILL the next run said only "waiting for trials running in other workers"."""
    study = _study(f"sqlite:///{tmp_path}/x.db", heartbeat_interval=10, grace_period=120)
    trial = B.claim_trial(study, 1)
    _stop_heartbeat(trial)  # its worker was killed
    with caplog.at_level(logging.WARNING, logger="search.storage.budget"):
        assert B.claim_trial(study, 1) is None  # beat 0 s ago: nothing to say yet
        assert _own_messages(caplog) == []
        _age_heartbeats(study, 45)
        assert B.claim_trial(study, 1) is None
        assert B.claim_trial(study, 1) is None  # said once, not at every poll
    [message] = _own_messages(caplog)
    assert re.fullmatch(
        r"waiting for b/sgd trial 0: no heartbeat for 45 s \(its worker stopped\?\); it will be "
        r"failed and retried at about \d\d:\d\d:\d\d \(in 85 s\)",
        message,
    ), message


@pytest.mark.parametrize("name", ["b/sgd", "b/sgd/eval"])
def test_a_trial_failed_for_its_silent_heartbeat_says_why(tmp_path, name):
    """#26 item 13: a kill -9'd evaluation seed (or search trial) was FAIL with no fail_reason."""
    study = _study(f"sqlite:///{tmp_path}/x.db", name=name, heartbeat_interval=1, grace_period=2)
    killed = B.claim_trial(study, 1)
    killed.suggest_float("x", 0.0, 1.0)
    _stop_heartbeat(killed)  # its worker "dies"
    _age_heartbeats(study, 10)
    assert B.claim_trial(study, 1) is not None  # the retry
    failed = study.trials[0]
    assert failed.state == TrialState.FAIL
    assert re.fullmatch(r"no heartbeat for 1\d s: its worker stopped \(killed, or its machine lost\); retried",
                        failed.user_attrs["fail_reason"])  # fmt: skip
