"""Export the verdict's best config as YAML that ``lars-search train`` reproduces exactly.

Without ``--arm`` the arm is the verdict's best (highest mean test accuracy of the final
evaluation, :mod:`search.results.report`); with ``--arm`` that arm. The trial is the arm's
incumbent (best validation accuracy) of the replicate whose incumbent validated best;
the test set never picks it. The YAML body is the full plain config that trial trained
(its ``config`` user attr, every objectives key, defaults filled), so ``lars-search
train best.yaml`` trains the same thing; only ``evaluate_test`` and ``seed`` differ there
(test set on, one seed per run). The header comments make the file traceable (study,
arm, trial, replicate, the verdict line and test accuracy with its interval, package
version and git commit, data set and sizes, the command that re-runs it) and show how to
build the same optimizer and schedule with ``lars`` in your own training code::

    lars-search export quickstart --arm sgd+lars -o best.yaml
    lars-search train best.yaml --seeds 3 --first-seed 1   # the final evaluation's seeds: its test accuracy
    lars-search train best.yaml --seeds 1                  # the config's seed: the trial's validation accuracy
"""

from __future__ import annotations

import os
import subprocess
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import yaml
from optuna.trial import FrozenTrial

from objectives.registry import OPTIMIZERS
from search.errors import StudyNotFoundError
from search.names import StudyName
from search.results.read import Verdict, load_verdict
from search.results.verdict import clip
from search.seeds import evaluation_seed
from search.spec.study_file import load_yaml
from search.text import plural

__all__ = ["best_trial", "code_snippet", "export_document", "load_config_file", "train_command"]


def _base(config: dict[str, Any]) -> str:
    """``torch.optim.SGD(groups, lr=0.1, momentum=0.9, nesterov=False)``: the registry's class and keys."""
    info = OPTIMIZERS[config["optimizer"]]
    return (
        f"torch.optim.{info.torch_name}(groups, lr={config['lr']!r}"
        + "".join(f", {key}={config[key]!r}" for key in info.params)
        + ")"
    )


def best_trial(storage: Any, name: str, arm: str | None = None) -> tuple[str, FrozenTrial]:
    """``(arm, trial)``: the incumbent of ``arm``, or of the verdict's best arm when None (see the module docstring)."""
    arm, trial, _, _ = _choose(storage, name, arm)
    return arm, trial


def _choose(storage: Any, name: str, arm: str | None) -> tuple[str, FrozenTrial, int, Verdict]:
    verdict = load_verdict(storage, name)
    known = [a.arm for a in verdict.arms]
    if arm is not None and arm not in known:
        raise StudyNotFoundError(f"study {name!r} has no arm {arm!r}; arms: {', '.join(known)}")
    if arm is None:
        if verdict.best_arm is None:
            why = "; ".join(verdict.notes) or "no arm has a finished final evaluation"
            raise StudyNotFoundError(f"study {name!r} has no verdict yet ({why}); pass --arm ARM to export an arm's "
                                     "best trial")  # fmt: skip
        arm = verdict.best_arm
    result = verdict.arm(arm)
    searches = [(r, s) for r, s in enumerate(result.searches) if s.best_trial is not None]
    if not searches:
        trials = sum(s.trials for s in result.searches)
        if trials and all(s.complete == 0 and sum(s.reasons.values()) >= s.trials for s in result.searches):
            raise StudyNotFoundError(f"arm {arm!r} of {name!r} has no complete trial: all {trials} trials "
                                     "failed or diverged (see lars-search compare for the reasons)")  # fmt: skip
        where = f"arm {arm!r} of {name!r}"
        if trials:
            raise StudyNotFoundError(f"{where} has no complete trial ({trials} finished, none complete; see lars-search "
                                     "compare)")  # fmt: skip
        raise StudyNotFoundError(f"{where} has no complete trial yet (run it first: lars-search run STUDY.yaml)")
    replicate, search = max(searches, key=lambda rs: (rs[1].best_value, -rs[0]))
    trial = search.best_trial
    if not isinstance(trial.user_attrs.get("config"), dict):
        raise StudyNotFoundError(f"trial {trial.number} of {search.study_name} has no recorded config")
    return arm, trial, replicate, verdict


def _schedule_kwargs(kind: str, params: dict[str, Any]) -> list[str]:
    """The schedule's keyword arguments, epochs turned into steps as objectives does."""
    out = []
    for key, value in params.items():
        if kind == "step" and key == "step_size":
            out.append(f"step_size=max(1, round({value!r} * steps_per_epoch))")
        elif kind == "multistep" and key == "milestones":
            out.append(f"milestones=sorted({{max(1, round(m * steps_per_epoch)) for m in {list(value)!r}}})")
        elif kind == "exponential" and key == "gamma":
            out.append(f"gamma={value!r} ** (1 / steps_per_epoch)")
        else:
            out.append(f"{key}={value!r}")
    return out


def code_snippet(config: dict[str, Any]) -> str:
    """Python that builds ``config``'s optimizer and schedule with ``lars`` for a ``model``.

    The reader defines ``model`` and ``steps_per_epoch`` (batches per epoch) and calls
    ``optimizer.step()`` then ``scheduler.step()`` once per batch.
    """
    lines = [
        "import torch",
        "import lars",
        "",
        "# model = ...; steps_per_epoch = len(train_loader)",
        f"groups = lars.param_groups(model, weight_decay={config['weight_decay']!r})  # no decay/adaptation for biases, BN",
        f"optimizer = {_base(config)}",
    ]
    if config.get("lars"):
        lines.append(
            f"optimizer = lars.LARS(optimizer, trust_coefficient={config['trust_coefficient']!r}, "
            f"eps={config['lars_eps']!r}, mode={config.get('lars_mode')!r}, clip={config.get('lars_clip', False)!r}"
            + (
                f", momentum_form={config['lars_momentum_form']!r})"
                if config.get("lars_momentum_form", "torch") != "torch"
                else ")"
            )
        )
    kind = config["schedule"]
    args = [
        "optimizer",
        repr(kind),
        f"total_steps={config['epochs']!r} * steps_per_epoch",
        f"warmup_steps=min({config['epochs']!r} * steps_per_epoch, round({config['warmup_epochs']!r} * steps_per_epoch))",
    ] + _schedule_kwargs(kind, config.get("schedule_params") or {})
    lines.append("scheduler = lars.schedules.warmup_schedule(")
    lines += [f"    {a}," for a in args]
    lines.append(")")
    lines.append("# per batch: loss.backward(); optimizer.step(); scheduler.step(); optimizer.zero_grad()")
    return "\n".join(lines)


def _version() -> str:
    try:
        return version("lars-search")
    except PackageNotFoundError:
        return "unknown (not installed)"


def _commit() -> str:
    """The git commit of the code that runs (``+dirty`` with uncommitted changes), or "unknown"."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

    def git(*args: str) -> str:
        done = subprocess.run(["git", "-C", root, *args], capture_output=True, text=True, timeout=5, check=True)
        return done.stdout.strip()

    try:
        head = git("rev-parse", "--short=12", "HEAD")
        dirty = git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return "unknown (not a git checkout)"
    return f"{head}+dirty" if dirty else head


def train_command(path: str, seeds: int, first_seed: int) -> str:
    """The ``lars-search train`` command that retrains an export with the seeds of its final evaluation."""
    return f"lars-search train {path} --seeds {seeds} --first-seed {first_seed}"


def export_document(
    storage: Any, name: str, arm: str | None = None, *, storage_label: str = "", output: str | None = None
) -> tuple[str, str]:
    """``(the YAML document, the train command that reproduces its test accuracy)`` (see the module docstring).

    The command retrains the trial with the seeds its final evaluation used
    (:func:`search.seeds.evaluation_seed` of the study file's ``objective.seed``), not the
    search's seed the config holds.
    """
    arm, trial, replicate, verdict = _choose(storage, name, arm)
    config = trial.user_attrs["config"]
    result = verdict.arm(arm)
    test = result.test
    if test is not None and test.n:
        shown, clipped = clip(test)
        interval = f" [{100 * shown.low:.2f}, {100 * shown.high:.2f}]" if test.known else ""
        runs = f"{plural(verdict.replicates, 'replicate')} x {plural(verdict.seeds, 'seed')}"
        kind = "95% interval, clipped to [0, 100]" if clipped else "95% interval"
        if verdict.replicates < 2 and test.known:
            kind += ", training noise only"
        test_text = f"{100 * test.mean:.2f}%{interval} ({kind}; {runs})"
    else:
        test_text = "not evaluated yet"
    lines = [line for line in verdict.lines if line.startswith(f"{arm} vs ") or f" vs {arm}:" in line]
    chosen = "the verdict's best arm" if arm == verdict.best_arm else "chosen with --arm"
    search_name = StudyName(name, arm, replicate).format()
    path = output if output not in (None, "-") else "THIS_FILE.yaml"
    first = evaluation_seed(verdict.objective_seed, replicate, 0)
    command = train_command(path, verdict.seeds, first)
    seeds = f"seeds {first}..{first + verdict.seeds - 1}" if verdict.seeds > 1 else f"seed {first}"
    header = [
        f"lars-search export: best trial of {search_name} (trial {trial.number}), "
        f"validation accuracy {100 * trial.value:.2f}%",
        f"study: {name}   arm: {arm} ({chosen})   replicate: {replicate}   trial: {trial.number}",
        f"test accuracy (final evaluation): {test_text}",
    ]
    label = "verdict" if verdict.replicates >= 2 else "measured"  # one replicate: no verdict (search.results.verdict)
    header += [f"{label}: {line}" for line in lines] or [f"{label}: no LARS-vs-plain line for this arm"]
    header += [
        f"data: {config.get('dataset')}, n_train {config.get('n_train')}, val_size {config.get('val_size')}, "
        f"batch_size {config.get('batch_size')}, epochs {config.get('epochs')}",
        f"lars-search {_version()}, git commit {_commit()}",
    ]
    if storage_label:
        header.append(f"from storage {storage_label}")
    header += [
        f"Re-run (the test set on, {seeds} of this trial's final evaluation):  {command}",
        "",
        "The same optimizer and schedule in your own training code:",
        "",
    ] + code_snippet(config).splitlines()
    comments = "\n".join(f"# {line}".rstrip() for line in header)
    body = yaml.safe_dump(config, sort_keys=False, default_flow_style=False)
    return f"{comments}\n{body}", command


def load_config_file(path: str) -> dict[str, Any]:
    """Read a config YAML (an export, or hand-written objectives keys) as a plain dict."""
    with open(path, encoding="utf-8") as f:
        data = load_yaml(f.read(), path)
    if not isinstance(data, dict):
        raise ValueError(f"{path}: a config file must be a YAML mapping of objectives keys, got {type(data).__name__}")
    return data
