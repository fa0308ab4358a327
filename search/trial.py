"""One trial: sample a config, train it, report/prune per epoch, tell the study how it ended.

``run_trial`` is the objective wrapper of :func:`search.study.run_studies`::

    config = search.space.suggest_config(trial, ...)   -> objectives.validate_config
    train_fn(config, report)        report(epoch, metrics): trial.report(val_accuracy, epoch);
                                    trial.should_prune() only once epoch > the trial's warm-up
    study.tell(trial, value | PRUNED | FAIL), the reason in user attrs

The trial's user attrs: ``config`` (the full plain config, so any trial can be re-run),
``wall_time_s``, ``images_per_s``, ``device``, ``epochs_completed``, ``history`` (one dict
of metrics per epoch), and ``fail_reason`` / ``diverged_epoch`` where they apply.

Faults inside a trial never stop the study:

* a NaN/inf training loss (``Result.diverged``): PRUNED, ``fail_reason`` and
  ``diverged_epoch`` in the trial's user attrs (pruned, not failed, so that the sampler
  learns to avoid the region);
* ``torch.cuda.OutOfMemoryError``: FAIL with the reason, CUDA cache emptied, next trial;
* any other exception from the objective: FAIL with ``"<Type>: <message>"``, next trial;
* Ctrl-C: the running trial is FAIL (``"interrupted (Ctrl-C) ..."``), a WAITING retry
  with the same parameters is enqueued in its budget slot (as a dead worker's trial is,
  see :mod:`search.budget`), and ``KeyboardInterrupt`` propagates; finished trials are
  already in the storage, and resuming runs the interrupted configuration again, so the
  arm still reaches its budget of finished trials.

Missing data (``objectives.DataNotFoundError``) or a config that objectives rejects
(``objectives.ConfigError``, e.g. ``device: cuda`` on a machine without CUDA) is the
user's problem, not the trial's: every later trial would fail alike, so the trial is
FAIL and the error propagates, and the CLI prints one line.
"""

from __future__ import annotations

import gc
import math
import time
from dataclasses import dataclass
from typing import Any, Callable

import optuna
from optuna.trial import TrialState

from search.space import suggest_config, warmup_epochs_of
from search.spec import Arm, StudySpec

__all__ = ["TrialOutcome", "TrainFn", "run_trial", "default_validate"]

TrainFn = Callable[[dict[str, Any], Callable[[int, dict[str, Any]], None]], Any]


@dataclass
class TrialOutcome:
    """How one trial ended: ``state`` (a TrialState), ``value``, ``reason``, ``epochs``, ``seconds``."""

    arm: str
    number: int
    state: TrialState
    value: float | None
    reason: str | None
    epochs: int
    seconds: float


def _finite(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _plain(metrics: dict[str, Any]) -> dict[str, Any]:
    """JSON-safe copy of an epoch's metrics (non-finite numbers become None)."""
    out = {}
    for k, v in metrics.items():
        if isinstance(v, float) and not math.isfinite(v):
            v = None
        out[k] = v
    return out


def _is_oom(exc: BaseException) -> bool:
    try:
        import torch

        if isinstance(exc, torch.cuda.OutOfMemoryError):
            return True
    except ImportError:
        pass
    return isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()


def _is_user_error(exc: BaseException) -> bool:
    """Missing data or a config objectives rejects (e.g. ``device: cuda`` without CUDA): every
    further trial would fail the same way, so the run stops with the user's one-line error."""
    return type(exc).__name__ in ("DataNotFoundError", "ConfigError")


def default_validate() -> Callable[[dict[str, Any]], dict[str, Any]]:
    """``objectives.validate_config`` (fills defaults and checks every key)."""
    from objectives import validate_config

    return validate_config


# The pruned trial's fail_reason, after "pruned at epoch N: val_accuracy X", per pruner type.
_WHY_PRUNED = {
    "median": "below the median of earlier trials at that epoch",
    "hyperband": "not among the best of its Hyperband bracket at that epoch",
}


def _enqueue_retry(study: optuna.Study, number: int) -> None:
    """Enqueue a WAITING copy of trial ``number``'s parameters that reuses its budget slot.

    The system attrs are those of Optuna's ``RetryFailedTrialCallback`` (``failed_trial``,
    ``retry_history``), which :mod:`search.budget` reads to count the retry in the slot of
    the trial it retries.
    """
    failed = next(t for t in study.get_trials(deepcopy=False) if t.number == number)
    history = [*failed.system_attrs.get("retry_history", []), number]
    system_attrs = {**failed.system_attrs, "failed_trial": failed.system_attrs.get("failed_trial", number),
                    "retry_history": history}  # fmt: skip
    study.add_trial(
        optuna.trial.create_trial(
            state=TrialState.WAITING,
            params=failed.params,
            distributions=failed.distributions,
            system_attrs=system_attrs,
        )
    )


def run_trial(
    study: optuna.Study,
    trial: optuna.trial.Trial,
    arm: Arm,
    spec: StudySpec,
    *,
    train_fn: TrainFn,
    device: str | None = None,
    validate: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
) -> TrialOutcome:
    """Train one trial and tell the study how it ended (see the module docstring for faults).

    Pruning: the pruner is asked only once ``epoch > max(warmup_epochs, pruner.n_warmup_steps)``:
    a trial is never judged inside its own LR warm-up, where LARS trials look worst.
    """
    start = time.perf_counter()
    history: list[dict[str, Any]] = []
    config: dict[str, Any] | None = None
    state, value, reason = TrialState.FAIL, None, None
    oom = False
    interrupted: BaseException | None = None
    propagate: BaseException | None = None
    try:
        config = suggest_config(trial, spec.objective, arm.optimizer, arm.lars, arm.space)
        if device:
            config["device"] = device
        if validate is not None:
            config = validate(config)
        trial.set_user_attr("config", config)
        guard = max(warmup_epochs_of(config), float(spec.pruner.n_warmup_steps))
        why_pruned = _WHY_PRUNED.get(spec.pruner.type, "judged weak by the pruner")

        def report(epoch: int, metrics: dict[str, Any]) -> None:
            history.append({"epoch": epoch, **_plain(metrics)})
            accuracy = metrics.get("val_accuracy")
            if _finite(accuracy):
                trial.report(float(accuracy), epoch)
                if epoch > guard and trial.should_prune():
                    raise optuna.TrialPruned(f"pruned at epoch {epoch}: val_accuracy {accuracy:.4f} {why_pruned}")

        result = train_fn(config, report)
        if getattr(result, "diverged", False):
            epoch = getattr(result, "diverged_epoch", None)
            state, reason = TrialState.PRUNED, f"diverged: non-finite training loss at epoch {epoch}"
            trial.set_user_attr("diverged_epoch", epoch)
        elif not _finite(getattr(result, "val_accuracy", None)):
            bad = getattr(result, "val_accuracy", None)
            state, reason = TrialState.FAIL, f"objective returned a non-finite val_accuracy {bad!r}"
        else:
            state, value = TrialState.COMPLETE, float(result.val_accuracy)
        for attr in ("images_per_s", "device", "epochs_completed"):
            if getattr(result, attr, None) is not None:
                trial.set_user_attr(attr, getattr(result, attr))
    except optuna.TrialPruned as exc:
        state, reason = TrialState.PRUNED, str(exc) or "pruned"
    except KeyboardInterrupt as exc:
        epoch = history[-1]["epoch"] + 1 if history else 1
        reason, interrupted = f"interrupted (Ctrl-C) during epoch {epoch}", exc
    except Exception as exc:  # noqa: BLE001 (any fault of a trial must not stop the study)
        if _is_oom(exc):
            oom = True
            reason = f"CUDA out of memory: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
        else:
            first = str(exc).splitlines()[0] if str(exc) else ""
            reason = f"{type(exc).__name__}: {first}" if first else type(exc).__name__
        if _is_user_error(exc):
            propagate = exc
    if oom:  # after the except block, so the traceback's frames (and their tensors) are gone
        gc.collect()
        try:
            import torch

            if torch.cuda.is_available():
                torch.cuda.empty_cache()
        except ImportError:
            pass
    seconds = time.perf_counter() - start
    try:
        trial.set_user_attr("wall_time_s", seconds)
        trial.set_user_attr("history", history)
        if "images_per_s" not in trial.user_attrs and history and "images_per_s" in history[-1]:
            trial.set_user_attr("images_per_s", history[-1]["images_per_s"])  # pruned: its epochs so far
        if reason:
            trial.set_user_attr("fail_reason", reason)
        study.tell(trial, value if state == TrialState.COMPLETE else None, state=state, skip_if_finished=True)
        if interrupted is not None:
            _enqueue_retry(study, trial.number)
    except BaseException:
        if interrupted is None:
            raise
    if interrupted is not None:
        raise interrupted
    if propagate is not None:
        raise propagate
    return TrialOutcome(arm.name, trial.number, state, value, reason, len(history), seconds)
