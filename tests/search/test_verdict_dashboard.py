"""The verdict where users look: optuna-dashboard shows each arm's note (table, verdict, figure) in Chromium."""

from __future__ import annotations

import dataclasses
import json
import threading
import urllib.request
from pathlib import Path

import optuna
import pytest
from browser import CHROMIUM, chromium
from search_fakes import FakeTrain, write_study

from search.dashboard import make_server
from search.results import load_verdict
from search.spec import load_spec
from search.storage import open_storage
from search.study import run_studies

ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"

STUDY = """\
name: dv
objective: {dataset: fashion_mnist, epochs: 2, width: 0.125}
arms: [sgd, sgd+lars]
space: {lr: {low: 1.0e-3, high: 1.0, log: true}, warmup_epochs: 0.0}
budget: {trials: 3}
evaluation: {seeds: 3}
pruner: none
"""


class EvalTrain(FakeTrain):
    def __call__(self, config, report=None):
        result = super().__call__(config, report)
        if config.get("evaluate_test"):
            bonus = 0.02 if config["lars"] else 0.0
            result = dataclasses.replace(result, test_accuracy=0.8 + bonus + 0.002 * (config["seed"] % 3))
        return result


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    tmp = tmp_path_factory.mktemp("verdict-dash")
    url = f"sqlite:///{tmp / 'dv.db'}"
    run_studies(
        load_spec(write_study(tmp, STUDY)), url, train_fn=EvalTrain(), progress=False, validate=lambda c: dict(c)
    )
    server = make_server(url, port=0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server, url
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def _get(server, path: str) -> bytes:
    with urllib.request.urlopen(server.url.removesuffix("/dashboard") + path, timeout=10) as response:
        return response.read()


def _study_id(server, name: str) -> int:
    studies = json.loads(_get(server, "/api/studies"))["study_summaries"]
    return next(s["study_id"] for s in studies if s["study_name"] == name)


def test_each_arm_carries_the_verdict_note_and_its_figure_is_served(served):
    server, url = served
    verdict = load_verdict(open_storage(url, heartbeat=False), "dv")
    assert verdict.lines == [
        "sgd+lars vs sgd: +2.00 points [+1.55, +2.45]: LARS helps"
    ]  # 0.8 + 0.002 k: sd 0.002, t(4)
    for arm in ("sgd", "sgd+lars"):
        detail = json.loads(_get(server, f"/api/studies/{_study_id(server, f'dv/{arm}')}"))
        assert verdict.lines[0] in detail["note"]["body"]
        figure = detail["note"]["body"].split("![test accuracy per arm](", 1)[1].split(")", 1)[0]
        assert _get(server, figure)[:8] == b"\x89PNG\r\n\x1a\n"  # the dashboard serves the plot


@pytest.mark.browser
@pytest.mark.slow  # a few seconds on idle cores
@pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (apt-get install chromium)")
def test_headless_chromium_shows_the_verdict_and_saves_a_screenshot(served, tmp_path):
    server, _ = served
    page = f"{server.url}/studies/{_study_id(server, 'dv/sgd+lars')}/note"  # the study's note page
    dom = chromium(tmp_path, "--dump-dom", page).stdout
    for text in ("Verdict of dv", "sgd+lars vs sgd: +2.00 points [+1.55, +2.45]: LARS helps", "test % [95% CI]"):
        assert text in dom, f"{text!r} not visible on the study page"
    assert "/artifacts/" in dom  # the figure is in the note
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "dashboard-verdict.png"
    chromium(tmp_path, f"--screenshot={shot}", "--window-size=1280,1400", page)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 5000
