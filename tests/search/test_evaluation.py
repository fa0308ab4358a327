"""Final evaluation, replicates and recipes: stored, resumed and read back through Optuna's API."""

from __future__ import annotations

import dataclasses
import math
import os
import signal
from unittest.mock import ANY

import optuna
import pytest
from optuna.trial import TrialState
from search_fakes import FakeTrain, write_study

from search.cli.command import main
from search.errors import SpecError
from search.names import StudyName
from search.results.read import load_verdict
from search.run.loop import run_studies
from search.seeds import evaluation_seed
from search.spec.study_file import load_spec
from search.storage.database import open_storage

STUDY = """\
name: ev
objective: {dataset: fashion_mnist, epochs: 2, width: 0.125, seed: 5}
arms: [sgd, sgd+lars]
space: {lr: {low: 1.0e-3, high: 1.0, log: true}, warmup_epochs: 0.0}
budget: {trials: 3}
evaluation: {seeds: 3}
pruner: none
"""


@dataclasses.dataclass
class EvalTrain(FakeTrain):
    """FakeTrain whose test accuracy is its validation accuracy minus 0.001 x (seed mod 10)."""

    seed_noise: tuple[float, int] | None = (0.001, 10)


@dataclasses.dataclass
class InterruptSecondSeed(EvalTrain):
    """Ctrl-C (KeyboardInterrupt) as the second evaluation seed starts training."""

    evaluations: int = 0

    def __call__(self, config, report=None):
        if config.get("evaluate_test"):
            self.evaluations += 1
            if self.evaluations == 2:
                raise KeyboardInterrupt
        return super().__call__(config, report)


@pytest.fixture
def db(tmp_path):
    return f"sqlite:///{tmp_path / 'ev.db'}"


def load(db, name):
    return optuna.load_study(study_name=name, storage=open_storage(db, heartbeat=False))


def identity(config):
    return dict(config)


def test_study_names_parse_back():
    assert StudyName.parse("q/sgd") == StudyName("q", "sgd", 0, False)
    assert StudyName.parse("q/sgd+lars/r2") == StudyName("q", "sgd+lars", 2, False)
    assert StudyName.parse("q/sgd/r1/eval") == StudyName("q", "sgd", 1, True)
    assert StudyName.parse("q/sgd/eval") == StudyName("q", "sgd", 0, True)
    assert StudyName.parse("q") is None and StudyName.parse("q/sgd/x") is None and StudyName.parse("q/a/r0") is None
    assert (evaluation_seed(5, 0, 0), evaluation_seed(5, 0, 2), evaluation_seed(5, 1, 0)) == (6, 8, 1006)


def test_incumbent_is_retrained_with_fresh_seeds_on_the_test_set(tmp_path, db):
    spec = load_spec(write_study(tmp_path, STUDY))
    fake = EvalTrain()
    run_studies(spec, db, train_fn=fake, progress=False, validate=identity)
    evaluated = [c for c in fake.calls if c["evaluate_test"]]
    assert len(fake.calls) == 2 * 3 + 2 * 3 and len(evaluated) == 6
    for arm in ("sgd", "sgd+lars"):
        search, evaluation = load(db, f"ev/{arm}"), load(db, f"ev/{arm}/eval")
        best = search.best_trial
        trials = evaluation.get_trials(states=(TrialState.COMPLETE,))  # Optuna's own API reads the runs
        assert [(t.params["incumbent_trial"], t.params["seed"]) for t in trials] == [
            (best.number, s) for s in (6, 7, 8)
        ]
        for t in trials:
            assert t.user_attrs["config"] == {
                **best.user_attrs["config"],
                "seed": t.params["seed"],
                "evaluate_test": True,
                "progress": False,
            }
            assert t.value == pytest.approx(best.value - 0.001 * (t.params["seed"] % 10))
        assert len(search.trials) == 3  # the evaluation never entered the search's history
    verdict = load_verdict(open_storage(db, heartbeat=False), "ev")
    assert [len(v) for a in verdict.arms for v in a.values] == [3, 3]
    assert verdict.lines[0].startswith("sgd+lars vs sgd: ")
    # the verdict is stored where users look: study user attr and dashboard note
    from optuna_dashboard import get_note

    study = load(db, "ev/sgd")
    assert study.user_attrs["verdict"].splitlines()[1] == f"  {verdict.lines[0]}"
    note = get_note(study)
    assert "## Verdict of ev" in note and verdict.lines[0] in note and "test % [95% CI]" in note
    assert "![test accuracy per arm](/artifacts/" in note


def test_ctrl_c_in_the_final_evaluation_resumes_without_redoing_finished_seeds(tmp_path, db):
    spec = load_spec(write_study(tmp_path, STUDY))
    first = InterruptSecondSeed()
    with pytest.raises(KeyboardInterrupt):
        run_studies(spec, db, train_fn=first, progress=False, validate=identity)
    done = [c["seed"] for c in first.calls if c["evaluate_test"]]
    assert done == [6]  # seed 6 finished, seed 7 was interrupted
    trials = load(db, "ev/sgd/eval").trials
    assert [t.state for t in trials] == [TrialState.COMPLETE, TrialState.FAIL, TrialState.WAITING, TrialState.WAITING]
    assert trials[1].user_attrs["fail_reason"] == "interrupted (Ctrl-C) during epoch 1"  # as a search trial's
    again = EvalTrain()
    run_studies(spec, db, train_fn=again, progress=False, validate=identity)
    runs = [(c["optimizer"], c["lars"], c["seed"]) for c in again.calls]
    assert sorted(runs) == [("sgd", False, 7), ("sgd", False, 8), ("sgd", True, 6), ("sgd", True, 7), ("sgd", True, 8)]
    trials = load(db, "ev/sgd/eval").trials
    assert sorted(t.params["seed"] for t in trials if t.state == TrialState.COMPLETE) == [6, 7, 8]
    assert len(trials) == 4  # the retry ran in the interrupted seed's slot; nothing twice


def test_a_second_ctrl_c_while_an_evaluation_seed_is_recorded_loses_no_seed(tmp_path, db, monkeypatch, capsys):
    """#26 item 3: the seed ended FAIL without a retry, and no rerun ever trained it again."""
    path = write_study(tmp_path, STUDY.replace("arms: [sgd, sgd+lars]", "arms: [sgd]"))

    tell = optuna.Study.tell

    def tell_during_second_ctrl_c(self, *args, **kwargs):
        if kwargs.get("state") == TrialState.FAIL and self.study_name.endswith("/eval"):
            os.kill(os.getpid(), signal.SIGINT)  # the second one, while the interrupted seed is recorded
        return tell(self, *args, **kwargs)

    monkeypatch.setattr(optuna.Study, "tell", tell_during_second_ctrl_c)
    assert (
        main(["run", str(path), "--storage", db, "-q"], train_fn=InterruptSecondSeed()) == 130
    )  # the first Ctrl-C, in seed 7
    monkeypatch.setattr(optuna.Study, "tell", tell)
    assert "Traceback" not in capsys.readouterr().err
    trials = load(db, "ev/sgd/eval").trials
    assert [t.state for t in trials] == [TrialState.COMPLETE, TrialState.FAIL, TrialState.WAITING, TrialState.WAITING]
    assert trials[1].user_attrs["fail_reason"] == "interrupted (Ctrl-C) during epoch 1"
    again = EvalTrain()
    assert main(["run", str(path), "--storage", db, "-q"], train_fn=again) == 0
    assert sorted(c["seed"] for c in again.calls) == [7, 8]
    trials = load(db, "ev/sgd/eval").trials
    assert sorted(t.params["seed"] for t in trials if t.state == TrialState.COMPLETE) == [6, 7, 8]


def test_recipe_is_trial_0_of_every_arm_and_replicate(tmp_path, db):
    spec = load_spec(write_study(tmp_path, STUDY + "replicates: 2\n"))
    run_studies(spec, db, train_fn=EvalTrain(), progress=False, validate=identity, evaluate=False)
    for name, lr in (("ev/sgd", 0.1), ("ev/sgd/r1", 0.1), ("ev/sgd+lars", 1.0), ("ev/sgd+lars/r1", 1.0)):
        trial = load(db, name).trials[0]
        assert trial.user_attrs["recipe"] == "published"
        # SGD: lr 0.1, weight decay 5e-4, cosine; SGD+LARS: lr 10 clamped to the range's top 1.0, lambda 1e-3
        assert trial.params["lr"] == lr and trial.params["weight_decay"] == 5e-4
        assert trial.params["schedule"] == ("cosine" if lr == 0.1 else "polynomial")
        if "lars" in name:
            assert trial.params["trust_coefficient"] == 1e-3
    # replicates are independent searches: their sampled trials differ
    assert load(db, "ev/sgd").trials[1].params != load(db, "ev/sgd/r1").trials[1].params


def test_a_study_files_own_recipe_and_recipe_false(tmp_path, db):
    text = STUDY + "recipe: {sgd: {lr: 0.02, schedule: constant}, sgd+lars: false}\n"
    spec = load_spec(write_study(tmp_path, text))
    run_studies(spec, db, train_fn=EvalTrain(), progress=False, validate=identity, evaluate=False)
    sgd = load(db, "ev/sgd").trials[0]
    assert sgd.user_attrs["recipe"] == "study file"
    assert (sgd.params["lr"], sgd.params["schedule"], sgd.params["weight_decay"]) == (0.02, "constant", 5e-4)
    assert "recipe" not in load(db, "ev/sgd+lars").trials[0].user_attrs


@pytest.mark.parametrize(
    "extra, message",
    [
        ("evaluation: {seeds: 0}\n", "evaluation.seeds: must be an integer >= 1, got 0"),
        ("replicates: -1\n", "replicates: must be an integer >= 1, got -1"),
        (
            "recipe: {sgd: {lr: 3.0}}\n",
            "recipe.sgd.lr: 3.0 is outside arm 'sgd''s space ({'low': 0.001, 'high': 1.0, 'log': True})",
        ),
        (
            "recipe: {sgd: {trust_coefficient: 0.01}}\n",
            "recipe.sgd.trust_coefficient: does not apply to this arm (LARS arms only)",
        ),
        ("recipe: {adam: {lr: 0.01}}\n", "recipe.adam: no such arm; arms: sgd, sgd+lars"),
        (  # #26 item 8: trained nesterov: False without a word
            "recipe: {sgd: {lr: 0.05, nesterov: true}}\n",
            "recipe.sgd.nesterov: not in arm 'sgd''s space, so no trial trains it (the config default holds); "
            "add it to the space (e.g. space: {nesterov: true}) or leave it out of the recipe",
        ),
        (  # #26 item 8: trained no schedule params without a word
            "recipe: {sgd: {schedule: constant, schedule_params: {final_lr_ratio: 0.5}}}\n",
            "recipe.sgd.schedule_params.final_lr_ratio: not a parameter of schedule 'constant', which the recipe "
            "trains (its parameters: none)",
        ),
        ("recipe: 3\n", "recipe: must be true, false or a mapping of arm -> recipe, got 3"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_storage_untouched(tmp_path, capsys, extra, message):
    path = write_study(tmp_path, STUDY.replace("evaluation: {seeds: 3}\n", "") + extra)
    with pytest.raises(SpecError):
        load_spec(path)
    db = tmp_path / "untouched.db"
    assert main(["run", str(path), "--storage", f"sqlite:///{db}", "-q"], train_fn=EvalTrain()) == 2
    assert capsys.readouterr().err == f"lars-search: error: {path}: {message}\n"
    assert not db.exists()


def test_a_search_bounded_only_by_its_timeout_is_evaluated_after_it(tmp_path, db):
    spec = load_spec(write_study(tmp_path, STUDY.replace("budget: {trials: 3}", "budget: {timeout: 1}")))
    run_studies(spec, db, train_fn=EvalTrain(), progress=False, validate=identity)
    for arm in ("sgd", "sgd+lars"):
        best = load(db, f"ev/{arm}").best_trial
        runs = load(db, f"ev/{arm}/eval").get_trials(states=(TrialState.COMPLETE,))
        assert sorted((t.params["incumbent_trial"], t.params["seed"]) for t in runs) == [
            (best.number, s) for s in (6, 7, 8)
        ]


def test_recipe_of_an_lr_auto_arm_waits_for_the_range_and_then_lands_inside_it():
    from dataclasses import replace

    from search.spec.recipe import needs_recipe_later, published_recipe, recipe_params
    from search.spec.space import Range
    from search.spec.study_file import parse_spec

    spec = parse_spec({"name": "a", "objective": {"epochs": 4}, "arms": ["sgd", "sgd+lars"], "space": {"lr": "auto"}})
    assert all(needs_recipe_later(arm) for arm in spec.arms)
    assert "lr" not in spec.final.recipes["sgd"][0]  # nothing drawn from the stand-in range
    plain, lars = spec.arms
    plain = replace(plain, space=replace(plain.space, params={**plain.space.params, "lr": Range(0.01, 0.05, log=True)}))
    params = recipe_params(plain, published_recipe("sgd", False, 4))
    assert params["lr"] == 0.05  # the recipe's 0.1 clamped to the tested range's top
    found = {
        **lars.space.params,
        "lr": Range(1.0, 20.0, log=True),
        "trust_coefficient": Range(0.01, 0.05, log=True, per="lr"),
    }  # search.run.lr_range's form
    lars = replace(lars, space=replace(lars.space, params=found))
    params = recipe_params(lars, published_recipe("sgd", True, 4))
    assert params["lr"] == 10.0 and params["lr*trust_coefficient"] == pytest.approx(0.01)  # 10 x 1e-3


def test_status_shows_every_replicate_and_the_final_evaluations_progress(tmp_path, db):
    """#26 item 9: status showed replicate 0 only (`complete 2` per arm where compare said 4) and no evaluation."""
    from search.results.report import format_status

    spec = load_spec(write_study(tmp_path, STUDY + "replicates: 2\n"))
    run_studies(spec, db, train_fn=EvalTrain(), progress=False, validate=identity, evaluate=False)
    storage = open_storage(db, heartbeat=False)
    rows = [line.split() for line in format_status(storage, "ev").splitlines()[3:]]
    assert rows == [[arm, "3", "0", "0", "0", ANY, "0/3"] for arm in ("sgd", "sgd/r1", "sgd+lars", "sgd+lars/r1")]
    assert format_status(storage, "ev").splitlines()[1].split()[-3:] == ["test", "seeds", "done/asked"]
    run_studies(spec, db, train_fn=EvalTrain(), progress=False, validate=identity)
    rows = [line.split() for line in format_status(storage, "ev").splitlines()[3:]]
    assert [row[-1] for row in rows] == ["3/3"] * 4


def test_an_edge_the_recipes_clamp_put_there_is_said_to_be_the_recipes(tmp_path, db):
    """#26 item 13: the published LARS recipe clamped onto lr's top made every verdict it won "provisional"
    as if the search had found the edge."""
    from search.results.report import format_compare

    def recipe_wins(config, epoch):  # sgd+lars: its recipe trial (lr 10 clamped to 1.0) is the incumbent
        if config["lars"]:
            return 0.95 if config["lr"] == 1.0 else 0.5
        return 0.9 - 0.1 * abs(math.log10(config["lr"]) + 1.5)

    spec = load_spec(write_study(tmp_path, STUDY + "replicates: 2\n"))  # a verdict line (one replicate has none)
    run_studies(spec, db, train_fn=EvalTrain(recipe_wins), progress=False, validate=identity)
    trial = load(db, "ev/sgd+lars").trials[0]
    assert trial.user_attrs["recipe_clamped"] == ["lr 10 clamped to 1 (the top of the searched [0.001, 1])"]
    lines = format_compare(open_storage(db, heartbeat=False), "ev").splitlines()
    assert (
        "  sgd+lars: best lr 1 is at the top of [0.001, 1], where the recipe (trial 0) was clamped, not a finding "
        "of the search; widen the range to try the recipe's own value"
    ) in lines
    [line] = [x for x in lines if x.startswith("  sgd+lars vs sgd: ") and "% power" not in x]
    assert "sgd+lars at the edge where its recipe was clamped, not found by the search)" in line
