"""Wall time of ``lars-search --help``, ``status`` and ``compare`` as a user starts them (issue 25 item 4).

Each command runs as a subprocess of the installed console script, ``--runs`` times, and the
median is printed with the machine's load, since on a shared VM the figures move with it.
``status`` and ``compare`` read a small storage built here first: study ``startup``, 2 arms x
2 replicates x 2 trials, each incumbent retrained with 2 seeds, by a fake trainer (no data, no
torch in the subprocesses). The last column says whether the command imported torch (checked
in a separate run that prints ``"torch" in sys.modules``; target: never for these three).

Run (about half a minute)::

    python benchmarks/cli_startup.py
    python benchmarks/cli_startup.py --runs 9

Measured figures: ``benchmarks/RESULTS.md`` (section CLI start-up). Target: <= 0.5 s for ``--help``.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

STUDY = """\
name: startup
objective: {epochs: 2}
arms: [sgd, sgd+lars]
budget: {trials: 2}
replicates: 2
evaluation: {seeds: 2}
sampler: {type: tpe, seed: 0}
"""

PROBE = """\
import sys
from search.cli.command import main
try:
    main({argv!r})
finally:  # --help exits through argparse's SystemExit
    print('torch' in sys.modules, file=sys.stderr)
"""


def fake_train(config: dict, report=None):
    """Validation accuracy from the lr alone; the test accuracy a little below it."""
    import math

    from objectives.train import Result

    accuracy = 0.9 - 0.1 * abs(math.log10(config["lr"]) + 1.5)
    history = [{"val_accuracy": accuracy, "epoch_time_s": 0.0, "images_per_s": 1.0}] * config["epochs"]
    for epoch, metrics in enumerate(history, 1):
        if report is not None:
            report(epoch, metrics)
    test = accuracy - 0.001 * (config["seed"] % 7) if config.get("evaluate_test") else None
    return Result(accuracy, 1 - accuracy, test, history, config["epochs"], False, None, 0.0, 1.0, "cpu", config)


def build_storage(directory: Path) -> str:
    from search.cli.command import main

    study = directory / "startup.yaml"
    study.write_text(STUDY)
    url = f"sqlite:///{directory / 'startup.db'}"
    with contextlib.redirect_stdout(io.StringIO()):  # the run ends with its compare table
        assert main(["run", str(study), "--storage", url, "-q"], train_fn=fake_train) == 0
    return url


def time_command(argv: list[str], runs: int, env: dict[str, str]) -> list[float]:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(
            ["lars-search", *argv], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True
        )
        times.append(time.perf_counter() - start)
    return times


def imports_torch(argv: list[str], env: dict[str, str]) -> bool:
    probe = subprocess.run([sys.executable, "-c", PROBE.format(argv=argv)], env=env, capture_output=True, text=True)
    return probe.stderr.strip().splitlines()[-1] == "True"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7, help="runs per command (default 7)")
    args = parser.parse_args()
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    with tempfile.TemporaryDirectory() as tmp:
        url = build_storage(Path(tmp))
        commands = {
            "--help": ["--help"],
            "status": ["status", "startup", "--storage", url],
            "compare": ["compare", "startup", "--storage", url],
        }
        print(f"{platform.node()}: {os.cpu_count()} CPUs, Python {platform.python_version()}, "
              f"load average {os.getloadavg()[0]:.1f} at the start, {args.runs} runs each")  # fmt: skip
        print(f"{'command':<10} {'median s':>9} {'min s':>7} {'max s':>7}  imports torch")
        for name, argv in commands.items():
            times = time_command(argv, args.runs, env)
            torch = imports_torch(argv, env)
            print(f"{name:<10} {statistics.median(times):>9.2f} {min(times):>7.2f} {max(times):>7.2f}  {torch}")
        print(f"load average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
