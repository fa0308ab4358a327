"""A fast fake objective for worker tests: ``train(config, report) -> FakeResult``.

No torch: validation accuracy is a smooth function of the config's ``lr``; each epoch
sleeps ``$FAKE_OBJECTIVE_SLEEP`` seconds (default 0.02). Fault injection through files
in ``$FAKE_OBJECTIVE_DIR``:

* ``hang-<pid>`` exists -> the next trial of process ``pid`` writes ``hung-<pid>``
  (holding the trial number) and sleeps for an hour (a test then kills it with SIGKILL);
* every trial appends ``<pid> <lr>`` to ``trials.log`` when it finishes.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field
from typing import Any


@dataclass
class FakeResult:
    val_accuracy: float
    val_loss: float
    epochs_completed: int
    diverged: bool = False
    diverged_epoch: int | None = None
    images_per_s: float = 1000.0
    device: str = "cpu"
    history: list = field(default_factory=list)


def validate_config(config: dict[str, Any]) -> dict[str, Any]:
    return dict(config)


def train(config: dict[str, Any], report=None) -> FakeResult:
    directory = os.environ.get("FAKE_OBJECTIVE_DIR")
    pid = os.getpid()
    if directory and os.path.exists(os.path.join(directory, f"hang-{pid}")):
        with open(os.path.join(directory, f"hung-{pid}"), "w") as f:
            f.write(str(config.get("lr")))
        time.sleep(3600)
    sleep = float(os.environ.get("FAKE_OBJECTIVE_SLEEP", "0.02"))
    lr = float(config.get("lr", 0.1))
    accuracy = 0.9 - 0.1 * abs(math.log10(lr) + 1.5)
    epochs = int(config.get("epochs", 1))
    for epoch in range(1, epochs + 1):
        time.sleep(sleep)
        if report is not None:
            report(
                epoch,
                {
                    "val_accuracy": accuracy * epoch / epochs,
                    "val_loss": 1.0 - accuracy,
                    "train_loss": 1.0,
                    "lr": lr,
                    "epoch_time_s": sleep,
                },
            )
    if directory:
        with open(os.path.join(directory, "trials.log"), "a") as f:
            f.write(f"{pid} {lr!r}\n")
    return FakeResult(val_accuracy=accuracy, val_loss=1.0 - accuracy, epochs_completed=epochs)
