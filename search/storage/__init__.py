"""Where the studies live: storage URLs, opening a shared SQL storage, retries, locks, budgets, heartbeats.

Public:

* ``url``: which storage URL a command uses (``--storage``, ``$LARS_SEARCH_STORAGE``, the
  study file, the default SQLite file), the SQLite file behind it, the URL shown with its
  password masked;
* ``database``: ``open_storage`` (a run's storage: schema, heartbeats, retried calls),
  ``open_reader`` (the reading verbs': never creates or alters a database), ``storage_lock``;
* ``budget``: exact per-arm trial budgets under many workers (``claim_trial``,
  ``count_slots``, ``is_complete``, ``arm_lock``), heartbeats and the retry of a dead
  worker's trial;
* ``optuna_internals``: every use of Optuna's private names, in one place.

Private: ``_retry`` (the one retry loop of storage calls). This room knows nothing of
study files or training; it imports only ``search.errors`` besides Optuna and SQLAlchemy.
"""

__all__ = ["budget", "database", "optuna_internals", "url"]
