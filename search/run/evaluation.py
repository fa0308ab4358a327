"""Final evaluation: each search's incumbent retrained with K fresh seeds and scored on the test set.

Each search study ``name/a[/rN]`` has its evaluation study ``name/a[/rN]/eval``
(:mod:`search.names`).

The evaluation is a study of its own, so its runs are stored, shared and resumed like
search trials but never enter the sampler's history. When a search has its budget of
finished trials, its incumbent (the COMPLETE trial with the best validation accuracy;
ties: the lower trial number) is retrained with seeds

    seed_k = objective.seed + 1 + 1000 * r + k,    k = 0 .. K-1     (``evaluation.seeds: K``;
                                                                      :mod:`search.seeds`)

(initialisation, data order and augmentation; the validation split stays fixed), with
the test set on. Each seed is one trial of the evaluation study, enqueued with
``study.enqueue_trial`` and the params ``incumbent_trial`` (the search trial's number)
and ``seed``; its value is the test accuracy, its user attrs ``config``,
``test_accuracy``, ``val_accuracy``, ``wall_time_s``. Several workers claim these
trials as they claim search trials (:func:`search.storage.budget.claim_trial`: heartbeats, a
dead worker's seed is retried); Ctrl-C fails the running seed and enqueues its retry,
and a rerun trains only the seeds without a finished trial. Seeds are enqueued under the
arm's lock, so concurrent workers enqueue each seed once. If the search later gets more
trials (``--n-trials``) and its incumbent changes, the new incumbent's seeds are
enqueued and results for the old one are ignored.

With Optuna's public API::

    study = optuna.load_study(study_name="quickstart/sgd/eval", storage=url)
    [(t.params["seed"], t.value) for t in study.trials if t.state.name == "COMPLETE"]
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from search.names import EVAL
from search.run.trial import Ending, history_recorder, run_and_tell
from search.storage.budget import RETRY_ATTR, arm_lock, claim_trial

__all__ = [
    "open_evaluation",
    "enqueue_seeds",
    "claim_evaluation",
    "run_evaluation_trial",
]


def open_evaluation(storage: Any, search: optuna.Study, *, arm: str, replicate: int) -> optuna.Study:
    """Create or load the evaluation study of a search study (``<search name>/eval``)."""
    study = optuna.create_study(
        storage=storage, study_name=f"{search.study_name}/{EVAL}", direction="maximize", load_if_exists=True,
        sampler=optuna.samplers.RandomSampler(seed=0),
    )  # fmt: skip
    if "role" not in study.user_attrs:
        study.set_user_attr("role", "final evaluation (test accuracy of the search's incumbent, one trial per seed)")
        study.set_user_attr("arm", arm)
        study.set_user_attr("replicate", replicate)
        study.set_user_attr("search_study", search.study_name)
    return study


def _seeds_taken(trials: list[FrozenTrial], number: int) -> set[int]:
    """Seeds of incumbent ``number`` that already have a trial (enqueued, running or finished)."""
    out = set()
    for t in trials:
        if RETRY_ATTR in t.system_attrs:
            continue  # a retry shares its original's seed
        fixed = t.system_attrs.get("fixed_params") or {}
        params = {**fixed, **t.params}
        if params.get("incumbent_trial") == number and "seed" in params:
            out.add(int(params["seed"]))
    return out


def enqueue_seeds(evaluation: optuna.Study, best: FrozenTrial, seeds: list[int]) -> int:
    """Enqueue the seeds of ``best`` that have no trial yet (under the arm's lock); returns how many."""
    with arm_lock(evaluation):
        taken = _seeds_taken(evaluation.get_trials(deepcopy=False), best.number)
        missing = [s for s in seeds if s not in taken]
        for seed in missing:
            evaluation.enqueue_trial({"incumbent_trial": best.number, "seed": seed}, skip_if_exists=False)
    return len(missing)


def claim_evaluation(evaluation: optuna.Study) -> optuna.trial.Trial | None:
    """One enqueued evaluation run (or a retry), or None when none is waiting."""
    return claim_trial(evaluation, 0)


def run_evaluation_trial(
    evaluation: optuna.Study,
    trial: optuna.trial.Trial,
    search: optuna.Study,
    *,
    train_fn: Callable[..., Any],
    device: str | None = None,
    validate: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
) -> tuple[TrialState, float | None, str | None, float]:
    """Train one seed of the incumbent with the test set on; tell ``evaluation`` how it ended.

    Returns ``(state, test accuracy, reason, seconds)``. The run goes through the same
    lifecycle as a search trial (:func:`search.run.trial.run_and_tell`): an exception is FAIL
    with its reason (a user error such as missing data gets a retry and propagates), a
    diverged run is FAIL ("diverged"), and Ctrl-C or SIGTERM is FAIL with a WAITING retry of
    the same seed, both recorded deaf to a second Ctrl-C, before the interrupt propagates.
    """
    number = trial.suggest_int("incumbent_trial", 0, 2**31 - 1)
    seed = trial.suggest_int("seed", 0, 2**31 - 1)

    def work(history: list[dict[str, Any]]) -> Ending:
        source = next(t for t in search.get_trials(deepcopy=False) if t.number == number)
        config = {**source.user_attrs["config"], "seed": seed, "evaluate_test": True, "progress": False}
        if device:
            config["device"] = device
        if validate is not None:
            config = validate(config)
        trial.set_user_attr("config", config)
        result = train_fn(config, history_recorder(history))
        test = getattr(result, "test_accuracy", None)
        if getattr(result, "diverged", False):
            return Ending(
                TrialState.FAIL, reason=f"diverged: non-finite loss at epoch {getattr(result, 'diverged_epoch', None)}"
            )
        if not isinstance(test, (int, float)) or not math.isfinite(test):
            return Ending(TrialState.FAIL, reason=f"objective returned a non-finite test_accuracy {test!r}")
        trial.set_user_attr("test_accuracy", float(test))
        trial.set_user_attr("val_accuracy", getattr(result, "val_accuracy", None))
        return Ending(TrialState.COMPLETE, value=float(test))

    ending, _, seconds = run_and_tell(evaluation, trial, work)
    return ending.state, ending.value, ending.reason, seconds
