"""status / compare numbers on hand-built studies."""

from __future__ import annotations

import optuna
import pytest
import yaml
from optuna.distributions import FloatDistribution, IntDistribution
from optuna.trial import TrialState, create_trial

from search.errors import StudyNotFoundError
from search.results.read import arm_stats, load_arms, load_verdict
from search.results.report import format_compare, format_status

LR = {"lr": FloatDistribution(1e-4, 1.0, log=True)}


def add(study, state, value=None, ran=4, epochs=4, seconds=10.0, lr=0.1, **attrs):
    history = [{"epoch": e, "val_accuracy": 0.5} for e in range(1, ran + 1)]
    user_attrs = {"config": {"epochs": epochs, "lr": lr}, "history": history, "wall_time_s": seconds, **attrs}
    study.add_trial(
        create_trial(
            state=state,
            value=value,
            params={"lr": lr},
            distributions=LR,
            intermediate_values={e: 0.5 for e in range(1, ran + 1)},
            user_attrs=user_attrs,
        )
    )


@pytest.fixture
def storage():
    storage = optuna.storages.InMemoryStorage()
    text = yaml.safe_dump({"name": "r", "objective": {"epochs": 4}, "arms": ["sgd+lars", "sgd"]})
    sgd = optuna.create_study(storage=storage, study_name="r/sgd", direction="maximize")
    lars = optuna.create_study(storage=storage, study_name="r/sgd+lars", direction="maximize")
    for study, arm in ((sgd, "sgd"), (lars, "sgd+lars")):
        study.set_user_attr("study_file", text)
        study.set_user_attr("arm", arm)
    add(sgd, TrialState.COMPLETE, 0.80, recipe="published")
    for value in (0.85, 0.70, 0.90, 0.60, 0.75):
        add(sgd, TrialState.COMPLETE, value)
    add(sgd, TrialState.PRUNED, ran=1, seconds=3.0, fail_reason="pruned at epoch 1: ...")
    add(sgd, TrialState.FAIL, ran=2, seconds=5.0, fail_reason="ValueError: boom")
    add(
        sgd,
        TrialState.PRUNED,
        ran=1,
        seconds=1.0,
        fail_reason="diverged: non-finite training loss at epoch 2",
        diverged_epoch=2,
    )
    add(lars, TrialState.COMPLETE, 0.91, lr=0.5)
    add(lars, TrialState.COMPLETE, 0.86)
    return storage


def test_arm_stats_count_compute_spent_and_saved(storage):
    s = arm_stats("sgd", optuna.load_study(study_name="r/sgd", storage=storage))
    assert (s.complete, s.pruned, s.failed, s.running, s.trials) == (6, 2, 1, 0, 9)
    assert s.best_value == 0.90 and s.best_trial.number == 3
    assert s.top5_median == 0.80  # median of 0.90, 0.85, 0.80, 0.75, 0.70
    assert s.trial_epochs == 6 * 4 + 1 + 2 + 1
    assert s.seconds == pytest.approx(6 * 10 + 3 + 5 + 1)
    assert s.saved_epochs == 3  # only the pruner's trial; the diverged one saved nothing by pruning
    assert s.saved_seconds == pytest.approx(9.0)  # 3 epochs at its own 3 s per epoch
    assert s.saved_share == pytest.approx(3 / 31)
    assert s.reasons == {"ValueError": 1, "diverged": 1}


def evaluate(storage, arm, number, values, seeds=(1, 2, 3), name="r", state=TrialState.COMPLETE):
    """The final evaluation of ``<name>/<arm>``: incumbent ``number`` retrained, one test accuracy per seed."""
    study = optuna.create_study(storage=storage, study_name=f"{name}/{arm}/eval", direction="maximize")
    dists = {"incumbent_trial": IntDistribution(0, 2**31 - 1), "seed": IntDistribution(0, 2**31 - 1)}
    for seed, value in zip(seeds, values):
        study.add_trial(
            create_trial(
                state=state,
                value=value if state == TrialState.COMPLETE else None,
                distributions=dists,
                params={"incumbent_trial": number, "seed": seed},
                user_attrs={"wall_time_s": 2.0},
            )
        )


def test_arms_keep_the_study_files_order(storage):
    assert [a for a, _ in load_arms(storage, "r")] == ["sgd+lars", "sgd"]


def test_arms_written_as_mappings_keep_the_file_order():
    storage = optuna.storages.InMemoryStorage()
    text = yaml.safe_dump(
        {
            "name": "m",
            "objective": {"epochs": 1},
            "arms": [{"optimizer": "sgd", "lars": True}, {"optimizer": "adam"}, "rmsprop"],
        }
    )
    for arm in ("rmsprop", "adam", "sgd+lars"):
        optuna.create_study(storage=storage, study_name=f"m/{arm}").set_user_attr("study_file", text)
    assert [a for a, _ in load_arms(storage, "m")] == ["sgd+lars", "adam", "rmsprop"]


def test_compare_without_evaluation_has_no_winner_and_says_why(storage):
    text = format_compare(storage, "r")
    lines = text.splitlines()
    row = next(line for line in lines if line.startswith("sgd  "))
    # arm, C/P/F, best val, recipe val, gain, test, runs, trial-epochs, seconds, saved
    assert row.split()[:10] == ["sgd", "6/2/1", "90.00", "80.00", "+10.00", "-", "0", "28", "69", "3"]
    assert "(10%)" in row and "#3 lr=0.1" in row
    assert "  sgd+lars vs sgd: not comparable yet (finished trials 2 vs 9)" in lines
    assert (
        "note: arms have unequal finished trials (sgd+lars 2, sgd 9): not comparable yet; "
        "run the study again to give every arm its budget" in lines
    )
    assert not any("winner" in line for line in lines)
    assert lines[-2:] == ["failed/diverged trials by reason:", "  sgd: ValueError x1, diverged x1"]


def test_verdict_numbers_by_hand(storage):
    lars = optuna.load_study(study_name="r/sgd+lars", storage=storage)
    for value in (0.80, 0.70, 0.60, 0.50, 0.40, 0.30, 0.20):  # the same 9 finished trials as sgd
        add(lars, TrialState.COMPLETE, value)
    evaluate(storage, "sgd", 3, [0.80, 0.81, 0.82])
    evaluate(storage, "sgd+lars", 0, [0.83, 0.84, 0.85])
    verdict = load_verdict(storage, "r")
    sgd = verdict.arm("sgd").test
    # mean 0.81, sd 0.01, n 3: 0.81 +- t(0.975, 2) 0.01 / sqrt(3) = 0.81 +- 4.302653 * 0.0057735
    assert (sgd.mean, sgd.n) == (pytest.approx(0.81), 3)
    assert (sgd.low, sgd.high) == (pytest.approx(0.81 - 0.0248414, abs=1e-6), pytest.approx(0.81 + 0.0248414, abs=1e-6))
    # pooled: d = 0.03, se = sqrt(0.01**2 * 2 / 3) = 0.0081650, df = 4, t(0.975, 4) = 2.776445: [+0.73, +5.27];
    # one replicate: that is training noise between two incumbents, so no verdict word
    measured = ("sgd+lars vs sgd: the two incumbents differ by +3.00 points [+0.73, +5.27] in training noise "
                "(3 seeds each); the search's luck is not covered: no verdict on the arms (replicates: 2 or more "
                "for one)")  # fmt: skip
    assert verdict.lines == [measured]
    assert verdict.power == [] and verdict.family == []  # nothing about the arms with one replicate
    # the pairwise interval over seeds lies above 0: sgd+lars is ahead of sgd in training noise
    assert verdict.ranking == [(1, "sgd+lars", []), (2, "sgd", [])]
    assert verdict.best_arm == "sgd+lars"
    lines = format_compare(storage, "r").splitlines()
    row = next(line for line in lines if line.startswith("sgd  "))
    assert "81.00 [78.52, 83.48]" in row and row.split()[8] == "3" and row.split()[10] == "75"  # 69 s + 3 x 2 s
    assert f"  {measured}" in lines
    assert lines[lines.index(f"  {measured}") - 1] == (
        "measured (1 replicate x 9 trials x 3 seeds per arm; 95% t intervals over seeds cover training noise only, "
        "not the search's luck; no verdict on the arms with one replicate):"
    )
    assert "  1. sgd+lars 84.00 [81.52, 86.48]" in lines
    assert lines[lines.index(f"  {measured}") + 1] == (
        "power: not known with one replicate (the spread between searches is not measured)"
    )
    assert not any(w in line for line in lines for w in ("LARS helps", "LARS hurts", "no detectable difference"))


def two_replicates(storage, sgd_r1_state=TrialState.COMPLETE, lars_lr=0.1):
    """Study ``t``: sgd and sgd+lars, 2 replicates x 1 trial x 2 seeds, evaluated by hand."""
    text = yaml.safe_dump({"name": "t", "objective": {"epochs": 4}, "arms": ["sgd", "sgd+lars"], "replicates": 2,
                           "evaluation": {"seeds": 2}})  # fmt: skip
    results = {"sgd": ([0.80, 0.82], [0.83, 0.83]), "sgd+lars": ([0.85, 0.87], [0.88, 0.88])}
    for arm, per_replicate in results.items():
        for r, values in enumerate(per_replicate):
            name = f"t/{arm}" if r == 0 else f"t/{arm}/r1"
            study = optuna.create_study(storage=storage, study_name=name, direction="maximize")
            study.set_user_attr("study_file", text)
            add(study, TrialState.COMPLETE, 0.9, lr=lars_lr if arm == "sgd+lars" else 0.1)
            state = sgd_r1_state if (arm, r) == ("sgd", 1) else TrialState.COMPLETE
            seeds = (1, 2) if r == 0 else (1001, 1002)
            evaluate(storage, arm if r == 0 else f"{arm}/r1", 0, values, seeds=seeds, name="t", state=state)


def test_verdict_with_two_replicates_by_hand():
    storage = optuna.storages.InMemoryStorage()
    two_replicates(storage)
    verdict = load_verdict(storage, "t")
    # units: sgd 0.81, 0.83; sgd+lars 0.86, 0.88 (replicate means). d = 0.05; s_p^2 = (2e-4 + 2e-4) / 2,
    # s_p = 0.0141421 = se (sqrt(1/2 + 1/2) = 1); t(0.975, 2) = 4.302653: half 0.0608492 -> [-1.08, +11.08]
    assert verdict.lines == ["sgd+lars vs sgd: +5.00 points [-1.08, +11.08]: no detectable difference at this budget"]
    # power: non-central t, df 2, ncp 5.65349 -> 5.65349 * 1.41421 points = 8.00; 1 point needs 33 per arm
    assert verdict.power == [
        "sgd+lars vs sgd: 80% power to detect +-8.00 points or more (SD of a replicate mean 1.41 points, "
        "2 + 2 replicates); 1 point would need about 33 replicates per arm at 2 seeds each"
    ]
    assert verdict.ranking == [(1, "sgd+lars", ["sgd"]), (1, "sgd", ["sgd+lars"])]
    lines = format_compare(storage, "t").splitlines()
    assert (
        "verdict (2 replicates x 1 trial x 2 seeds per arm; per-comparison 95% t intervals over replicate means; "
        "an interval end beyond the possible range is shown clipped):"
    ) in lines
    # sgd: 0.82 +- 12.706205 * 0.0141421 / sqrt(2) = 0.82 +- 0.127062: [69.29, 94.71]
    assert "  1. sgd 82.00 [69.29, 94.71] (tied with sgd+lars)" in lines


def test_a_replicate_without_results_is_reported_missing_not_replaced_by_seeds():
    storage = optuna.storages.InMemoryStorage()
    two_replicates(storage, sgd_r1_state=TrialState.FAIL)  # every evaluation run of sgd/r1 failed
    verdict = load_verdict(storage, "t")
    sgd = verdict.arm("sgd").test
    assert (sgd.mean, sgd.n, sgd.known) == (pytest.approx(0.81), 1, False)  # one replicate mean, not 2 seeds
    assert verdict.lines == [
        "sgd+lars vs sgd: +6.00 points: not enough replicates with results for an interval"
    ]  # 0.87 - 0.81
    assert verdict.notes == [
        "missing replicates (no test result: no complete trial, or every evaluation run failed): sgd/r1; "
        "their arms' intervals use the other replicates' means"
    ]


def test_status_lists_every_arm_and_ignores_other_studies(storage):
    optuna.create_study(storage=storage, study_name="not-ours")
    lines = format_status(storage).splitlines()
    assert lines[0] == "r"
    assert lines[3].split() == ["sgd+lars", "2", "0", "0", "0", "91.00", "0/3"]
    assert lines[4].split() == ["sgd", "6", "2", "1", "0", "90.00", "0/3"]


def test_unknown_study_lists_the_known_ones(storage):
    with pytest.raises(StudyNotFoundError, match=r"no study named 'q' in the storage \(studies there: r\)"):
        format_compare(storage, "q")


def test_incumbent_at_the_edge_warns_and_marks_its_verdict_lines_provisional(storage):
    lars = optuna.load_study(study_name="r/sgd+lars", storage=storage)
    add(lars, TrialState.COMPLETE, 0.95, lr=1.0)  # the new incumbent, at the top of lr's [1e-4, 1]
    for value in (0.70, 0.60, 0.50, 0.40, 0.30, 0.20):
        add(lars, TrialState.COMPLETE, value)
    evaluate(storage, "sgd", 3, [0.80, 0.81, 0.82])
    evaluate(storage, "sgd+lars", 2, [0.83, 0.84, 0.85])
    lines = format_compare(storage, "r").splitlines()
    assert "  sgd+lars: best lr 1 is at the top of [0.0001, 1]; widen the range" in lines
    assert not any("provisional" in line for line in lines)  # one replicate: no verdict to be provisional


def test_a_verdict_at_the_edge_is_provisional():
    storage = optuna.storages.InMemoryStorage()
    two_replicates(storage, lars_lr=1.0)  # sgd+lars's incumbents at the top of lr's [1e-4, 1]
    lines = format_compare(storage, "t").splitlines()
    assert (
        "  sgd+lars vs sgd: +5.00 points [-1.08, +11.08]: no detectable difference at this budget "
        "(provisional: sgd+lars at the edge of the searched range)"
    ) in lines


def test_an_arm_whose_trials_all_failed_gets_no_verdict_and_says_why():
    storage = optuna.storages.InMemoryStorage()
    text = yaml.safe_dump(
        {"name": "f", "objective": {"epochs": 4}, "arms": ["sgd", "sgd+lars"], "budget": {"trials": 1}}
    )
    for arm in ("sgd", "sgd+lars"):
        study = optuna.create_study(storage=storage, study_name=f"f/{arm}", direction="maximize")
        study.set_user_attr("study_file", text)
        add(study, TrialState.FAIL, ran=1, fail_reason="ValueError: boom")
    assert load_verdict(storage, "f").lines == [
        "sgd+lars vs sgd: no verdict (sgd+lars and sgd: no test result; every trial or evaluation run failed or diverged)"
    ]


@pytest.mark.parametrize("state", [TrialState.RUNNING, TrialState.FAIL])
def test_searches_still_running_or_with_budget_left_are_not_called_failed_or_missing(state):
    # seen on a running axis study: its next batch's first trials were running, and compare said every trial failed
    storage = optuna.storages.InMemoryStorage()
    text = yaml.safe_dump({"name": "w", "objective": {"epochs": 4}, "arms": ["sgd", "sgd+lars"], "replicates": 2,
                           "budget": {"trials": 3}, "evaluation": {"seeds": 1}})  # fmt: skip
    for arm in ("sgd", "sgd+lars"):
        for name in (f"w/{arm}", f"w/{arm}/r1"):
            study = optuna.create_study(storage=storage, study_name=name, direction="maximize")
            study.set_user_attr("study_file", text)
            add(study, state)  # running, or failed with 2 of 3 trials left
    verdict = load_verdict(storage, "w")
    assert verdict.lines == ["sgd+lars vs sgd: no verdict yet (sgd+lars and sgd: a search has no complete trial yet)"]
    assert verdict.notes == []  # no replicate reported missing


def test_compare_shows_the_trust_ratios_of_each_lars_incumbent(storage):
    lars = optuna.load_study(study_name="r/sgd+lars", storage=storage)
    ratios = {"features.0.weight": [0.1, 0.25, 0.5], "classifier.weight": [0.01, 0.0125, 0.02]}
    history = [{"epoch": 1, "trust_ratio": {"features.0.weight": [9.0, 9.0, 9.0]}}, {"epoch": 2, "trust_ratio": ratios}]
    add(lars, TrialState.COMPLETE, 0.95, history=history)  # the new incumbent, trial 2: its last epoch is shown
    text = format_compare(storage, "r")
    table = text[text.index("trust ratios of each LARS arm's incumbent") :].splitlines()[:5]
    assert table == [
        "trust ratios of each LARS arm's incumbent, last epoch (per layer: median [min, max] over its steps):",
        "layer              sgd+lars #2",
        "-----------------  -------------------",
        "features.0.weight  0.25 [0.1, 0.5]",
        "classifier.weight  0.0125 [0.01, 0.02]",
    ]
    assert "sgd #" not in text[text.index("trust ratios") :]  # a plain arm has no trust ratio


def test_the_trust_ratio_table_has_a_column_per_replicates_incumbent():
    from types import SimpleNamespace as NS

    from search.results.report import trust_ratio_table

    def search(number, median):
        history = [{"epoch": 1, "trust_ratio": {"w": [median / 2, median, median * 2]}}]
        return NS(best_trial=NS(number=number, user_attrs={"history": history}))

    plain = NS(arm="sgd", lars=False, searches=[search(3, 9.0)])
    lars = NS(arm="sgd+lars", lars=True, searches=[search(11, 0.5), search(4, 1.0), NS(best_trial=None)])
    assert trust_ratio_table(NS(arms=[plain, lars])) == [
        "trust ratios of each LARS arm's incumbent, last epoch (per layer: median [min, max] over its steps):",
        "layer  sgd+lars #11   sgd+lars/r1 #4\n-----  -------------  --------------\nw      0.5 [0.25, 1]  1 [0.5, 2]",
    ]


def test_the_lines_as_a_family_and_holms_word_on_a_claim():
    from scipy import stats

    from search.results.read import _family
    from search.results.verdict import Interval

    def line(d, se, df=4):
        half = stats.t.ppf(0.975, df) * se
        return Interval(d, d - half, d + half, 3, se=se, df=df, sd=se)

    # t = 3 at 4 df: p = 0.0399 (helps at 95% each: 0.03 - 2.776 * 0.01 > 0), but above Holm's 0.05 / 2
    judged = {("sgd+lars", "sgd"): line(0.03, 0.01), ("adam+lars", "adam"): line(0.001, 0.01)}
    assert _family(judged) == [
        "2 LARS-vs-plain lines, each a per-comparison 95% interval: with no true difference anywhere, up to 10% "
        "of studies would show at least one helps/hurts",
        "Holm-adjusted (family-wise 5%): LARS helps some optimizer: not established (smallest p 0.0399 > 0.025)",
    ]
    # t = 5 at 4 df: p = 0.00749 <= 0.025
    judged[("sgd+lars", "sgd")] = line(0.05, 0.01)
    assert _family(judged)[1] == (
        "Holm-adjusted (family-wise 5%): LARS helps some optimizer: holds, by sgd+lars vs sgd (p 0.00749 <= 0.025)"
    )
    assert _family({("sgd+lars", "sgd"): line(0.05, 0.01)}) == []  # one line is no family
