"""Status and compare tables, read from the storage (nothing here trains or writes).

``compare`` answers "does LARS help, and which arm wins?" per arm:

* trials: complete / pruned / failed;
* best validation accuracy, and the sampled values of the trial that reached it;
* median of the top five validation accuracies (robust to one lucky trial);
* compute spent: trial-epochs (sum over trials of the epochs they ran) and seconds;
* compute saved by pruning: for every trial stopped by the pruner, the epochs it did
  not run, ``config.epochs - epochs_run``, in trial-epochs and as a share of what the
  arm would have spent without pruning (seconds estimated from the trial's own
  seconds per epoch);
* which arms beat which: arm A beats arm B when both its best value and its
  median-of-top-five are higher ("mixed" when one is higher and the other is not).
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field
from typing import Any

import optuna
import yaml
from optuna.trial import FrozenTrial, TrialState

from search.spec import DEFAULT_ARMS

__all__ = [
    "StudyNotFoundError",
    "ArmStats",
    "study_names",
    "load_arms",
    "arm_stats",
    "epochs_run",
    "format_table",
    "format_status",
    "format_compare",
    "beats",
]


class StudyNotFoundError(LookupError):
    """No study of that name in the storage (the message lists the names there are)."""


@dataclass
class ArmStats:
    """What ``compare`` shows for one arm (see the module docstring)."""

    arm: str
    study_name: str
    complete: int = 0
    pruned: int = 0
    failed: int = 0
    running: int = 0
    best_value: float | None = None
    best_trial: FrozenTrial | None = None
    top5_median: float | None = None
    trial_epochs: int = 0
    seconds: float = 0.0
    saved_epochs: int = 0
    saved_seconds: float = 0.0
    reasons: dict[str, int] = field(default_factory=dict)

    @property
    def trials(self) -> int:
        return self.complete + self.pruned + self.failed

    @property
    def saved_share(self) -> float:
        """Share of the no-pruning cost that pruning saved, in trial-epochs."""
        total = self.trial_epochs + self.saved_epochs
        return self.saved_epochs / total if total else 0.0


def study_names(storage: Any) -> dict[str, list[str]]:
    """``{name: [arm, ...]}`` of every ``<name>/<arm>`` study in the storage."""
    out: dict[str, list[str]] = {}
    for study in storage.get_all_studies():
        name, slash, arm = study.study_name.partition("/")
        if slash and arm:  # other Optuna studies in the same storage are not ours
            out.setdefault(name, []).append(arm)
    return out


def load_arms(storage: Any, name: str) -> list[tuple[str, optuna.Study]]:
    """The arm studies of ``name``, in the order of their study file's ``arms``."""
    names = study_names(storage)
    if name not in names:
        known = ", ".join(sorted(names)) or "none"
        raise StudyNotFoundError(f"no study named {name!r} in the storage (studies there: {known})")
    arms = names[name]
    order = {}
    first = optuna.load_study(study_name=f"{name}/{arms[0]}", storage=storage)
    text = first.user_attrs.get("study_file")
    if text:
        try:
            listed = (yaml.safe_load(text) or {}).get("arms") or list(DEFAULT_ARMS)
            order = {(a if isinstance(a, str) else a.get("name", "")): i for i, a in enumerate(listed)}
        except (yaml.YAMLError, AttributeError):
            order = {}
    arms.sort(key=lambda a: (order.get(a, len(order)), a))
    return [(arm, optuna.load_study(study_name=f"{name}/{arm}", storage=storage)) for arm in arms]


def epochs_run(trial: FrozenTrial) -> int:
    """Epochs a trial trained: its recorded history, else its reported steps."""
    history = trial.user_attrs.get("history")
    if isinstance(history, list):
        return len(history)
    return len(trial.intermediate_values)


def arm_stats(arm: str, study: optuna.Study) -> ArmStats:
    """Counts, best, median of the top five, compute spent and saved for one arm."""
    s = ArmStats(arm, study.study_name)
    values = []
    for t in study.get_trials(deepcopy=False):
        if t.state in (TrialState.RUNNING, TrialState.WAITING):
            s.running += 1
            continue
        ran = epochs_run(t)
        s.trial_epochs += ran
        seconds = float(t.user_attrs.get("wall_time_s") or 0.0)
        s.seconds += seconds
        reason = t.user_attrs.get("fail_reason")
        if t.state == TrialState.COMPLETE:
            s.complete += 1
            values.append(t.value)
            if s.best_value is None or t.value > s.best_value:
                s.best_value, s.best_trial = t.value, t
        elif t.state == TrialState.PRUNED:
            s.pruned += 1
            planned = (t.user_attrs.get("config") or {}).get("epochs")
            if "diverged_epoch" not in t.user_attrs and isinstance(planned, int) and planned > ran:
                s.saved_epochs += planned - ran
                if ran:
                    s.saved_seconds += (planned - ran) * seconds / ran
        elif t.state == TrialState.FAIL:
            s.failed += 1
        if reason and (t.state == TrialState.FAIL or "diverged_epoch" in t.user_attrs):
            key = reason.split(":")[0]
            s.reasons[key] = s.reasons.get(key, 0) + 1
    if values:
        s.top5_median = statistics.median(sorted(values, reverse=True)[:5])
    return s


def beats(a: ArmStats, b: ArmStats) -> str | None:
    """``"beats"`` if a's best and median-of-top-five are both higher than b's, ``"mixed"``
    if one is higher and the other is not, None if a beats b in neither."""
    if a.best_value is None or b.best_value is None:
        return None
    best = a.best_value > b.best_value
    top = (a.top5_median or -math.inf) > (b.top5_median or -math.inf)
    if best and top:
        return "beats"
    if best or top:
        return "mixed"
    return None


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.2f}"


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)


def format_table(headers: list[str], rows: list[list[str]]) -> str:
    """Plain-text table with columns padded to their widest cell."""
    widths = [max(len(str(r[i])) for r in [headers] + rows) for i in range(len(headers))]
    lines = ["  ".join(str(h).ljust(w) for h, w in zip(headers, widths)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    for row in rows:
        lines.append("  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip())
    return "\n".join(lines)


def format_status(storage: Any, name: str | None = None) -> str:
    """Per arm: trials complete / pruned / failed / running and the best value, for one or all names."""
    names = [name] if name else sorted(study_names(storage))
    if not names:
        return "no studies in the storage yet (lars-search run STUDY.yaml creates them)"
    blocks = []
    for n in names:
        rows = []
        for arm, study in load_arms(storage, n):
            s = arm_stats(arm, study)
            rows.append([arm, str(s.complete), str(s.pruned), str(s.failed), str(s.running), _pct(s.best_value)])
        table = format_table(["arm", "complete", "pruned", "failed", "running", "best val acc %"], rows)
        blocks.append(f"{n}\n{table}")
    return "\n\n".join(blocks)


def _best_params(s: ArmStats) -> str:
    if s.best_trial is None:
        return "-"
    params = " ".join(f"{k.removeprefix('schedule.')}={_short(v)}" for k, v in s.best_trial.params.items())
    return f"#{s.best_trial.number} {params}".strip()


def format_compare(storage: Any, name: str) -> str:
    """The arms table of ``name``, the LARS-vs-plain deltas and which arms beat which."""
    stats = [arm_stats(arm, study) for arm, study in load_arms(storage, name)]
    rows = []
    for s in stats:
        saved = f"{s.saved_epochs} ({100 * s.saved_share:.0f}%, ~{s.saved_seconds:.0f} s)" if s.saved_epochs else "0"
        rows.append([
            s.arm, f"{s.complete}/{s.pruned}/{s.failed}", _pct(s.best_value), _pct(s.top5_median),
            str(s.trial_epochs), f"{s.seconds:.0f}", saved, _best_params(s),
        ])  # fmt: skip
    headers = ["arm", "trials C/P/F", "best val %", "top-5 median %", "trial-epochs", "seconds",
               "saved by pruning (trial-epochs)", "best trial"]  # fmt: skip
    lines = [f"compare {name}: validation accuracy per arm (C/P/F = complete/pruned/failed)", format_table(headers, rows)]
    by_arm = {s.arm: s for s in stats}
    deltas = []
    for s in stats:
        if s.arm.endswith("+lars") and s.arm[: -len("+lars")] in by_arm:
            plain = by_arm[s.arm[: -len("+lars")]]
            if s.best_value is not None and plain.best_value is not None:
                d_best = 100 * (s.best_value - plain.best_value)
                d_top = 100 * ((s.top5_median or 0) - (plain.top5_median or 0))
                deltas.append(f"  {s.arm} vs {plain.arm}: {d_best:+.2f} points best, {d_top:+.2f} points top-5 median")
    if deltas:
        lines += ["", "LARS vs plain:"] + deltas
    ranked = sorted((s for s in stats if s.best_value is not None), key=lambda s: -s.best_value)
    if ranked:
        lines += ["", "which arms beat which (higher best AND higher top-5 median):"]
        for a in ranked:
            won = [b.arm for b in stats if b is not a and beats(a, b) == "beats"]
            mixed = [b.arm for b in stats if b is not a and beats(a, b) == "mixed"]
            text = f"  {a.arm} beats: {', '.join(won) or 'none'}"
            if mixed:
                text += f"; mixed vs: {', '.join(mixed)}"
            lines.append(text)
        lines.append(f"winner: {ranked[0].arm} ({_pct(ranked[0].best_value)}% best validation accuracy)")
    failures = {s.arm: s.reasons for s in stats if s.reasons}
    if failures:
        lines += ["", "failed/diverged trials by reason:"]
        for arm, reasons in failures.items():
            lines.append(f"  {arm}: " + ", ".join(f"{k} x{v}" for k, v in sorted(reasons.items())))
    return "\n".join(lines)
