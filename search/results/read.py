"""What the storage holds about a study file's arms, as data: search statistics and the verdict.

:func:`load_arms` finds an arm's search studies, :func:`arm_stats` sums one search
(trials complete / pruned / failed, the best trial, compute spent and saved by pruning),
:func:`load_verdict` reads every search and final evaluation of a study file and judges
each LARS arm against its plain twin (:mod:`search.results.verdict` for the method). Nothing
here trains or writes; :mod:`search.results.report` turns these into tables and lines.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import Any

import optuna
import yaml
from optuna.trial import FrozenTrial, TrialState

from search.errors import StudyNotFoundError
from search.names import StudyName, unit_key
from search.results.stored import evaluation_result, incumbent, range_cost, stored_final
from search.results.verdict import (
    Interval,
    arm_interval,
    boundary_warnings,
    detectable_difference,
    difference,
    family_lines,
    pair_arms,
    ranking,
    replicates_for,
    verdict_line,
)
from search.seeds import evaluation_seed
from search.spec.study_file import DEFAULT_ARMS

__all__ = [
    "ArmStats",
    "ArmResult",
    "Verdict",
    "study_names",
    "load_arms",
    "arm_stats",
    "epochs_run",
    "load_verdict",
    "final_settings",
]


@dataclass
class ArmStats:
    """Counts, best trial and compute of one search (an arm in one replicate), as ``compare`` reads them.

    ``ran_here``: search trials and evaluation runs of the ``run_studies`` call that returned it (0 in compare).
    """

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
    range_epochs: float = 0.0  # the lr: auto range test's cost (search.run.lr_range), part of the compute
    seconds: float = 0.0
    saved_epochs: int = 0
    saved_seconds: float = 0.0
    reasons: dict[str, int] = field(default_factory=dict)
    recipe_value: float | None = None  # trial 0's validation accuracy when it is the recipe
    ran_here: int = 0

    @property
    def trials(self) -> int:
        return self.complete + self.pruned + self.failed

    finished = trials

    @property
    def compute(self) -> float:
        """Trial-epochs spent: the trials' and the range test's."""
        return self.trial_epochs + self.range_epochs

    @property
    def saved_share(self) -> float:
        """Share of the no-pruning cost that pruning saved, in trial-epochs."""
        total = self.trial_epochs + self.saved_epochs
        return self.saved_epochs / total if total else 0.0


def study_names(storage: Any) -> dict[str, list[str]]:
    """``{name: [arm, ...]}`` of every ``<name>/<arm>`` search study in the storage (replicate 0)."""
    out: dict[str, list[str]] = {}
    for study in storage.get_all_studies():
        ref = StudyName.parse(study.study_name)
        if ref is not None and ref.replicate == 0 and not ref.evaluation:  # other Optuna studies are not ours
            out.setdefault(ref.name, []).append(ref.arm)
    return out


def _arm_entries(text: str | None) -> list[tuple[str, str, bool]]:
    """``(name, optimizer, lars)`` of each arm of a stored study file, in its order (names as parse_arm gives them)."""
    try:
        listed = (yaml.safe_load(text or "") or {}).get("arms") or list(DEFAULT_ARMS)
    except (yaml.YAMLError, AttributeError):
        return []
    out = []
    for raw in listed:
        if isinstance(raw, str):
            optimizer, _, suffix = raw.partition("+")
            out.append((raw, optimizer, suffix == "lars"))
        elif isinstance(raw, dict):
            optimizer, lars = str(raw.get("optimizer", "")), raw.get("lars") is True
            out.append((str(raw.get("name", f"{optimizer}+lars" if lars else optimizer)), optimizer, lars))
    return out


def load_arms(storage: Any, name: str) -> list[tuple[str, optuna.Study]]:
    """The arm studies of ``name`` (replicate 0), in the order of their study file's ``arms``."""
    names = study_names(storage)
    if name not in names:
        known = ", ".join(sorted(names)) or "none"
        raise StudyNotFoundError(f"no study named {name!r} in the storage (studies there: {known})")
    arms = names[name]
    first = optuna.load_study(study_name=StudyName(name, arms[0]).format(), storage=storage)
    order = {entry[0]: i for i, entry in enumerate(_arm_entries(first.user_attrs.get("study_file")))}
    arms.sort(key=lambda a: (order.get(a, len(order)), a))
    return [(arm, optuna.load_study(study_name=StudyName(name, arm).format(), storage=storage)) for arm in arms]


def epochs_run(trial: FrozenTrial) -> int:
    """Epochs a trial trained: its recorded history, else its reported steps."""
    history = trial.user_attrs.get("history")
    if isinstance(history, list):
        return len(history)
    return len(trial.intermediate_values)


def arm_stats(arm: str, study: optuna.Study | list[FrozenTrial], study_name: str | None = None) -> ArmStats:
    """Counts, best, median of the top five, recipe, compute spent and saved for one search."""
    trials = study if isinstance(study, list) else study.get_trials(deepcopy=False)
    s = ArmStats(arm, study_name or getattr(study, "study_name", arm))
    if not isinstance(study, list):
        s.range_epochs = range_cost(study)
    values = []
    for t in trials:
        if t.state in (TrialState.RUNNING, TrialState.WAITING):
            s.running += t.state == TrialState.RUNNING
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
            if "recipe" in t.user_attrs:
                s.recipe_value = t.value
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


@dataclass
class ArmResult:
    """One arm over its replicates: ``searches[r]`` (ArmStats), ``evaluations[r]`` (EvalResult), ``test``."""

    arm: str
    optimizer: str
    lars: bool
    searches: list[ArmStats] = field(default_factory=list)
    evaluations: list[Any] = field(default_factory=list)
    test: Interval | None = None
    warnings: list[str] = field(default_factory=list)
    recipe_edges: int = 0  # warnings about an edge where the recipe trial was clamped (search.spec.recipe.clamp_notes)

    @property
    def values(self) -> list[list[float]]:
        return [list(e.values.values()) for e in self.evaluations]

    @property
    def evaluated(self) -> bool:
        return bool(self.evaluations) and all(e.done for e in self.evaluations)


@dataclass
class Verdict:
    """Everything ``compare``, ``export`` and the dashboard note show (see :func:`load_verdict`).

    ``family``: what the LARS-vs-plain lines claim together (per-comparison 95%, Holm), from ``judged``,
    the differences of the lines with an interval (a batch-size axis makes one family of every batch's);
    ``power``: per line with an interval, the 80%-power detectable difference and the
    replicates that would detect 1 point (:mod:`search.results.verdict`).
    """

    name: str
    seeds: int
    replicates: int
    arms: list[ArmResult]
    lines: list[str] = field(default_factory=list)  # one per LARS arm and twin
    ranking: list[tuple[int, str, list[str]]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # why a verdict is missing or partial
    best_arm: str | None = None
    family: list[str] = field(default_factory=list)
    power: list[str] = field(default_factory=list)
    objective_seed: int = 0  # the study file's objective.seed: the base of the seed plan (search.seeds)
    judged: dict[tuple[str, str], Interval] = field(default_factory=dict)  # (lars, plain): the lines with an interval

    @property
    def trials(self) -> int:
        """Finished trials per search (the most any search has), for the design line."""
        return max((s.trials for a in self.arms for s in a.searches), default=0)

    def arm(self, name: str) -> ArmResult:
        return next(a for a in self.arms if a.arm == name)


def _objective_seed(text: str | None) -> int:
    """``objective.seed`` of a stored study file (default 0)."""
    try:
        return int(((yaml.safe_load(text or "") or {}).get("objective") or {}).get("seed", 0))
    except (yaml.YAMLError, AttributeError, TypeError, ValueError):
        return 0


def final_settings(study: optuna.Study) -> tuple[int, int, int]:
    """``(evaluation seeds, replicates, objective seed)`` of a study file's runs, read from its first arm's study:
    the user attr ``final`` (the latest run's values, :func:`search.run.studies.open_studies`), else its study file."""
    seeds, replicates = stored_final(study.user_attrs)
    return seeds, replicates, _objective_seed(study.user_attrs.get("study_file"))


def load_verdict(storage: Any, name: str) -> Verdict:
    """Read every search and evaluation of ``name`` and compute the verdict (:mod:`search.results.verdict`)."""
    arms = load_arms(storage, name)
    text = arms[0][1].user_attrs.get("study_file")
    seeds, replicates, base = final_settings(arms[0][1])
    kinds = {n: (o, lr) for n, o, lr in _arm_entries(text)}
    all_names = {s.study_name for s in storage.get_all_studies()}
    results = []
    for arm, study in arms:
        optimizer, lars = kinds.get(arm, (arm.partition("+")[0], arm.endswith("+lars")))
        result = ArmResult(arm, optimizer, lars)
        for r in range(replicates):
            search_name = StudyName(name, arm, r).format()
            eval_name = StudyName(name, arm, r, evaluation=True).format()
            if search_name not in all_names:
                continue
            search = study if r == 0 else optuna.load_study(study_name=search_name, storage=storage)
            trials = search.get_trials(deepcopy=False)
            result.searches.append(arm_stats(arm, trials, search_name))
            result.searches[-1].range_epochs = range_cost(search)  # part of the compute (lr: auto)
            eval_trials = None
            if eval_name in all_names:
                eval_trials = optuna.load_study(study_name=eval_name, storage=storage).get_trials(deepcopy=False)
            wanted = [evaluation_seed(base, r, k) for k in range(seeds)]
            result.evaluations.append(evaluation_result(trials, eval_trials, wanted, r))
            best = incumbent(trials)
            if best is not None:
                own, clamped = _edge_warnings(unit_key(arm, r), best)
                result.warnings += own + clamped
                result.recipe_edges += len(clamped)
        result.test = arm_interval(result.values, replicates)
        results.append(result)
    verdict = Verdict(name, seeds, replicates, results, objective_seed=base)
    _judge(verdict, kinds, _budget_trials(text))
    return verdict


def _edge_warnings(label: str, best: FrozenTrial) -> tuple[list[str], list[str]]:
    """Boundary warnings of an incumbent: ``(the search's, those where the recipe trial was clamped)``."""
    clamped = {note.split(" ", 1)[0] for note in best.user_attrs.get("recipe_clamped") or []}
    dists = best.distributions
    own = boundary_warnings(label, best.params, {n: d for n, d in dists.items() if n not in clamped})
    recipe = boundary_warnings(label, best.params, {n: d for n, d in dists.items() if n in clamped})
    said = (f", where the recipe (trial {best.number}) was clamped, not a finding of the search; widen the range "
            "to try the recipe's own value")  # fmt: skip
    return own, [w.replace("; widen the range", said) for w in recipe]


def _budget_trials(text: str | None) -> int | None:
    """``budget.trials`` of a stored study file (its default, 20, unless only a timeout is given)."""
    try:
        budget = (yaml.safe_load(text or "") or {}).get("budget") or {}
        trials = budget.get("trials", None if "timeout" in budget else 20)
        return trials if isinstance(trials, int) else None
    except (yaml.YAMLError, AttributeError):
        return None


def _rerun_advice(finished: dict[str, list[int]], budget: int | None) -> str:
    """What makes unequal arms equal: a plain rerun, or ``--n-trials N`` when the file's budget is already met."""
    most = max((n for counts in finished.values() for n in counts), default=0)
    if budget is None or most <= budget:
        return "run the study again to give every arm its budget"
    return (f"run the study again with --n-trials {most} to give every arm {most} finished trials "
            f"(the study file's budget.trials, {budget}, is met)")  # fmt: skip


def _provisional(edge: list[str], by_arm: dict[str, ArmResult]) -> str:
    """Why a verdict line is provisional: arms whose incumbent the search found at an edge, and arms whose
    only edges are where their recipe trial was clamped."""
    clamped = [x for x in edge if by_arm[x].recipe_edges == len(by_arm[x].warnings)]
    found = [x for x in edge if x not in clamped]
    parts = [f"{' and '.join(found)} at the edge of the searched range"] if found else []
    if clamped:
        whose = "its recipe was" if len(clamped) == 1 else "their recipes were"
        parts.append(f"{' and '.join(clamped)} at the edge where {whose} clamped, not found by the search")
    return "; ".join(parts)


def _judge(verdict: Verdict, kinds: dict[str, tuple[str, bool]], budget: int | None = None) -> None:
    by_arm = {a.arm: a for a in verdict.arms}
    finished = {a.arm: [s.trials for s in a.searches] for a in verdict.arms}
    counts = {tuple(v) for v in finished.values()}
    unequal = len(counts) > 1
    if unequal:
        shown = ", ".join(f"{a} {'/'.join(map(str, v)) or 0}" for a, v in finished.items())
        verdict.notes.append(f"arms have unequal finished trials ({shown}): not comparable yet; "
                             f"{_rerun_advice(finished, budget)}")  # fmt: skip
    pending = [a.arm for a in verdict.arms if not a.evaluated and any(e.incumbent for e in a.evaluations)]
    if pending:
        verdict.notes.append(f"final evaluation not finished for {', '.join(pending)}: run the study again")
    present = {a: kinds.get(a, (by_arm[a].optimizer, by_arm[a].lars)) for a in by_arm}
    judged: dict[tuple[str, str], Interval] = {}
    for lars_arm, plain_arm in pair_arms(present):
        a, b = by_arm[lars_arm], by_arm[plain_arm]
        if unequal and finished[lars_arm] != finished[plain_arm]:
            verdict.lines.append(
                f"{lars_arm} vs {plain_arm}: not comparable yet (finished trials "
                f"{'/'.join(map(str, finished[lars_arm]))} vs {'/'.join(map(str, finished[plain_arm]))})"
            )
            continue
        waiting = [x.arm for x in (a, b) if any(_searching(st, budget) for st in x.searches)]
        if waiting:
            verdict.lines.append(f"{lars_arm} vs {plain_arm}: no verdict yet ({' and '.join(waiting)}: a search has "
                                 "no complete trial yet)")  # fmt: skip
            continue
        if not (a.evaluated and b.evaluated):
            verdict.lines.append(f"{lars_arm} vs {plain_arm}: no verdict yet (final evaluation not finished)")
            continue
        empty = [x.arm for x in (a, b) if not any(x.values)]
        if empty:
            verdict.lines.append(f"{lars_arm} vs {plain_arm}: no verdict ({' and '.join(empty)}: no test result; "
                                 "every trial or evaluation run failed or diverged)")  # fmt: skip
            continue
        edge = [x for x in (lars_arm, plain_arm) if by_arm[x].warnings]
        provisional = _provisional(edge, by_arm)
        diff = difference(a.values, b.values, verdict.replicates)
        verdict.lines.append(verdict_line(lars_arm, plain_arm, diff, replicates=verdict.replicates,
                                          seeds=verdict.seeds, provisional=provisional))  # fmt: skip
        if verdict.replicates >= 2 and diff.known:
            judged[(lars_arm, plain_arm)] = diff
    verdict.notes += _missing(verdict, budget)
    verdict.judged = judged
    verdict.family = _family(judged)
    verdict.power = [_power_line(pair, d, verdict.seeds) for pair, d in judged.items()]
    done = {a.arm: a.values for a in verdict.arms if a.evaluated and a.test is not None and a.test.n > 0}
    verdict.ranking = ranking(done, verdict.replicates)
    if verdict.ranking and not unequal:
        verdict.best_arm = verdict.ranking[0][1]


def _searching(search: ArmStats, budget: int | None) -> bool:
    """A search without an incumbent that may still get one: a trial running, none finished, or budget left."""
    if search.best_trial is not None:
        return False
    return bool(search.running) or search.trials == 0 or (budget is not None and search.trials < budget)


def _missing(verdict: Verdict, budget: int | None = None) -> list[str]:
    """One note per replicate whose final evaluation is done without a result: left out, never replaced by seeds
    (a search that may still find an incumbent is not missing: it is not finished)."""
    if verdict.replicates < 2:
        return []
    gone = [unit_key(a.arm, e.replicate) for a in verdict.arms for e, search in zip(a.evaluations, a.searches)
            if e.done and not e.values and not _searching(search, budget)]  # fmt: skip
    if not gone:
        return []
    return [f"missing replicates (no test result: no complete trial, or every evaluation run failed): "
            f"{', '.join(gone)}; their arms' intervals use the other replicates' means"]  # fmt: skip


def _family(judged: dict[tuple[str, str], Interval]) -> list[str]:
    """The LARS-vs-plain lines as a family (:func:`search.results.verdict.family_lines`)."""
    return family_lines({f"{la} vs {pa}": d for (la, pa), d in judged.items()})


def _power_line(pair: tuple[str, str], diff: Interval, seeds: int) -> str:
    """``sgd+lars vs sgd: 80% power at +-3.73 points (SD of a replicate mean 0.66 points, 2 + 2 replicates); ...``"""
    n = diff.df + 2  # n_a + n_b; diff.n is the smaller of the two
    n_a = diff.n
    delta = detectable_difference(diff.sd, n_a, n - n_a)
    need = replicates_for(0.01, diff.sd)
    needed = f"about {need} replicates per arm" if need is not None else "more than 10000 replicates per arm"
    return (f"{pair[0]} vs {pair[1]}: 80% power to detect +-{100 * delta:.2f} points or more (SD of a replicate "
            f"mean {100 * diff.sd:.2f} points, {n - n_a} + {n_a} replicates); 1 point would need {needed} "
            f"at {seeds} seed{'s' if seeds != 1 else ''} each")  # fmt: skip
