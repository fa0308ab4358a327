"""search.storage.optuna_internals against the installed Optuna: each private name still means what we use it for.

If one of these fails after an Optuna upgrade, search/storage/optuna_internals.py is the one file to mend.
"""

from __future__ import annotations

import datetime

import optuna
import pytest
from optuna.trial import TrialState

from search.storage import optuna_internals as I
from search.storage.database import open_storage


@pytest.fixture
def study(tmp_path):
    storage = open_storage(f"sqlite:///{tmp_path}/x.db", heartbeat=False)
    return optuna.create_study(study_name="i/sgd", storage=storage, direction="maximize")


def test_the_installed_optuna_has_every_private_name():
    assert I.missing() == []


def test_missing_names_a_renamed_private_method(monkeypatch):
    monkeypatch.delattr(optuna.storages.RDBStorage, "_get_stale_trial_ids")
    assert I.missing() == ["RDBStorage._get_stale_trial_ids"]


def test_accessors_agree_with_the_public_api(study):
    storage = I.storage_of(study)
    backend = I.rdb_backend(storage)
    assert isinstance(backend, optuna.storages.RDBStorage) and backend is not storage  # Optuna's cache around it
    assert I.study_id_of(study) == backend.get_study_id_from_name("i/sgd")
    trial = study.ask()
    assert I.trial_id_of(trial) == backend.get_trial_id_from_study_id_trial_number(I.study_id_of(study), trial.number)
    assert I.rdb_backend(optuna.storages.InMemoryStorage()) is None


def test_optuna_still_reads_trials_through_the_private_calls_we_retry(study, monkeypatch):
    """``_CachedStorage`` reads through ``_get_trials``: were it renamed, our retries would miss it."""
    calls = []
    cls = type(I.rdb_backend(I.storage_of(study)))  # search.storage.database's retrying RDBStorage
    original = cls._get_trials
    monkeypatch.setattr(cls, "_get_trials",
                        lambda self, *a, **k: calls.append(1) or original(self, *a, **k))  # fmt: skip
    study.tell(study.ask(), 1.0)
    assert len(study.trials) == 1  # read through the cache
    assert calls
    assert set(I.PRIVATE_STORAGE_CALLS) <= set(vars(optuna.storages.RDBStorage))


def test_count_trials_equals_counts_of_loaded_trials(study):
    for state in (TrialState.COMPLETE, TrialState.FAIL):
        study.tell(study.ask(), 0.5 if state == TrialState.COMPLETE else None, state=state)
    study.add_trial(optuna.create_trial(state=TrialState.WAITING, system_attrs={"failed_trial": 1}))
    study.ask()  # pops the WAITING retry: RUNNING
    study.enqueue_trial({})
    backend = I.rdb_backend(I.storage_of(study))
    assert I.count_trials(backend, I.study_id_of(study), "failed_trial") == (4, 1, 1, 1)


@pytest.mark.filterwarnings("ignore:Heartbeat of storage is supposed:UserWarning")  # ask/tell, as the loop does
def test_running_heartbeats_lists_running_trials_with_their_last_beat(tmp_path):
    storage = open_storage(f"sqlite:///{tmp_path}/x.db", heartbeat_interval=1, grace_period=2)
    study = optuna.create_study(study_name="i/hb", storage=storage)
    beaten, _ = study.ask(), study.ask()
    storage.record_heartbeat(I.trial_id_of(beaten))
    study.tell(study.ask(), 1.0)
    now, rows = I.running_heartbeats(storage, I.study_id_of(study))
    assert isinstance(now, datetime.datetime) and now.tzinfo is None
    assert [(number, beat is None) for _, number, beat in rows] == [(0, False), (1, True)]
    assert abs((now - rows[0][2]).total_seconds()) < 60
