"""The verdict where users look: optuna-dashboard shows each arm's note (table, verdict, figure) in Chromium.

The note is Markdown (issue 23): the compare table is an HTML table, the verdict lines are list items of
plain text, the figure an image; a note written before a later partial run changed the arms says it is
outdated until the next verdict replaces it.
"""

from __future__ import annotations

import dataclasses
import json
import re
import threading
import urllib.request
from pathlib import Path

import optuna
import pytest
from browser import CHROMIUM, chromium
from optuna_dashboard import get_note
from search_fakes import FakeTrain, write_study

from search.results.dashboard import make_server
from search.results.read import load_verdict
from search.run.loop import run_studies
from search.spec.study_file import load_spec
from search.storage.database import open_storage

ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"

STUDY = """\
name: dv
objective: {dataset: fashion_mnist, epochs: 2, width: 0.125}
arms: [sgd, sgd+lars]
space: {lr: {low: 1.0e-3, high: 1.0, log: true}, warmup_epochs: 0.0}
budget: {trials: 3}
evaluation: {seeds: 3}
replicates: 2
pruner: none
"""


class EvalTrain(FakeTrain):
    """Test accuracy 0.8 (+0.02 with LARS) + 0.002 (seed mod 3) + 0.001 per replicate (seeds 1000 r + 1 + k)."""

    def __call__(self, config, report=None):
        result = super().__call__(config, report)
        if config.get("evaluate_test"):
            bonus = 0.02 if config["lars"] else 0.0
            seed = config["seed"]
            result = dataclasses.replace(
                result, test_accuracy=0.8 + bonus + 0.002 * (seed % 3) + 0.001 * (seed // 1000)
            )
        return result


# replicate means 0.802, 0.803 (sgd) and 0.822, 0.823 (sgd+lars): d = 0.02, s_p = 0.000707 = se, t(0.975, 2)
# = 4.302653: [+1.70, +2.30]
LINE = "sgd+lars vs sgd: +2.00 points [+1.70, +2.30]: LARS helps"


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


def test_each_arm_carries_the_verdict_note_as_markdown_and_its_figure_is_served(served):
    server, url = served
    verdict = load_verdict(open_storage(url, heartbeat=False), "dv")
    assert verdict.lines == [LINE]
    for arm in ("sgd", "sgd+lars"):
        body = json.loads(_get(server, f"/api/studies/{_study_id(server, f'dv/{arm}')}"))["note"]["body"]
        lines = body.splitlines()
        assert lines[0] == "## Verdict of dv" and "```" not in body  # Markdown, not a code block
        assert f"- {LINE}" in lines  # a list item of plain text
        header = next(line for line in lines if line.startswith("| arm |"))
        assert header.startswith("| arm | trials C/P/F | best val % | recipe val % | tuning gain | test % [95% CI] |")
        assert lines[lines.index(header) + 1].startswith("| --- | --- |")
        figure = body.split("![test accuracy per arm](", 1)[1].split(")", 1)[0]
        assert _get(server, figure)[:8] == b"\x89PNG\r\n\x1a\n"  # the dashboard serves the plot


def test_a_note_written_before_a_later_partial_run_is_marked_outdated_then_replaced(tmp_path):
    from search.run.loop import run_studies

    url = f"sqlite:///{tmp_path / 'o.db'}"
    spec = load_spec(write_study(tmp_path, STUDY))
    run_studies(spec, url, train_fn=EvalTrain(), progress=False, validate=lambda c: dict(c))
    storage = open_storage(url, heartbeat=False)
    # a later partial run: one more trial per search, no final evaluation
    run_studies(spec, url, n_trials=4, train_fn=EvalTrain(), progress=False, validate=lambda c: dict(c),
                evaluate=False)  # fmt: skip
    for arm in ("sgd", "sgd+lars"):
        study = optuna.load_study(study_name=f"dv/{arm}", storage=storage)
        assert study.user_attrs["verdict"].startswith("outdated: a run started ")
        body = get_note(study)
        assert body.startswith("## Verdict of dv: outdated\n\n**Outdated**: a run started ")
        assert "lars-search compare dv" in body and f"- {LINE}" in body and "![" not in body
    # the next complete run replaces it
    run_studies(spec, url, n_trials=4, train_fn=EvalTrain(), progress=False, validate=lambda c: dict(c))
    study = optuna.load_study(study_name="dv/sgd", storage=storage)
    assert not study.user_attrs["verdict"].startswith("outdated")
    body = get_note(study)
    assert body.startswith("## Verdict of dv\n") and "Outdated" not in body


@pytest.mark.browser
@pytest.mark.slow  # a few seconds on idle cores
@pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (apt-get install chromium)")
def test_headless_chromium_renders_the_note_as_markdown_and_saves_a_screenshot(served, tmp_path):
    server, _ = served
    page = f"{server.url}/studies/{_study_id(server, 'dv/sgd+lars')}/note"  # the study's note page
    dom = chromium(tmp_path, "--dump-dom", page).stdout
    assert "Verdict of dv</h2>" in dom
    assert f"<li>{LINE}</li>" in dom  # the verdict line as text in a list, not in a code block
    assert "<table" in dom and "<th>test % [95% CI]</th>" in dom and "<td>sgd+lars</td>" in dom
    assert "<pre" not in dom
    image = re.search(r'<img alt="test accuracy per arm"[^>]* src="(/artifacts/[^"]+)"', dom)
    assert image is not None and _get(server, image.group(1))[:8] == b"\x89PNG\r\n\x1a\n"  # the figure, shown
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "dashboard-verdict.png"
    chromium(tmp_path, f"--screenshot={shot}", "--window-size=1280,1400", page)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 5000
