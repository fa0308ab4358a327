"""Every use of Optuna's private names in lars-search, in one place.

The rest of ``search`` uses Optuna's public API: ``BaseStorage`` methods,
``Study.ask``/``tell``/``enqueue_trial``/``add_trial``, heartbeats
(``RDBStorage(heartbeat_interval=..., grace_period=...)``, ``fail_stale_trials``,
``RetryFailedTrialCallback``), study and trial attrs. What it cannot do with that API
lives here, each for a stated reason:

* :func:`storage_of`, :func:`study_id_of`, :func:`trial_id_of`: a ``Study`` and a
  ``Trial`` do not expose their storage and ids; the public road
  (``get_study_id_from_name``, ``get_trial_id_from_study_id_trial_number``) costs a
  query per call on the hot path of every claim and heartbeat.
* :func:`rdb_backend`: ``optuna.create_study`` wraps an ``RDBStorage`` in the private
  ``_CachedStorage``; the exact-budget lock needs the engine behind it.
* :data:`PRIVATE_STORAGE_CALLS`: private ``RDBStorage`` methods that Optuna itself
  calls (``_CachedStorage`` reads trials through ``_get_trials``,
  ``fail_stale_trials`` calls ``_get_stale_trial_ids``); :mod:`search.storage.database` retries
  them on transient errors like the public ones.
* :func:`count_trials`, :func:`running_heartbeats`: one SQL statement over Optuna's
  tables instead of loading every trial with its params and attrs (a claim counts
  slots several times per trial).

:func:`missing` lists what an installed Optuna lacks of all this, and importing this
module raises :class:`OptunaInternalsError` naming it: an Optuna upgrade that renames
one of these fails loudly at once, instead of being skipped; and
``tests/search/test_optuna_internals.py`` checks each function against the installed
version (the attrs of ``Study`` and ``Trial`` exist only on instances, so only a test
can check those).
"""

from __future__ import annotations

import datetime
from typing import Any

import optuna
import sqlalchemy
from optuna.trial import TrialState

from search.errors import OptunaInternalsError

__all__ = [
    "PRIVATE_STORAGE_CALLS",
    "count_trials",
    "missing",
    "rdb_backend",
    "running_heartbeats",
    "storage_of",
    "study_id_of",
    "trial_id_of",
]

#: Private ``RDBStorage`` methods that Optuna's own code calls on a storage.
PRIVATE_STORAGE_CALLS = ("_get_trials", "_get_stale_trial_ids")

_MODEL_COLUMNS = {
    "TrialModel": ("trial_id", "number", "study_id", "state"),
    "TrialSystemAttributeModel": ("trial_id", "key"),
    "TrialHeartbeatModel": ("trial_id", "heartbeat"),
}


def missing() -> list[str]:
    """The private names this module needs that the installed Optuna does not have."""
    own = vars(optuna.storages.RDBStorage)  # not inherited abstract stubs
    gone = [f"RDBStorage.{name}" for name in PRIVATE_STORAGE_CALLS if not callable(own.get(name))]
    if not hasattr(optuna.storages, "_CachedStorage"):
        gone.append("optuna.storages._CachedStorage")
    try:
        from optuna.storages._rdb import models
    except ImportError:
        return [*gone, "optuna.storages._rdb.models"]
    for model, columns in _MODEL_COLUMNS.items():
        table = getattr(getattr(models, model, None), "__table__", None)
        if table is None:
            gone.append(f"models.{model}")
            continue
        gone += [f"models.{model}.{c}" for c in columns if c not in table.c]
    return gone


# ------------------------------------------------------------------ accessors
def storage_of(study: optuna.Study) -> optuna.storages.BaseStorage:
    """The storage a study reads and writes (possibly Optuna's cache around an RDBStorage)."""
    return study._storage


def study_id_of(study: optuna.Study) -> int:
    return study._study_id


def trial_id_of(trial: optuna.trial.Trial) -> int:
    return trial._trial_id


def rdb_backend(storage: Any) -> optuna.storages.RDBStorage | None:
    """The RDBStorage behind ``storage`` (unwrapping ``_CachedStorage``), or None."""
    for candidate in (storage, getattr(storage, "_backend", None)):
        if isinstance(candidate, optuna.storages.RDBStorage):
            return candidate
    return None


# ------------------------------------------------------------------ SQL over Optuna's tables
def count_trials(backend: optuna.storages.RDBStorage, study_id: int, attr_key: str) -> tuple[int, int, int, int]:
    """``(trials, trials with system attr attr_key, WAITING, RUNNING)`` of a study, in one statement."""
    from optuna.storages._rdb import models

    trials = models.TrialModel.__table__
    attrs = models.TrialSystemAttributeModel.__table__

    def count(*where: Any) -> Any:
        return (
            sqlalchemy.select(sqlalchemy.func.count())
            .select_from(trials)
            .where(trials.c.study_id == study_id, *where)
            .scalar_subquery()
        )

    with_attr = (
        sqlalchemy.select(sqlalchemy.func.count())
        .select_from(attrs.join(trials, attrs.c.trial_id == trials.c.trial_id))
        .where(trials.c.study_id == study_id, attrs.c.key == attr_key)
        .scalar_subquery()
    )
    statement = sqlalchemy.select(
        count(), with_attr, count(trials.c.state == TrialState.WAITING), count(trials.c.state == TrialState.RUNNING)
    )
    with backend.engine.connect() as connection:
        row = connection.execute(statement).one()
    return int(row[0]), int(row[1]), int(row[2]), int(row[3])


def running_heartbeats(
    backend: optuna.storages.RDBStorage, study_id: int
) -> tuple[datetime.datetime, list[tuple[int, int, datetime.datetime | None]]]:
    """The database's clock and ``(trial_id, number, last heartbeat or None)`` of every RUNNING trial."""
    from optuna.storages._rdb import models

    trials = models.TrialModel.__table__
    beats = models.TrialHeartbeatModel.__table__
    statement = (
        sqlalchemy.select(trials.c.trial_id, trials.c.number, beats.c.heartbeat)
        .select_from(trials.outerjoin(beats, beats.c.trial_id == trials.c.trial_id))
        .where(trials.c.study_id == study_id, trials.c.state == TrialState.RUNNING)
        .order_by(trials.c.number)
    )
    with backend.engine.connect() as connection:
        now = connection.execute(sqlalchemy.select(sqlalchemy.func.now())).scalar_one()
        rows = connection.execute(statement).all()

    def naive(t: Any) -> Any:
        return t.replace(tzinfo=None) if isinstance(t, datetime.datetime) else t

    if isinstance(now, str):  # SQLite returns CURRENT_TIMESTAMP as text
        now = datetime.datetime.fromisoformat(now)
    return naive(now), [(int(r[0]), int(r[1]), naive(r[2])) for r in rows]


_gone = missing()
if _gone:
    raise OptunaInternalsError(
        f"optuna {optuna.__version__} changed private names lars-search relies on: {', '.join(_gone)}; "
        "see search/storage/optuna_internals.py"
    )
