"""``lars-search run --gpus``: a real study whose worker trains on its GPU.

Run on the project's GPU machine; skipped where there is no CUDA.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]
FASHION = Path("/usr/share/datasets/fashion-mnist")

pytestmark = [
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
    pytest.mark.skipif(
        not (FASHION / "train-images-idx3-ubyte.gz").exists(),
        reason="Fashion-MNIST not installed (apt-get install dataset-fashion-mnist)",
    ),
]

STUDY = """\
name: gpu
objective: {dataset: fashion_mnist, model: vgg16, width: 0.25, n_train: 4000, val_size: 1000,
            epochs: 3, batch_size: 128, device: auto}
arms: [sgd, sgd+lars, adam+lars]
space: {warmup_epochs: 0.0}
budget: {trials: 3}
"""


def test_run_with_gpus_trains_every_trial_on_the_gpu(tmp_path):
    (tmp_path / "gpu.yaml").write_text(STUDY)
    url = f"sqlite:///{tmp_path / 'gpu.db'}"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    done = subprocess.run(
        [sys.executable, "-m", "search.cli", "run", "gpu.yaml", "--gpus", "0", "--storage", url],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    name = torch.cuda.get_device_name(0)
    for arm in ("sgd", "sgd+lars", "adam+lars"):
        trials = optuna.load_study(study_name=f"gpu/{arm}", storage=url).trials
        finished = [t for t in trials if t.state in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)]
        assert len(finished) == 3, [(t.state, t.user_attrs.get("fail_reason")) for t in trials]
        assert all(t.user_attrs["config"]["device"] == "cuda" for t in finished)  # the worker's --device
        complete = [t for t in finished if t.state == optuna.trial.TrialState.COMPLETE]
        assert complete  # the first trials of an arm are never pruned (pruner start-up)
        for t in complete:  # a pruned trial stops before train() returns what it ran on
            assert t.user_attrs["device"] == f"cuda:0 ({name})"
            assert t.user_attrs["images_per_s"] > 0
    print(done.stdout[-1500:])  # the compare table, for the log of the GPU run
