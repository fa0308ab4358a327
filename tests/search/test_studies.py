"""search.run.studies: what a study file leaves in the storage, and which stored studies it may join."""

from __future__ import annotations

import json
import sqlite3
import threading
import urllib.request
from pathlib import Path

import optuna
from search_fakes import FakeTrain, write_study

from search.results.dashboard import make_server
from search.run.loop import run_studies
from search.spec.study_file import load_spec
from search.storage.database import open_storage

PASSWORD = "Sup3rSecretPW"
SECRET_STUDY = f"""\
name: sec
objective: {{epochs: 1}}
arms: [sgd]
budget: {{trials: 1}}
evaluation: {{seeds: 1}}
pruner: none
storage: postgresql+psycopg://lars:{PASSWORD}@db-host/lars
"""


def _identity(config):
    return dict(config)


def _dump(db: Path) -> str:
    """Every row of every table, as SQL text."""
    with sqlite3.connect(db) as connection:
        return "\n".join(connection.iterdump())


def _served(url: str) -> str:
    """What the dashboard serves: GET /api/studies and /api/studies/<id> of every study."""
    server = make_server(url, port=0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    root = server.url.removesuffix("/dashboard")
    try:
        with urllib.request.urlopen(root + "/api/studies", timeout=10) as response:
            texts = [response.read().decode()]
        for summary in json.loads(texts[0])["study_summaries"]:
            with urllib.request.urlopen(f"{root}/api/studies/{summary['study_id']}", timeout=10) as response:
                texts.append(response.read().decode())
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
    return "\n".join(texts)


def test_the_storage_password_of_a_study_file_is_never_stored_nor_served(tmp_path):
    """#26 item 1: `storage:` was stored verbatim as the `study_file` user attr and served by the dashboard."""
    db = tmp_path / "sec.db"
    url = f"sqlite:///{db}"
    spec = load_spec(write_study(tmp_path, SECRET_STUDY))
    run_studies(spec, url, train_fn=FakeTrain(), progress=False, validate=_identity)
    stored = optuna.load_study(study_name="sec/sgd", storage=open_storage(url, heartbeat=False)).user_attrs
    assert "postgresql+psycopg://lars:***@db-host/lars" in stored["study_file"]
    served = _served(url)
    assert "sec/sgd" in served and "study_file" in served
    assert PASSWORD not in served
    raw = b"".join(p.read_bytes() for p in tmp_path.rglob("*") if p.is_file() and p.name.startswith("sec.db"))
    assert PASSWORD.encode() not in raw  # nor in the file's bytes (its WAL included)


def test_a_later_run_masks_a_password_an_earlier_version_stored(tmp_path):
    """#26 item 1: studies stored before the fix keep no password once the file runs again."""
    db = tmp_path / "old.db"
    url = f"sqlite:///{db}"
    path = write_study(tmp_path, SECRET_STUDY)
    spec = load_spec(path)
    study = optuna.create_study(study_name="sec/sgd", storage=open_storage(url, heartbeat=False),
                                direction="maximize")  # fmt: skip
    study.set_user_attr("study_file", path.read_text())  # as every earlier version stored it
    study.set_user_attr("arm", "sgd")
    study.set_user_attr("spec_version", 1)
    assert PASSWORD in _dump(db)
    run_studies(spec, url, train_fn=FakeTrain(), progress=False, validate=_identity)
    assert PASSWORD not in _dump(db)
    assert PASSWORD not in _served(url)


def test_a_second_study_file_with_the_same_name_and_another_objective_is_refused(tmp_path, capsys):
    """#26 item 6: file B (other arms, 3 epochs) joined file A's studies (1 epoch) without a word."""
    from search.cli.command import main

    a = write_study(tmp_path, "name: same\nobjective: {epochs: 1}\narms: [sgd]\nbudget: {trials: 1}\n", "a.yaml")
    b = write_study(tmp_path, "name: same\nobjective: {epochs: 3}\narms: [adam]\nbudget: {trials: 1}\n", "b.yaml")
    db = f"sqlite:///{tmp_path / 'same.db'}"
    assert main(["run", str(a), "--storage", db, "-q"], train_fn=FakeTrain()) == 0
    capsys.readouterr()
    assert main(["run", str(b), "--storage", db, "-q"], train_fn=FakeTrain()) == 2
    assert capsys.readouterr().err == (
        f"lars-search: error: {b}: name 'same' is taken in {db} by another study file (stored with 'same/sgd'), "
        "and objective.epochs was 1, now 3 (the arms' trials would not be comparable; use a new name or the "
        "original file)\n"
    )
    names = {s.study_name for s in open_storage(db, heartbeat=False).get_all_studies()}
    assert names == {"same/sgd", "same/sgd/eval"}
    c = write_study(tmp_path, "name: same\nobjective: {epochs: 1}\narms: [adam]\nbudget: {trials: 1}\n", "c.yaml")
    assert main(["run", str(c), "--storage", db, "-q"], train_fn=FakeTrain()) == 0  # same objective: an arm added
