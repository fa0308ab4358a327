"""The batch-size axis: the lr scaling rule, the critical batch size, and the axis in a study file."""

from __future__ import annotations

import math

import optuna
import pytest
from search_fakes import write_study

from search.errors import SpecError
from search.names import axis_name
from search.spec.batch_axis import (
    CriticalBatch,
    compare_critical,
    critical_batch_size,
    lr_factor,
    scale_dimension,
    scaling_power,
)
from search.spec.space import Auto, Choice, Fixed, Range
from search.spec.study_file import load_spec

AXIS_STUDY = """\
name: ax
objective: {dataset: fashion_mnist, epochs: 2, n_train: 2000, val_size: 500, batch_size: 128, width: 0.125}
arms: [sgd, sgd+lars, adam, adam+lars]
space: {lr: {low: 0.01, high: 1.0, log: true}, trust_coefficient: 0.01, warmup_epochs: 0.0, schedule: cosine}
axis: {batch_size: [1024, 64, 256]}
"""


# --------------------------------------------------------------------------- the lr rule


@pytest.mark.parametrize(
    ("rule", "optimizer", "power"),
    [
        ("auto", "sgd", 1.0),
        ("auto", "adam", 0.5),
        ("auto", "adamw", 0.5),
        ("auto", "rmsprop", 0.5),
        ("auto", "adagrad", 0.5),
        ("linear", "adam", 1.0),
        ("sqrt", "sgd", 0.5),
        ("none", "sgd", 0.0),
    ],
)
def test_scaling_power_per_rule_and_optimizer(rule, optimizer, power):
    assert scaling_power(rule, optimizer) == power


@pytest.mark.parametrize(
    ("rule", "optimizer", "batch", "factor"),
    [
        ("auto", "sgd", 1024, 8.0),  # linear: 1024 / 128
        ("auto", "sgd", 64, 0.5),
        ("auto", "adam", 512, 2.0),  # square root of 4
        ("auto", "rmsprop", 32, 0.5),  # square root of 1/4
        ("auto", "adam", 128, 1.0),  # the reference batch itself
        ("none", "sgd", 4096, 1.0),
        ("sqrt", "sgd", 2048, 4.0),
    ],
)
def test_lr_factor_at_literal_batch_sizes(rule, optimizer, batch, factor):
    assert lr_factor(rule, optimizer, batch, 128) == factor


def test_an_unknown_rule_or_a_batch_below_one_is_refused():
    with pytest.raises(ValueError, match=r"lr_scaling must be one of auto, linear, sqrt, none, got 'cube'"):
        scaling_power("cube", "sgd")
    with pytest.raises(ValueError, match=r"batch sizes must be >= 1, got batch_size=0, reference=128"):
        lr_factor("auto", "sgd", 0, 128)


def test_every_form_of_an_lr_dimension_scales_and_auto_is_left_to_its_range_test():
    assert scale_dimension(Fixed(0.1), 4.0) == Fixed(0.4)
    assert scale_dimension(Choice((0.01, 0.1)), 2.0) == Choice((0.02, 0.2))
    assert scale_dimension(Range(0.01, 1.0, log=True), 8.0) == Range(0.08, 8.0, log=True)
    assert scale_dimension(Range(0.5, 1.5, step=0.25), 2.0) == Range(1.0, 3.0, step=0.5)
    auto = Auto(1e-3, 10.0)
    assert scale_dimension(auto, 8.0) is auto


def test_axis_study_names_carry_the_batch():
    assert axis_name("fmnist-axis", 1024) == "fmnist-axis-b1024"


# --------------------------------------------------------------------------- the critical batch size

NAN = math.nan


@pytest.mark.parametrize(
    ("drops", "expected", "text"),
    [
        # the drop's interval at 256 is within 1 point, at 1024 surely beyond it
        ([(64, 0, 0), (256, -0.5, 0.8), (1024, 1.2, 3.0)], CriticalBatch("determined", 256, 1024), "256"),
        # every batch surely within: at least the largest
        (
            [(64, 0, 0), (256, -0.5, 0.8), (1024, -1.0, 0.9)],
            CriticalBatch("not reached", 1024),
            ">= 1024 (not reached)",
        ),
        # 256 unclear (its interval holds the tolerance), 1024 surely beyond
        (
            [(64, 0, 0), (256, 0.2, 2.4), (1024, 1.5, 4.0)],
            CriticalBatch("undetermined", 64, 1024),
            "undetermined: >= 64, < 1024",
        ),
        # 1024 unclear and the axis ends there
        (
            [(64, 0, 0), (256, -0.2, 0.9), (1024, -0.4, 2.0)],
            CriticalBatch("undetermined", 256, None),
            "undetermined: >= 256, no larger batch surely lost",
        ),
        # a batch without results is unclear, never kept
        ([(64, 0, 0), (256, NAN, NAN), (1024, 2.0, 3.0)], CriticalBatch("undetermined", 64, 1024), None),
        # an interval ending exactly at the tolerance is within it
        ([(64, 0, 0), (128, 0.0, 1.0)], CriticalBatch("not reached", 128), None),
        # the first batch above the smallest already surely lost
        ([(64, 0, 0), (128, 1.01, 2.0), (256, -1.0, 0.5)], CriticalBatch("determined", 64, 128), "64"),
    ],
)
def test_critical_batch_size_against_hand_computed_cases(drops, expected, text):
    found = critical_batch_size(drops, tolerance=1.0)
    assert found == expected
    if text is not None:
        assert found.describe() == text


def test_critical_batch_size_without_data_and_out_of_order():
    assert critical_batch_size([], 1.0) == CriticalBatch("no data")
    with pytest.raises(ValueError, match=r"drops must be in increasing batch order, got batches \[256, 64\]"):
        critical_batch_size([(256, 0, 0), (64, 0, 1)], 1.0)


# --------------------------------------------------------------------------- the axis in a study file


def test_an_axis_study_runs_one_study_per_batch_with_its_lr_ranges_and_recipes_scaled(tmp_path):
    spec = load_spec(write_study(tmp_path, AXIS_STUDY))
    assert spec.axis.batch_sizes == (64, 256, 1024) and spec.axis.reference == 128
    assert (spec.axis.lr_scaling, spec.axis.tolerance) == ("auto", 1.0)
    runs = spec.runs()
    assert [s.name for s in runs] == ["ax-b64", "ax-b256", "ax-b1024"]
    assert [s.objective["batch_size"] for s in runs] == [64, 256, 1024]
    b64, _, b1024 = runs
    assert b1024.arm("sgd").space.params["lr"] == Range(0.08, 8.0, log=True)  # linear: x8
    assert b1024.arm("sgd+lars").space.params["lr"] == Range(0.08, 8.0, log=True)  # the twin's range
    assert b64.arm("sgd").space.params["lr"] == Range(0.005, 0.5, log=True)  # x1/2
    adam = b1024.arm("adam+lars").space.params["lr"]
    assert (adam.low, adam.high) == pytest.approx((0.01 * 8**0.5, 8**0.5))  # square root: x2.83
    # recipes scale too: SGD's published 0.1 -> 0.8 at 1024; SGD+LARS's 10 -> 80, clamped to the top 8.0
    assert b1024.final.recipes["sgd"][0]["lr"] == pytest.approx(0.8)
    assert b1024.final.recipes["sgd+lars"][0]["lr"] == pytest.approx(8.0)
    assert b64.final.recipes["sgd"][0]["lr"] == pytest.approx(0.05)
    # everything else is the file's, and each study stores the file as written
    assert all(s.text == spec.text and s.arms[0].space.params["weight_decay"] for s in runs)
    assert spec.runs() != (spec,) and load_spec(write_study(tmp_path, AXIS_STUDY.replace("axis:", "#"))).runs()


def test_lr_scaling_none_keeps_every_range(tmp_path):
    spec = load_spec(write_study(tmp_path, AXIS_STUDY.replace("[1024, 64, 256]}", "[64, 1024], lr_scaling: none}")))
    assert {s.arm("sgd").space.params["lr"] for s in spec.runs()} == {Range(0.01, 1.0, log=True)}


def test_a_study_file_recipe_is_scaled_like_the_space(tmp_path):
    text = AXIS_STUDY + "recipe: {sgd: {lr: 0.2}}\n"
    b64, b256, b1024 = load_spec(write_study(tmp_path, text)).runs()
    assert [s.final.recipes["sgd"][0]["lr"] for s in (b64, b256, b1024)] == pytest.approx([0.1, 0.4, 1.6])
    assert b1024.final.recipes["sgd"][1] == "study file"


def _axis_error(tmp_path, axis: str) -> str:
    path = write_study(tmp_path, AXIS_STUDY.replace("axis: {batch_size: [1024, 64, 256]}", f"axis: {axis}"))
    with pytest.raises(SpecError) as info:
        load_spec(path)
    message = str(info.value)
    assert message.startswith(f"{path}: "), message
    return message[len(f"{path}: ") :]


@pytest.mark.parametrize(
    ("axis", "message"),
    [
        ("[64, 128]", "axis: must be a mapping, got list [64, 128]"),
        ("{epochs: [1, 2]}", "axis.epochs: unknown key; an axis runs over batch_size (allowed: batch_size, "),
        ("{lr_scaling: linear}", "axis.batch_size: required (a list of batch sizes, e.g. [64, 256, 1024])"),
        ("{batch_size: [64]}", "axis.batch_size: must be a list of at least 2 distinct integers >= 2, got list [64]"),
        ("{batch_size: [64, 64]}", "axis.batch_size: must be a list of at least 2 distinct integers >= 2, got list"),
        ("{batch_size: [64, 96.5]}", "axis.batch_size: must be a list of at least 2 distinct integers >= 2, got list"),
        ("{batch_size: 64}", "axis.batch_size: must be a list of at least 2 distinct integers >= 2, got int 64"),
        ("{batch_size: [64, 128], lr_scaling: cube}", "axis.lr_scaling: must be one of auto, linear, sqrt, none, "),
        ("{batch_size: [64, 128], tolerance: 0}", "axis.tolerance: must be points of accuracy in (0, 100), got int 0"),
        (
            "{batch_size: [64, 4096]}",
            "axis.batch_size: at batch size 4096: objective.n_train: config key 'n_train' must be >= batch_size (4096)",
        ),
    ],
)
def test_a_bad_axis_is_one_line_naming_file_and_key(tmp_path, axis, message):
    assert _axis_error(tmp_path, axis).startswith(message)


@pytest.mark.parametrize(
    ("lars", "plain", "expected"),
    [
        (CriticalBatch("not reached", 1024), CriticalBatch("determined", 256, 1024), "LARS extends it"),
        (CriticalBatch("determined", 1024, 4096), CriticalBatch("undetermined", 64, 1024), "LARS extends it"),
        (CriticalBatch("determined", 64, 256), CriticalBatch("determined", 256, 1024), "LARS shortens it"),
        (CriticalBatch("determined", 256, 1024), CriticalBatch("determined", 256, 1024), "the same"),
        (CriticalBatch("not reached", 1024), CriticalBatch("not reached", 1024), "neither reached on this axis"),
        # the plain arm may lose 1024 or not: LARS keeping it says nothing yet
        (CriticalBatch("not reached", 1024), CriticalBatch("undetermined", 256, None), "cannot tell at this budget"),
        (
            CriticalBatch("undetermined", 256, None),
            CriticalBatch("determined", 256, 1024),
            "cannot tell at this budget",
        ),
        (CriticalBatch("no data"), CriticalBatch("determined", 256, 1024), "cannot tell yet (no data)"),
    ],
)
def test_whether_lars_extends_the_critical_batch_size(lars, plain, expected):
    assert compare_critical(lars, plain) == expected


# --------------------------------------------------------------------------- run, resume, compare, plot

FAKE_AXIS = """\
name: ax
objective: {epochs: 2, batch_size: 128}
arms: [sgd, sgd+lars]
space: {lr: {low: 0.01, high: 0.1, log: true}, warmup_epochs: 0.0, schedule: cosine}
budget: {trials: 2}
pruner: none
replicates: 2
evaluation: {seeds: 2}
axis: {batch_size: [64, 256, 1024], tolerance: 2.0}
"""


def _AxisTrain(curve) -> object:
    """The fakes' trainer with a test accuracy near the validation one: seed noise of at most 0.4 points."""
    from search_fakes import FakeTrain

    return FakeTrain(curve, seed_noise=(0.001, 5))


def _batch_curve(config, epoch):
    """Plain SGD loses 3 points per quadrupling of the batch above 64; SGD+LARS loses nothing. The best lr
    grows linearly with the batch (10**-1.5 at 128), as the axis scales the searched range."""
    lost = 0.0 if config["lars"] else 0.03 * math.log(config["batch_size"] / 64, 4)
    best = 10**-1.5 * config["batch_size"] / 128
    return 0.9 - lost - 0.1 * abs(math.log10(config["lr"] / best)) - 0.3 * 0.5**epoch


def test_an_axis_run_trains_each_batch_and_compare_shows_the_axis(tmp_path, capsys):
    from search.cli.command import main

    db = f"sqlite:///{tmp_path / 'ax.db'}"
    path = write_study(tmp_path, FAKE_AXIS)
    train = _AxisTrain(_batch_curve)
    assert main(["run", str(path), "--storage", db, "-q"], train_fn=train) == 0
    # per batch: 2 arms x 2 replicates x 2 trials, then 2 arms x 2 replicates x 2 seeds
    assert [c["batch_size"] for c in train.calls].count(64) == 16
    assert {c["batch_size"] for c in train.calls} == {64, 256, 1024}
    # the lr ranges scale linearly for SGD: every lr drawn at 1024 is in [0.08, 0.8]
    assert all(0.08 <= c["lr"] <= 0.8 for c in train.calls if c["batch_size"] == 1024)
    out = capsys.readouterr().out
    assert "compare ax-b64: final evaluation" in out and "compare ax-b1024: final evaluation" in out
    assert "compare ax: batch-size axis 64, 256, 1024" in out
    capsys.readouterr()
    assert main(["compare", "ax", "--storage", db]) == 0
    text = capsys.readouterr().out
    assert text == out[out.index("compare ax: batch-size axis") :]
    rows = {line.split()[0]: line for line in text.splitlines() if line[:1].isdigit()}
    assert set(rows) == {"64", "256", "1024"}
    assert "critical batch size (largest batch whose test accuracy stays within 2 points of batch 64's" in text
    assert "  batch 1024: sgd+lars vs sgd: " in text
    assert "power per batch size (two-sided 5% test, from that batch's spread of replicate means):" in text
    assert "every batch size's lines as a family:\n  3 LARS-vs-plain lines over the batch sizes" in text
    # every arm's dashboard note of every batch shows its own verdict, then the axis table and figure
    from optuna_dashboard import get_note

    from search.storage.database import open_storage

    storage = open_storage(db, heartbeat=False)
    for batch in (64, 1024):
        note = get_note(optuna.load_study(study_name=f"ax-b{batch}/sgd+lars", storage=storage))
        assert note.startswith(f"## Verdict of ax-b{batch}\n")
        assert "\n## Batch-size axis of ax\n" in note and "| batch | sgd | sgd+lars |" in note
        assert "![test accuracy against batch size](/artifacts/" in note


def test_an_interrupted_axis_run_resumes_without_retraining_finished_batches(tmp_path, capsys):
    from search.cli.command import main

    db = f"sqlite:///{tmp_path / 'ax.db'}"
    path = write_study(tmp_path, FAKE_AXIS)

    def stop_at_1024(config, epoch):
        if config["batch_size"] == 1024:
            raise KeyboardInterrupt
        return _batch_curve(config, epoch)

    assert main(["run", str(path), "--storage", db, "-q"], train_fn=_AxisTrain(stop_at_1024)) == 130
    capsys.readouterr()
    assert main(["compare", "ax", "--storage", db]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("1024 ")]
    assert rows and "not run yet" not in rows[0]  # its studies exist; no result yet
    resumed = _AxisTrain(_batch_curve)
    assert main(["run", str(path), "--storage", db, "-q"], train_fn=resumed) == 0
    assert {c["batch_size"] for c in resumed.calls} == {1024}  # 64 and 256 kept, not retrained


def test_an_axis_stopped_in_its_smallest_batch_claims_no_critical_batch_size(tmp_path, capsys):
    from search.cli.command import main

    db = f"sqlite:///{tmp_path / 'ax.db'}"

    def stop_in_evaluation(config, epoch):
        if config.get("evaluate_test"):
            raise KeyboardInterrupt
        return _batch_curve(config, epoch)

    path = write_study(tmp_path, FAKE_AXIS)
    assert main(["run", str(path), "--storage", db, "-q"], train_fn=_AxisTrain(stop_in_evaluation)) == 130
    capsys.readouterr()
    assert main(["compare", "ax", "--storage", db]) == 0
    text = capsys.readouterr().out
    for arm in ("sgd", "sgd+lars"):
        assert (
            f"  {arm}: no data yet (the smallest batch has no final evaluation) (drop from 64: 256 -, 1024 -)\n" in text
        )
    assert "  sgd+lars vs sgd: cannot tell yet (no data)\n" in text


def test_compare_plot_of_an_axis_draws_accuracy_against_batch(tmp_path, capsys):
    from search.cli.command import main
    from search.results.axis_report import load_axis
    from search.results.plot import plot_axis
    from search.spec.study_file import load_spec
    from search.storage.database import open_storage

    db = f"sqlite:///{tmp_path / 'ax.db'}"
    path = write_study(tmp_path, FAKE_AXIS)
    assert main(["run", str(path), "--storage", db, "-q"], train_fn=_AxisTrain(_batch_curve)) == 0
    png = tmp_path / "axis.png"
    assert main(["compare", "ax", "--storage", db, "--plot", str(png)]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    result = load_axis(open_storage(db, heartbeat=False), "ax", load_spec(path).axis)
    series = plot_axis(result, tmp_path / "again.png")
    assert [b for b, *_ in series["sgd"]] == [64, 256, 1024] == [b for b, *_ in series["sgd+lars"]]
    # the fake's plain arm loses 3 points per quadrupling; its LARS twin loses none
    sgd = [m for _, m, _, _ in series["sgd"]]
    assert sgd[0] - sgd[2] == pytest.approx(0.06, abs=0.02)


def test_every_batch_sizes_lines_are_one_family_for_holm():
    from types import SimpleNamespace as NS

    from scipy import stats

    from search.results.axis_report import axis_family
    from search.results.verdict import Interval

    def line(d, se, df=8):
        half = stats.t.ppf(0.975, df) * se
        return Interval(d, d - half, d + half, 5, se=se, df=df, sd=se)

    # t = 2.35 at 8 df: p = 0.0467, a per-comparison "helps" at batch 1024, above Holm's first 0.05 / 3
    judged = {64: line(-0.006, 0.005), 256: line(0.005, 0.005), 1024: line(0.0235, 0.01)}
    result = NS(verdicts={b: NS(judged={("sgd+lars", "sgd"): d}) for b, d in judged.items()} | {2048: None})
    assert judged[1024].low > 0
    assert axis_family(result) == [
        "3 LARS-vs-plain lines over the batch sizes, each a per-comparison 95% interval: with no true difference "
        "anywhere, up to 14% of studies would show at least one helps/hurts",
        "Holm-adjusted (family-wise 5%): LARS helps at some batch size: not established (smallest p 0.0467 > 0.0167)",
    ]
    # t = 5 at 8 df: p = 0.00105 <= 0.05 / 3
    result.verdicts[1024].judged[("sgd+lars", "sgd")] = line(0.05, 0.01)
    assert axis_family(result)[1] == (
        "Holm-adjusted (family-wise 5%): LARS helps at some batch size: holds, by batch 1024: sgd+lars vs sgd "
        "(p 0.00105 <= 0.0167)"
    )
    one = NS(verdicts={64: NS(judged={("sgd+lars", "sgd"): line(0.05, 0.01)}), 256: None})
    assert axis_family(one) == []  # one line is no family


def test_one_replicate_judges_no_critical_batch_size():
    one = CriticalBatch("one replicate")
    assert one.describe() == "not judged with one replicate (replicates: 2 or more)"
    assert compare_critical(one, CriticalBatch("determined", 256, 1024)) == "not judged with one replicate"


def test_the_shipped_axis_study_scales_sgd_linearly_from_batch_128():
    from pathlib import Path

    spec = load_spec(Path(__file__).resolve().parents[2] / "studies" / "fashion-mnist-batch-axis.yaml")
    assert [s.name for s in spec.runs()] == [f"fashion-mnist-batch-axis-b{b}" for b in (64, 256, 1024, 2048)]
    b64, _, b1024, _ = spec.runs()
    assert b64.arm("sgd").space.params["lr"] == Range(5e-4, 0.25, log=True)
    assert b1024.arm("sgd+lars").space.params["lr"] == Range(0.08, 16.0, log=True)
    assert (spec.final.replicates, spec.final.seeds, spec.budget.trials) == (5, 1, 6)
