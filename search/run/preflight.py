"""Before a run's first trial: the data set is there and the device exists (one line each, no trial spent).

``lars-search run`` calls both in its own process before it trains or starts workers
(:mod:`search.cli`); a mistake here would otherwise show as a FAIL in the first trial of
every arm.
"""

from __future__ import annotations

from typing import Any

import torch

from objectives.config import DEFAULT_CONFIG
from objectives.data import load_dataset
from search.errors import UserError

__all__ = ["check_data", "check_device"]


def check_data(spec: Any) -> None:
    """Find (or download) the study's dataset before any trial starts.

    Without this, missing data would only show in the first trial, as a FAIL that takes
    one slot of the arm's budget. Reads the small test split once.
    """
    dataset = spec.objective.get("dataset", DEFAULT_CONFIG["dataset"])
    load_dataset(dataset, train=False, data_dir=spec.objective.get("data_dir"))


def check_device(spec: Any, device: str | None) -> None:
    """``cuda`` or ``cuda:N`` requested (``--device`` or ``objective.device``) on a machine without it: one line, no trial."""
    wanted = device or spec.objective.get("device", "auto")
    where = f"--device {wanted}" if device else f"{spec.source}: objective.device is {wanted!r}"
    if wanted.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"{where}, but CUDA is not available on this machine (use --device cpu or auto)")
    if wanted.startswith("cuda:") and int(wanted[5:]) >= torch.cuda.device_count():
        raise UserError(f"{where}, but this machine has {torch.cuda.device_count()} CUDA device(s)")
