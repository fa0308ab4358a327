"""Export the best config of a study as YAML that ``lars-search train`` reproduces exactly.

The YAML body is the full plain config the best trial trained (its ``config`` user attr,
every objectives key, defaults filled), so ``lars-search train best.yaml`` trains the
same thing; only ``evaluate_test`` and ``seed`` differ there (test set on, one seed per
run). The header comments say where it came from and show how to build the same
optimizer and schedule with ``lars`` in your own training code::

    lars-search export quickstart --arm sgd+lars -o best.yaml
    lars-search train best.yaml --seeds 3
"""

from __future__ import annotations

from typing import Any

import yaml
from optuna.trial import FrozenTrial

from search.report import StudyNotFoundError, arm_stats, load_arms

__all__ = ["best_trial", "code_snippet", "export_text", "load_config_file"]


def _base(config: dict[str, Any]) -> str:
    """``torch.optim.SGD(groups, lr=0.1, momentum=0.9, nesterov=False)``: the registry's class and keys."""
    from objectives.registry import OPTIMIZERS

    info = OPTIMIZERS[config["optimizer"]]
    return f"torch.optim.{info.cls.__name__}(groups, lr={config['lr']!r}" + "".join(
        f", {key}={config[key]!r}" for key in info.params) + ")"


def best_trial(storage: Any, name: str, arm: str | None = None) -> tuple[str, FrozenTrial]:
    """``(arm, trial)``: the best complete trial of ``arm``, or of the best arm when None."""
    arms = load_arms(storage, name)
    if arm is not None:
        known = [a for a, _ in arms]
        if arm not in known:
            raise StudyNotFoundError(f"study {name!r} has no arm {arm!r}; arms: {', '.join(known)}")
        arms = [(a, s) for a, s in arms if a == arm]
    best: tuple[str, FrozenTrial] | None = None
    for a, study in arms:
        s = arm_stats(a, study)
        if s.best_trial is not None and (best is None or s.best_value > best[1].value):
            best = (a, s.best_trial)
    if best is None:
        where = f"arm {arm!r} of {name!r}" if arm else f"study {name!r}"
        raise StudyNotFoundError(f"{where} has no complete trial yet (run it first: lars-search run STUDY.yaml)")
    if not isinstance(best[1].user_attrs.get("config"), dict):
        raise StudyNotFoundError(f"trial {best[1].number} of {name}/{best[0]} has no recorded config")
    return best


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
            + (f", momentum_form={config['lars_momentum_form']!r})" if config.get("lars_momentum_form", "torch") != "torch" else ")")
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


def export_text(storage: Any, name: str, arm: str | None = None, *, storage_label: str = "") -> str:
    """The YAML document (comments + config) for the best trial of ``name`` (or of ``arm``)."""
    arm, trial = best_trial(storage, name, arm)
    config = trial.user_attrs["config"]
    header = [
        f"lars-search export: best trial of {name}/{arm} (trial {trial.number}), "
        f"validation accuracy {100 * trial.value:.2f}%",
    ]
    if storage_label:
        header.append(f"from storage {storage_label}")
    header += [
        "Reproduce (adds the test set, one run per seed):  lars-search train THIS_FILE.yaml --seeds 3",
        "",
        "The same optimizer and schedule in your own training code:",
        "",
    ] + code_snippet(config).splitlines()
    comments = "\n".join(f"# {line}".rstrip() for line in header)
    body = yaml.safe_dump(config, sort_keys=False, default_flow_style=False)
    return f"{comments}\n{body}"


def load_config_file(path: str) -> dict[str, Any]:
    """Read a config YAML (an export, or hand-written objectives keys) as a plain dict."""
    from search.spec import load_yaml  # the study files' loader: 1e-3 is a number, a repeated key an error

    with open(path, encoding="utf-8") as f:
        data = load_yaml(f.read(), path)
    if not isinstance(data, dict):
        raise ValueError(f"{path}: a config file must be a YAML mapping of objectives keys, got {type(data).__name__}")
    return data
