"""The text a user reads, pinned byte for byte: ``status``, ``compare`` and the exported YAML of one fixed storage.

The storage comes from a deterministic fake trainer (seeded TPE, :class:`FakeTrain`), 2 arms x 2 replicates x
3 trials, each incumbent retrained with 2 seeds; the trials' wall times are then set to a fixed 0.25 s, since the
real ones depend on the machine. The export's ``git commit`` line and the temporary storage path are the only
parts left out. A refactor must leave these files unchanged; a deliberate change to the text rewrites them with
``LARS_SEARCH_UPDATE_GOLDEN=1 pytest tests/search/test_golden.py`` and shows up in the diff.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest
from search_fakes import FakeTrain, write_study

from search.cli.command import main

GOLDEN = Path(__file__).parent / "golden"

STUDY = """\
name: g
objective: {epochs: 2}
arms: [sgd, sgd+lars]
budget: {trials: 3}
replicates: 2
evaluation: {seeds: 2}
sampler: {type: tpe, seed: 0}
"""


def GoldenTrain() -> FakeTrain:
    """FakeTrain whose test accuracy stays a percentage for every evaluation seed (replicate 1's are 1001, 1002)."""
    return FakeTrain(seed_noise=(0.002, 7))


@pytest.fixture(scope="module")
def storage(tmp_path_factory):
    directory = tmp_path_factory.mktemp("golden")
    db = directory / "g.db"
    assert main(["run", str(write_study(directory, STUDY)), "--storage", f"sqlite:///{db}", "-q"],
                train_fn=GoldenTrain()) == 0  # fmt: skip
    with sqlite3.connect(db) as connection:  # Optuna's schema: user attributes are JSON text per trial
        connection.execute("UPDATE trial_user_attributes SET value_json = '0.25' WHERE key = 'wall_time_s'")
    return f"sqlite:///{db}"


def output(capsys, storage: str, *argv: str) -> str:
    capsys.readouterr()
    assert main([*argv, "--storage", storage]) == 0
    text = capsys.readouterr().out
    keep = [line for line in text.splitlines(keepends=True) if ", git commit " not in line]
    return "".join(keep).replace(storage, "sqlite:///STORAGE")


@pytest.mark.parametrize(
    "name, argv", [("status", ["status", "g"]), ("compare", ["compare", "g"]), ("export", ["export", "g"])]
)
def test_output_is_byte_identical_to_the_golden_file(storage, capsys, name, argv):
    text = output(capsys, storage, *argv)
    path = GOLDEN / f"{name}.txt"
    if os.environ.get("LARS_SEARCH_UPDATE_GOLDEN"):
        path.write_text(text)
    assert text == path.read_text()
