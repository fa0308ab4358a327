"""search.results.plot: best-so-far validation accuracy against trial-epochs, per arm."""

from __future__ import annotations

import math

import optuna
import pytest

from search.errors import PlotError
from search.results.plot import compare_curves, plot_compare

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
COMPLETE, PRUNED, FAIL = (
    optuna.trial.TrialState.COMPLETE,
    optuna.trial.TrialState.PRUNED,
    optuna.trial.TrialState.FAIL,
)


def _run(study, reports, state, value=None):
    trial = study.ask()
    for epoch, accuracy in enumerate(reports, start=1):
        trial.report(accuracy, epoch)
    study.tell(trial, value, state=state)


@pytest.fixture()
def storage(tmp_path):
    """A designed two-arm study with complete, pruned and failed trials (see the expected numbers)."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    url = f"sqlite:///{tmp_path / 'plot.db'}"
    sgd = optuna.create_study(study_name="demo/sgd", storage=url, direction="maximize")
    _run(sgd, [0.5, 0.6, 0.7], COMPLETE, 0.7)
    _run(sgd, [0.3], PRUNED)
    _run(sgd, [0.6, 0.75, 0.8], COMPLETE, 0.8)
    _run(sgd, [0.4, 0.45], FAIL)
    lars = optuna.create_study(study_name="demo/sgd+lars", storage=url, direction="maximize")
    _run(lars, [0.2, 0.25], PRUNED)
    _run(lars, [0.7, 0.85, 0.9], COMPLETE, 0.9)
    _run(lars, [], FAIL)
    optuna.create_study(study_name="other/sgd", storage=url, direction="maximize")  # not ours
    return url


def test_curves_equal_hand_computed_compute_and_best_so_far(storage):
    curves = compare_curves(storage, "demo")
    assert list(curves) == ["sgd", "sgd+lars"]
    sgd, lars = curves["sgd"], curves["sgd+lars"]
    assert sgd.states == ["COMPLETE", "PRUNED", "COMPLETE", "FAIL"]
    assert sgd.epochs == [3, 1, 3, 2]
    assert sgd.compute == [3, 4, 7, 9]  # 3, 3+1, 3+1+3, 3+1+3+2
    assert sgd.best == [0.7, 0.7, 0.8, 0.8]  # the pruned 0.3 and the failed trial never count
    assert sgd.values == [0.7, 0.3, 0.8, None]  # pruned: last report; failed: None
    assert lars.epochs == [2, 3, 0]
    assert lars.compute == [2, 5, 5]
    assert math.isnan(lars.best[0]) and lars.best[1:] == [0.9, 0.9]
    assert lars.values == [0.25, 0.9, None]


def test_pruned_trial_value_is_its_last_report_not_its_best(storage):
    study = optuna.load_study(study_name="demo/sgd", storage=storage)
    _run(study, [0.95, 0.1], PRUNED)
    curve = compare_curves(storage, "demo")["sgd"]
    assert (curve.values[-1], curve.best[-1], curve.compute[-1]) == (0.1, 0.8, 11)


def test_compute_counts_a_diverged_trials_history_not_only_its_reports(tmp_path):
    url = f"sqlite:///{tmp_path / 'diverged.db'}"
    study = optuna.create_study(study_name="d/sgd+lars", storage=url, direction="maximize")
    trial = study.ask()
    trial.report(0.4, 1)  # epoch 2 diverged: trained, not reported
    trial.set_user_attr("history", [{"val_accuracy": 0.4}, {"val_accuracy": None}])
    trial.set_user_attr("diverged_epoch", 2)
    study.tell(trial, state=PRUNED)
    _run(study, [0.5, 0.6], COMPLETE, 0.6)
    curve = compare_curves(url, "d")["sgd+lars"]
    assert (curve.epochs, curve.compute, curve.values) == ([2, 2], [2, 4], [0.4, 0.6])


def test_trials_are_taken_in_completion_order(tmp_path):
    url = f"sqlite:///{tmp_path / 'order.db'}"
    study = optuna.create_study(study_name="par/adam", storage=url, direction="maximize")
    first, second = study.ask(), study.ask()  # two workers at once
    second.report(0.6, 1)
    study.tell(second, 0.6)
    first.report(0.5, 1)
    first.report(0.9, 2)
    study.tell(first, 0.9)
    curve = compare_curves(url, "par")["adam"]
    assert curve.numbers == [1, 0]
    assert curve.compute == [1, 3]
    assert curve.best == [0.6, 0.9]


def test_running_trials_are_not_counted(tmp_path):
    url = f"sqlite:///{tmp_path / 'running.db'}"
    study = optuna.create_study(study_name="r/sgd", storage=url, direction="maximize")
    _run(study, [0.4], COMPLETE, 0.4)
    study.ask().report(0.99, 1)  # still running
    assert compare_curves(url, "r")["sgd"].compute == [1]


def test_plot_compare_writes_png_and_returns_the_plotted_series(storage, tmp_path):
    path, history = tmp_path / "compare.png", tmp_path / "history.png"
    curves = plot_compare(storage, "demo", path, history_path=history)
    assert curves["sgd"].compute == [3, 4, 7, 9] and curves["sgd+lars"].best[1:] == [0.9, 0.9]
    for written in (path, history):
        data = written.read_bytes()
        assert data[:8] == PNG_MAGIC
        width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
        assert (width, height) == ((1680, 660) if written == path else (1080, 660))  # 14 (9) x 5.5 in at 120 dpi


def _evaluate(url, arm, number, values):
    study = optuna.create_study(study_name=f"demo/{arm}/eval", storage=url, direction="maximize")
    dists = {
        "incumbent_trial": optuna.distributions.IntDistribution(0, 2**31 - 1),
        "seed": optuna.distributions.IntDistribution(0, 2**31 - 1),
    }
    for seed, value in enumerate(values, start=1):
        study.add_trial(
            optuna.trial.create_trial(
                state=COMPLETE, value=value, distributions=dists, params={"incumbent_trial": number, "seed": seed}
            )
        )


def test_test_accuracy_panel_shows_each_seed_and_the_mean_with_its_interval(storage):
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    from search.results.plot import _plot_test
    from search.results.read import load_verdict

    _evaluate(storage, "sgd", 2, [0.80, 0.81, 0.82])  # incumbents: sgd trial 2 (0.8), sgd+lars trial 1 (0.9)
    _evaluate(storage, "sgd+lars", 1, [0.88, 0.90, 0.92])
    fig, ax = plt.subplots()
    try:
        _plot_test(ax, load_verdict(optuna.storages.RDBStorage(storage), "demo"))
        points = [sorted(round(float(y), 4) for _, y in c.get_offsets()) for c in ax.collections[:3:2]]
        assert points == [[0.80, 0.81, 0.82], [0.88, 0.90, 0.92]]
        # per arm: the mean, then the caps of its 95% interval (0.81 +- 4.302653 * 0.01 / sqrt(3), 0.90 +- 2x that)
        ends = [round(float(line.get_ydata()[0]), 4) for line in ax.lines]
        assert ends == [0.81, 0.7852, 0.8348, 0.90, 0.8503, 0.9497]
        assert [t.get_text() for t in ax.get_xticklabels()] == ["sgd", "sgd+lars"]
    finally:
        plt.close(fig)


def test_an_interval_beyond_the_possible_range_is_drawn_clipped_and_says_so(storage):
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    from search.results.plot import _plot_test
    from search.results.read import load_verdict

    _evaluate(storage, "sgd", 2, [0.10, 0.50, 0.90])  # 0.5 +- 4.302653 * 0.4 / sqrt(3) = [-0.494, 1.494]
    _evaluate(storage, "sgd+lars", 1, [0.88, 0.90, 0.92])
    fig, ax = plt.subplots()
    try:
        _plot_test(ax, load_verdict(optuna.storages.RDBStorage(storage), "demo"))
        ends = [round(float(line.get_ydata()[0]), 4) for line in ax.lines]
        assert ends[:3] == [0.5, 0.0, 1.0]
        assert ax.get_title().endswith("(bar, clipped to [0, 1])")
    finally:
        plt.close(fig)


def test_an_arm_without_a_complete_trial_says_so_in_the_legend(tmp_path):
    from search.results.plot import _legend

    url = f"sqlite:///{tmp_path / 'n.db'}"
    study = optuna.create_study(study_name="n/sgd", storage=url, direction="maximize")
    _run(study, [0.4], FAIL)
    curve = compare_curves(url, "n")["sgd"]
    assert _legend("sgd", curve) == "sgd (no complete trial)"
    plot_compare(url, "n", tmp_path / "n.png")  # draws, no "best nan"


def test_unknown_name_is_a_clear_error(storage, tmp_path):
    with pytest.raises(PlotError, match=r"^name 'nope': no study named 'nope/<arm>' in the storage$"):
        plot_compare(storage, "nope", tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()


def test_missing_sqlite_file_is_reported_not_created(tmp_path):
    path = tmp_path / "absent.db"
    with pytest.raises(PlotError, match=r"no storage at sqlite:///.*absent\.db \(file .*absent\.db does not exist\)"):
        compare_curves(f"sqlite:///{path}", "demo")
    assert not path.exists()


def test_cli_compare_plot_writes_the_png(storage, tmp_path, capsys):
    from search.cli.command import main

    path = tmp_path / "compare.png"
    assert main(["compare", "demo", "--storage", storage, "--plot", str(path)]) == 0
    assert path.read_bytes()[:8] == PNG_MAGIC
    assert f"wrote {path}" in capsys.readouterr().out
