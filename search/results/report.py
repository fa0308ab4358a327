"""Status and compare tables and the verdict as text (the data: :mod:`search.results.read`; nothing here trains).

``compare`` answers "does LARS help?" (:mod:`search.results.verdict` for the method):

* per arm: trials complete / pruned / failed (over every replicate); the best validation
  accuracy and the trial that reached it; the recipe's (trial 0's) validation accuracy
  and what tuning gained over it; test accuracy of the final evaluation, mean and 95%
  interval over replicate means (one replicate: over its seeds, training noise only);
  compute spent (trial-epochs and seconds, search and evaluation) and saved by pruning
  (for every trial stopped by the pruner, the epochs it did not run, ``config.epochs -
  epochs_run``, in trial-epochs, as a share of what the arm would have spent without
  pruning, and in seconds estimated from the trial's own seconds per epoch);
* one verdict line per LARS arm against its plain twin (one replicate: what was measured, no
  verdict), the family and power lines, the ranking with ties, boundary
  warnings (an incumbent at the edge of a searched range), and arms that are not
  comparable yet (unequal finished trials, evaluation not finished);
* with replicates, compute per replicate.

:func:`search.results.publish.publish_verdict` writes the verdict where users look (the study
user attr ``verdict`` and an optuna-dashboard note); ``run`` calls it, ``compare`` only reads.
"""

from __future__ import annotations

import math
import statistics
from typing import Any

from search.names import unit_key
from search.results.read import ArmResult, ArmStats, Verdict, load_arms, load_verdict, study_names
from search.results.stored import range_lines
from search.results.verdict import Interval, clip
from search.text import plural

__all__ = [
    "format_table",
    "interval_text",
    "format_status",
    "format_compare",
    "format_verdict",
]


# --------------------------------------------------------------------------- the verdict, read from the storage


# --------------------------------------------------------------------------- tables


def _pct(x: float | None) -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:.2f}"


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


def _seeds_done(e: Any, seeds: int) -> str:
    """A search's final evaluation: seeds with a test result / seeds asked (``-`` before an incumbent)."""
    if e.incumbent is None:
        return "-"
    return f"{len(e.values)}/{seeds}" + (f" ({e.failed} failed)" if e.failed else "")


def format_status(storage: Any, name: str | None = None) -> str:
    """Per search (every arm and replicate): trials complete / pruned / failed / running, the best value,
    and the final evaluation's seeds done / asked, for one or all names."""
    names = [name] if name else sorted(study_names(storage))
    if not names:
        return "no studies in the storage yet (lars-search run STUDY.yaml creates them)"
    blocks = []
    for n in names:
        rows = []
        verdict = load_verdict(storage, n)
        for a in verdict.arms:
            for s, e in zip(a.searches, a.evaluations):
                rows.append([unit_key(a.arm, e.replicate), str(s.complete), str(s.pruned), str(s.failed),
                             str(s.running), _pct(s.best_value), _seeds_done(e, verdict.seeds)])  # fmt: skip
        table = format_table(
            ["arm", "complete", "pruned", "failed", "running", "best val acc %", "test seeds done/asked"], rows
        )
        blocks.append("\n".join([n, table, *range_lines(load_arms(storage, n))]))
    return "\n\n".join(blocks)


def _best_params(s: ArmStats) -> str:
    if s.best_trial is None:
        return "-"
    params = " ".join(f"{k.removeprefix('schedule.')}={_short(v)}" for k, v in s.best_trial.params.items())
    return f"#{s.best_trial.number} {params}".strip()


def interval_text(i: Interval | None) -> str:
    """``81.00 [78.52, 83.48]``; ends beyond the possible [0, 100]% are shown clipped and marked ``(clipped)``."""
    if i is None or i.n == 0:
        return "-"
    if not i.known:
        return f"{100 * i.mean:.2f}"
    shown, clipped = clip(i)
    return f"{100 * i.mean:.2f} [{100 * shown.low:.2f}, {100 * shown.high:.2f}]" + (" (clipped)" if clipped else "")


def _arm_row(a: ArmResult) -> list[str]:
    complete = sum(s.complete for s in a.searches)
    pruned = sum(s.pruned for s in a.searches)
    failed = sum(s.failed for s in a.searches)
    bests = [s for s in a.searches if s.best_value is not None]
    best = max(bests, key=lambda s: s.best_value) if bests else None
    recipes = [s for s in a.searches if s.recipe_value is not None and s.best_value is not None]
    gain = "-"
    if recipes:
        gain = f"{100 * statistics.fmean(s.best_value - s.recipe_value for s in recipes):+.2f}"
    recipe = _pct(statistics.fmean(s.recipe_value for s in recipes)) if recipes else "-"
    saved_epochs = sum(s.saved_epochs for s in a.searches)
    searched = sum(s.trial_epochs for s in a.searches) + saved_epochs
    saved = f"{saved_epochs} ({100 * saved_epochs / searched:.0f}%)" if saved_epochs else "0"
    runs = sum(len(e.values) for e in a.evaluations)
    seconds = sum(s.seconds for s in a.searches) + sum(e.seconds for e in a.evaluations)
    return [
        a.arm, f"{complete}/{pruned}/{failed}", _pct(best.best_value if best else None), recipe, gain,
        interval_text(a.test), str(runs), f"{sum(s.compute for s in a.searches):g}", f"{seconds:.0f}", saved,
        _best_params(best) if best else "-",
    ]  # fmt: skip


def _design(verdict: Verdict) -> str:
    """``2 replicates x 12 trials x 3 seeds per arm`` (trials: finished per search)."""
    return (f"{plural(verdict.replicates, 'replicate')} x {plural(verdict.trials, 'trial')} x "
            f"{plural(verdict.seeds, 'seed')} per arm")  # fmt: skip


def format_verdict(verdict: Verdict) -> list[str]:
    """The verdict lines, family, power, ranking, warnings and notes (without the table).

    With one replicate the header and every line say what was measured (training noise
    between two incumbents) and give no verdict on the arms (:func:`search.results.verdict.verdict_line`).
    """
    if verdict.replicates >= 2:
        lines = [f"verdict ({_design(verdict)}; per-comparison 95% t intervals over replicate means; "
                 "an interval end beyond the possible range is shown clipped):"]  # fmt: skip
    else:
        lines = [f"measured ({_design(verdict)}; 95% t intervals over seeds cover training noise only, not the "
                 "search's luck; no verdict on the arms with one replicate):"]  # fmt: skip
    lines += [f"  {line}" for line in verdict.lines] or ["  no LARS arm with a plain twin of the same optimizer"]
    if verdict.family:
        lines.append("the lines as a family:")
        lines += [f"  {line}" for line in verdict.family]
    if verdict.power:
        lines.append("power (two-sided 5% test, from the observed spread of replicate means):")
        lines += [f"  {line}" for line in verdict.power]
    elif verdict.replicates < 2 and verdict.lines:
        lines.append("power: not known with one replicate (the spread between searches is not measured)")
    if verdict.ranking:
        if verdict.replicates >= 2:
            lines.append("ranking by test accuracy (rank: 1 + the arms ahead by the pairwise 95% interval; "
                         "tied: the pairwise interval holds 0):")  # fmt: skip
        else:
            lines.append("incumbents by test accuracy (training noise only, not a ranking of the arms; "
                         "tied: the pairwise interval over seeds holds 0 or there is none):")  # fmt: skip
        for rank, arm, tied in verdict.ranking:
            tail = f" (tied with {', '.join(tied)})" if tied else ""
            lines.append(f"  {rank}. {arm} {interval_text(verdict.arm(arm).test)}{tail}")
    warnings = [w for a in verdict.arms for w in a.warnings]
    if warnings:
        lines.append("boundary warnings (incumbent in the outer 5% of a searched range):")
        lines += [f"  {w}" for w in warnings]
    lines += [f"note: {n}" for n in verdict.notes]
    return lines


def format_compare(storage: Any, name: str, verdict: Verdict | None = None) -> str:
    """The arms table of ``name``, the verdict lines, the ranking and the warnings.

    ``verdict``: the one :func:`load_verdict` computed already, if the caller has it.
    """
    verdict = verdict or load_verdict(storage, name)
    headers = ["arm", "trials C/P/F", "best val %", "recipe val %", "tuning gain", "test % [95% CI]", "test runs",
               "trial-epochs", "seconds", "saved by pruning", "best trial"]  # fmt: skip
    lines = [
        f"compare {name}: final evaluation = each search's best trial (validation) retrained with "
        f"{plural(verdict.seeds, 'seed')} on the test set; {plural(verdict.replicates, 'search', 'searches')} per arm",
        format_table(headers, [_arm_row(a) for a in verdict.arms]),
        "",
        *format_verdict(verdict),
    ]
    if verdict.replicates > 1:
        rows = []
        for a in verdict.arms:
            for s, e in zip(a.searches, a.evaluations):
                test = statistics.fmean(e.values.values()) if e.values else None
                rows.append([unit_key(a.arm, e.replicate), f"{s.complete}/{s.pruned}/{s.failed}", _pct(s.best_value),
                             _pct(test), f"{s.compute:g}", f"{s.seconds:.0f}", f"{e.seconds:.0f}"])  # fmt: skip
        lines += [
            "",
            "per replicate (compute):",
            format_table(
                ["search", "trials C/P/F", "best val %", "test %", "trial-epochs", "search s", "evaluation s"], rows
            ),
        ]
    failures: dict[str, int] = {}
    for a in verdict.arms:
        for s in a.searches:
            for k, v in s.reasons.items():
                failures.setdefault(a.arm, {})
                failures[a.arm][k] = failures[a.arm].get(k, 0) + v
    if failures:
        lines += ["", "failed/diverged trials by reason:"]
        for arm, reasons in failures.items():
            lines.append(f"  {arm}: " + ", ".join(f"{k} x{v}" for k, v in sorted(reasons.items())))
    ratios = trust_ratio_table(verdict)
    ranges = range_lines(load_arms(storage, name))
    return "\n".join(lines + ([""] + ratios if ratios else []) + ([""] + ranges if ranges else []))


def trust_ratio_table(verdict: Verdict) -> list[str]:
    """What LARS did in each LARS arm's incumbents, one column per replicate (``sgd+lars #11``,
    ``sgd+lars/r1 #4``): per layer, the median [min, max] of its trust ratio over the last epoch it
    trained (``trust_ratio`` of the trial's history); [] without one."""
    columns: dict[str, dict[str, list[float]]] = {}
    for a in verdict.arms:
        for replicate, search in enumerate(a.searches if a.lars else []):
            best = search.best_trial
            history = best.user_attrs.get("history") if best is not None else None
            last = history[-1].get("trust_ratio") if isinstance(history, list) and history else None
            if isinstance(last, dict) and last:
                columns[f"{unit_key(a.arm, replicate)} #{best.number}"] = last
    if not columns:
        return []
    layers = list(dict.fromkeys(layer for ratios in columns.values() for layer in ratios))
    rows = []
    for layer in layers:
        cells = []
        for ratios in columns.values():
            summary = ratios.get(layer)
            cells.append(f"{summary[1]:.3g} [{summary[0]:.3g}, {summary[2]:.3g}]" if summary else "-")
        rows.append([layer, *cells])
    return [
        "trust ratios of each LARS arm's incumbent, last epoch (per layer: median [min, max] over its steps):",
        format_table(["layer", *columns], rows),
    ]
