"""One trial: sample a config, train it, report/prune per epoch, tell the study how it ended.

``run_trial`` is the objective wrapper of :func:`search.run.loop.run_studies`::

    config = search.spec.space.suggest_config(trial, ...)   -> objectives.validate_config
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
* Ctrl-C or SIGTERM (:class:`Terminated`): the running trial is FAIL
  (``"interrupted (Ctrl-C) ..."``), a WAITING retry with the same parameters is enqueued
  in its budget slot (as a dead worker's trial is, see :mod:`search.storage.budget`), and the
  interrupt propagates; finished trials are already in the storage, and resuming runs
  the interrupted configuration again, so the arm still reaches its budget of finished
  trials. Further Ctrl-Cs while those two writes run are ignored (:func:`signals_deferred`),
  so an impatient second Ctrl-C cannot lose the retry.

Every final-evaluation seed (:func:`search.run.evaluation.run_evaluation_trial`) and the lr
range test (:func:`search.run.lr_range.range_test`) go through the same lifecycle,
:func:`run_lifecycle`: the same FAIL reasons, the same CUDA release after an OOM, the same
retry of a user's mistake, the same deafness to a second Ctrl-C.

A trial that reported its last epoch is never PRUNED: the pruner is not asked then, and
the finished result counts.

Missing data (``objectives.data.DataNotFoundError``) or a config that objectives rejects
(``objectives.config.ConfigError``, e.g. ``device: cuda`` on a machine without CUDA) is
the user's problem, not the trial's: every later trial would fail alike, so the trial
is FAIL, a retry of it is enqueued (the mistake costs no budget: the fixed rerun trains
it), and the error propagates (:func:`is_user_error`); the CLI prints one line.
"""

from __future__ import annotations

import gc
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import optuna
import torch
from optuna.trial import TrialState

from objectives.config import validate_config
from search.errors import Terminated, first_line, is_user_error
from search.seeds import search_seed
from search.signals import signals_deferred
from search.spec.space import suggest_config, warmup_epochs_of
from search.spec.study_file import Arm, StudySpec

__all__ = ["TrialOutcome", "TrainFn", "Ending", "run_trial", "run_lifecycle", "run_and_tell", "history_recorder",
           "default_validate", "enqueue_retry"]  # fmt: skip

TrainFn = Callable[[dict[str, Any], Callable[[int, dict[str, Any]], None]], Any]
Validate = Callable[[dict[str, Any]], dict[str, Any]]


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


@dataclass
class Ending:
    """How a run ended, as :func:`run_and_tell` tells the study: ``state``, ``value``, ``reason``."""

    state: TrialState
    value: float | None = None
    reason: str | None = None
    oom: bool = False


def _finite(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _plain(metrics: dict[str, Any]) -> dict[str, Any]:
    """JSON-safe copy of an epoch's metrics (non-finite numbers become None)."""
    return {k: None if isinstance(v, float) and not math.isfinite(v) else v for k, v in metrics.items()}


def _is_oom(exc: BaseException) -> bool:
    if isinstance(exc, torch.cuda.OutOfMemoryError):
        return True
    return isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()


def default_validate() -> Validate:
    """``objectives.validate_config`` (fills defaults and checks every key)."""
    return validate_config


# The pruned trial's fail_reason, after "pruned at epoch N: val_accuracy X", per pruner type.
_WHY_PRUNED = {
    "median": "below the median of earlier trials at that epoch",
    "hyperband": "not among the best of its Hyperband bracket at that epoch",
}


def enqueue_retry(study: optuna.Study, number: int) -> None:
    """Enqueue a WAITING copy of trial ``number``'s parameters that reuses its budget slot.

    The system attrs are those of Optuna's ``RetryFailedTrialCallback`` (``failed_trial``,
    ``retry_history``), which :mod:`search.storage.budget` reads to count the retry in the slot of
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


# ------------------------------------------------------------------ the steps of one trial
def _config(trial: optuna.trial.Trial, arm: Arm, spec: StudySpec, replicate: int, device: str | None,
            validate: Validate | None) -> dict[str, Any]:  # fmt: skip
    """Sample the trial's config, give it its replicate's seed, apply ``--device``, validate it, store it."""
    config = suggest_config(trial, spec.objective, arm.optimizer, arm.lars, arm.space)
    if replicate:
        config["seed"] = search_seed(int(config.get("seed", 0)), replicate)
    if device:
        config["device"] = device
    if validate is not None:
        config = validate(config)
    trial.set_user_attr("config", config)
    return config


def history_recorder(history: list[dict[str, Any]]) -> Callable[[int, dict[str, Any]], None]:
    """A ``report(epoch, metrics)`` that only appends ``{"epoch": epoch, **metrics}`` (JSON-safe) to ``history``."""

    def record(epoch: int, metrics: dict[str, Any]) -> None:
        history.append({"epoch": epoch, **_plain(metrics)})

    return record


def _reporter(trial: optuna.trial.Trial, spec: StudySpec, config: dict[str, Any],
              history: list[dict[str, Any]]) -> Callable[[int, dict[str, Any]], None]:  # fmt: skip
    """The ``report(epoch, metrics)`` callback: record, report, and prune only between warm-up and the last epoch.

    The pruner is asked only once ``epoch > max(warmup_epochs, pruner.n_warmup_steps)`` (a
    trial is never judged inside its own LR warm-up, where LARS trials look worst) and
    never at the last planned epoch: a trial that finished training is a result.
    """
    guard = max(warmup_epochs_of(config), float(spec.pruner.n_warmup_steps))
    last = config.get("epochs")
    why = _WHY_PRUNED.get(spec.pruner.type, "judged weak by the pruner")

    record = history_recorder(history)

    def report(epoch: int, metrics: dict[str, Any]) -> None:
        record(epoch, metrics)
        accuracy = metrics.get("val_accuracy")
        if not _finite(accuracy):
            return
        trial.report(float(accuracy), epoch)
        if epoch > guard and (last is None or epoch < last) and trial.should_prune():
            raise optuna.TrialPruned(f"pruned at epoch {epoch}: val_accuracy {accuracy:.4f} {why}")

    return report


def _train(trial: optuna.trial.Trial, config: dict[str, Any], report: Callable, train_fn: TrainFn) -> Ending:
    """Run the objective; its result as the trial's ending (diverged: PRUNED; non-finite: FAIL)."""
    result = train_fn(config, report)
    for attr in ("images_per_s", "device", "epochs_completed"):
        if getattr(result, attr, None) is not None:
            trial.set_user_attr(attr, getattr(result, attr))
    if getattr(result, "diverged", False):
        epoch = getattr(result, "diverged_epoch", None)
        trial.set_user_attr("diverged_epoch", epoch)
        return Ending(TrialState.PRUNED, reason=f"diverged: non-finite training loss at epoch {epoch}")
    value = getattr(result, "val_accuracy", None)
    if not _finite(value):
        return Ending(TrialState.FAIL, reason=f"objective returned a non-finite val_accuracy {value!r}")
    return Ending(TrialState.COMPLETE, value=float(value))


def _failure(exc: Exception) -> Ending:
    """The ending of a trial whose objective raised ``exc`` (pruned, out of memory, or any fault)."""
    if isinstance(exc, optuna.TrialPruned):
        return Ending(TrialState.PRUNED, reason=str(exc) or "pruned")
    if _is_oom(exc):
        return Ending(TrialState.FAIL, reason=f"CUDA out of memory: {first_line(exc) or type(exc).__name__}", oom=True)
    first = first_line(exc)
    return Ending(TrialState.FAIL, reason=f"{type(exc).__name__}: {first}" if first else type(exc).__name__)


def _release_cuda_memory() -> None:
    """After an OOM (outside the except block, so the traceback's frames and tensors are gone)."""
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def _tell(study: optuna.Study, trial: optuna.trial.Trial, ending: Ending, history: list[dict[str, Any]],
          seconds: float) -> None:  # fmt: skip
    """Store the trial's timing, history and reason, then tell the study how it ended."""
    trial.set_user_attr("wall_time_s", seconds)
    trial.set_user_attr("history", history)
    if "images_per_s" not in trial.user_attrs and history and "images_per_s" in history[-1]:
        trial.set_user_attr("images_per_s", history[-1]["images_per_s"])  # pruned: its epochs so far
    if ending.reason:
        trial.set_user_attr("fail_reason", ending.reason)
    value = ending.value if ending.state == TrialState.COMPLETE else None
    study.tell(trial, value, state=ending.state, skip_if_finished=True)


def _interrupted(exc: KeyboardInterrupt, history: list[dict[str, Any]]) -> Ending:
    """The ending of a run stopped by Ctrl-C or SIGTERM: ``interrupted (Ctrl-C) during epoch N``."""
    epoch = history[-1]["epoch"] + 1 if history else 1
    what = "SIGTERM" if isinstance(exc, Terminated) else "Ctrl-C"
    return Ending(TrialState.FAIL, reason=f"interrupted ({what}) during epoch {epoch}")


Record = Callable[[Ending, list[dict[str, Any]], float], None]


def run_lifecycle(
    work: Callable[[list[dict[str, Any]]], Ending], *, record: Record, retry: Callable[[], None]
) -> tuple[Ending, list[dict[str, Any]], float]:
    """The one lifecycle of a run that may be interrupted, fail or be retried: run ``work``, then record it.

    Search trials and final-evaluation seeds (:func:`run_and_tell`, which records in an
    Optuna trial) and the lr range test (:func:`search.run.lr_range.range_test`, which records in
    its arm's study) go through here, so a fix to one is a fix to all. ``work(history)``
    trains (appending one dict per epoch to ``history``) and returns its :class:`Ending`;
    ``record(ending, history, seconds)`` stores how it ended, ``retry()`` makes the run
    happen again. The faults of the module docstring are handled here, and only here:

    * an exception is FAIL with its reason (:func:`_failure`, the one place that turns an
      exception into a recorded reason), and the CUDA cache is emptied after an OOM;
    * Ctrl-C/SIGTERM: FAIL plus ``retry()``, recorded deaf to further signals
      (:func:`search.signals.signals_deferred`), then the interrupt propagates; a storage
      error there is dropped (a trial's heartbeat then lapses and its stale-trial retry
      takes over);
    * a user error (:func:`search.errors.is_user_error`): FAIL plus ``retry()``, deaf to
      signals, then the error propagates.

    Returns ``(ending, history, seconds)``.
    """
    start = time.perf_counter()
    history: list[dict[str, Any]] = []
    user_error: Exception | None = None
    try:
        ending = work(history)
    except KeyboardInterrupt as exc:
        with signals_deferred():
            try:
                record(_interrupted(exc, history), history, time.perf_counter() - start)
                retry()
            except Exception:  # noqa: BLE001 (the interrupt is what the caller must see)
                pass
        raise
    except Exception as exc:  # noqa: BLE001 (any fault of a trial must not stop the study)
        ending = _failure(exc)
        if is_user_error(exc):
            user_error = exc
    if ending.oom:
        _release_cuda_memory()
    seconds = time.perf_counter() - start
    if user_error is None:
        record(ending, history, seconds)
    else:  # the user's mistake stops the run and costs no budget: the retry keeps the slot for the fixed rerun
        with signals_deferred():
            record(ending, history, seconds)
            retry()
        raise user_error
    return ending, history, seconds


def run_and_tell(
    study: optuna.Study, trial: optuna.trial.Trial, work: Callable[[list[dict[str, Any]]], Ending]
) -> tuple[Ending, list[dict[str, Any]], float]:
    """:func:`run_lifecycle` recorded in an Optuna trial: tell ``study`` how ``trial`` ended; retry: a WAITING copy.

    Every search trial (:func:`run_trial`) and every final-evaluation seed
    (:func:`search.run.evaluation.run_evaluation_trial`) goes through here.
    """

    def record(ending: Ending, history: list[dict[str, Any]], seconds: float) -> None:
        _tell(study, trial, ending, history, seconds)

    return run_lifecycle(work, record=record, retry=lambda: enqueue_retry(study, trial.number))


def run_trial(
    study: optuna.Study,
    trial: optuna.trial.Trial,
    arm: Arm,
    spec: StudySpec,
    *,
    train_fn: TrainFn,
    replicate: int = 0,
    device: str | None = None,
    validate: Validate | None = None,
) -> TrialOutcome:
    """Train one trial of replicate ``replicate`` and tell the study how it ended (see the module docstring for
    faults); the trial trains with its replicate's seed (:func:`search.seeds.search_seed`)."""

    def work(history: list[dict[str, Any]]) -> Ending:
        config = _config(trial, arm, spec, replicate, device, validate)
        return _train(trial, config, _reporter(trial, spec, config, history), train_fn)

    ending, history, seconds = run_and_tell(study, trial, work)
    return TrialOutcome(arm.name, trial.number, ending.state, ending.value, ending.reason, len(history), seconds)
