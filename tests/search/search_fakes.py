"""Fast, deterministic stand-ins for ``objectives.train`` used by the search tests.

``FakeTrain(curve)`` is a ``train(config, report) -> objectives.Result`` whose validation
accuracy at epoch ``e`` is ``curve(config, e)``; it records every config it received.
A curve may return ``float("nan")`` (a diverged epoch: the run stops and the result says
``diverged``) or raise (an objective fault).
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from objectives.train import Result as FakeResult  # the real result type, so the fake keeps its fields

__all__ = ["FakeResult", "FakeTrain", "lr_curve", "write_study"]


def lr_curve(config: dict[str, Any], epoch: int) -> float:
    """Peaks at lr = 10**-1.5 and rises with the epochs: acc = 0.9 - 0.1|log10 lr + 1.5| - 0.3 / 2**e."""
    return 0.9 - 0.1 * abs(math.log10(config["lr"]) + 1.5) - 0.3 * 0.5**epoch


@dataclass
class FakeTrain:
    """``seed_noise=(step, period)``: the test accuracy is the validation accuracy minus ``step * (seed % period)``,
    a percentage for any seed; without it, minus ``0.01 * seed`` (negative for evaluation seeds past 100)."""

    curve: Callable[[dict[str, Any], int], float] = lr_curve
    calls: list = field(default_factory=list)
    seed_noise: tuple[float, int] | None = None

    def _seed_noise(self, seed: int) -> float:
        step, period = self.seed_noise or (0.01, None)
        return step * (seed % period if period else seed)

    def __call__(self, config: dict[str, Any], report=None) -> FakeResult:
        self.calls.append(dict(config))
        history, accuracy = [], 0.0
        for epoch in range(1, config["epochs"] + 1):
            accuracy = self.curve(config, epoch)
            if not math.isfinite(accuracy):
                return FakeResult(
                    accuracy, math.nan, None, history, epoch - 1, True, epoch, 0.01, 1000.0, "cpu", config
                )
            metrics = {
                "val_accuracy": accuracy,
                "val_loss": 1 - accuracy,
                "train_loss": 1 - accuracy,
                "lr": config["lr"],
                "epoch_time_s": 0.001,
                "images_per_s": 900.0 + epoch,
            }
            history.append(metrics)
            if report is not None:
                report(epoch, metrics)
        test = accuracy - self._seed_noise(config["seed"]) if config.get("evaluate_test") else None
        return FakeResult(
            accuracy, 1 - accuracy, test, history, config["epochs"], False, None, 0.01, 1000.0, "cpu", config
        )


def write_study(directory: Path, text: str, name: str = "study.yaml") -> Path:
    path = Path(directory) / name
    path.write_text(textwrap.dedent(text))
    return path
