"""Several worker processes on one storage: ``run --workers N``, ``run --gpus 0,1``, ``worker``.

A *worker* is one process running :func:`search.run.loop.run_studies` on a shared storage;
workers need no coordinator. They claim trials through :mod:`search.storage.budget` (exact
per-arm budgets, arms kept even), record heartbeats, and retry a dead worker's trial
once its heartbeat has expired. So the same command scales from one machine to many::

    lars-search run studies/vgg16-cifar10.yaml --gpus 0,1,2,3          # one worker per GPU
    lars-search run studies/quickstart.yaml --workers 2                # two CPU workers
    lars-search worker studies/vgg16-cifar10.yaml \\
        --storage postgresql+psycopg://lars:PASSWORD@db-host/lars      # on every other machine

:func:`launch_workers` (the ``run --workers/--gpus`` path) does, in the parent:

1. open the storage (:func:`search.storage.database.open_storage`: a bad URL or password is one
   line and exit code 2, before anything trains) and create the schema once, so that
   the workers never race to create tables on a fresh SQLite file (optuna#4621);
2. create or load every arm's study and check the study file against the stored one
   (a conflicting file is an error here, with the database untouched);
3. start the workers: ``python -m search.cli worker STUDY --storage-env VAR --worker-id i ...``
   (the ``lars-search worker`` verb), each with ``CUDA_VISIBLE_DEVICES`` set to its own
   GPU when ``gpus`` is given (the worker then sees that GPU as ``cuda:0``); the storage
   URL reaches them in the environment variable ``VAR`` (:data:`STORAGE_ENV`), never on
   the command line, which ``ps`` shows to every user of the machine;
4. relay their output line by line, each line whole and tagged ``[worker i]``, so two
   workers' messages never share a line;
5. wait for all of them; Ctrl-C reaches the whole process group, each worker marks its
   running trial FAIL and exits, and the parent waits for them; a SIGTERM to the parent
   is passed on to the workers, which handle it as Ctrl-C.

A worker killed with SIGKILL does not stop the others: its trial stays RUNNING until its
heartbeat is older than the grace period, then the next claim fails it and enqueues a
retry that another worker runs. The exit status is 0 when every worker exited 0, else
the first non-zero status (128 + signal number for a killed worker).

``--objective module:function`` (advanced, hidden from ``--help``) replaces
``objectives.train`` in the workers by another ``train(config, report) -> Result``
function, e.g. a fast fake objective in tests. If that module defines
``validate_config`` it is used to check configs, otherwise configs reach the function
as the search space produced them.
"""

from __future__ import annotations

import importlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import IO, Any

from search.errors import Terminated
from search.run.loop import RunSettings, run_studies
from search.run.lr_range import needs_range_test, resolve_ranges
from search.run.studies import open_studies
from search.seeds import auto_worker_id
from search.spec.study_file import load_spec
from search.storage.database import open_storage
from search.storage.url import mask_url, resolve_storage_url

__all__ = [
    "cpu_threads_per_worker",
    "STORAGE_ENV",
    "load_objective",
    "parse_gpus",
    "worker_count",
    "worker_command",
    "launch_workers",
    "run_worker",
]

STORAGE_ENV = "LARS_SEARCH_WORKER_STORAGE"  # the storage URL of a launched worker (`--storage-env`)


def parse_gpus(text: str | Sequence[int | str] | None) -> list[str] | None:
    """``"0,1,3"`` -> ``["0", "1", "3"]``; rejects empty items, duplicates and non-integers."""
    if text is None:
        return None
    items = [s.strip() for s in (text.split(",") if isinstance(text, str) else map(str, text))]
    if not items or any(not s.isdigit() for s in items):
        raise ValueError(f"--gpus must be a comma-separated list of GPU indices like 0,1,2, got {text!r}")
    if len(set(items)) != len(items):
        raise ValueError(f"--gpus must not repeat a GPU, got {text!r}")
    return items


def load_objective(spec: str | None) -> tuple[Callable[..., Any] | None, Callable[[dict], dict] | None]:
    """``"module:function"`` -> (train function, the module's ``validate_config`` or identity).

    None -> (None, None): :func:`search.run.loop.run_studies` then uses ``objectives.train``
    and ``objectives.validate_config``.
    """
    if spec is None:
        return None, None
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise ValueError(f"--objective must be module:function, got {spec!r}")
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise ValueError(f"--objective {spec!r}: cannot import module {module_name!r} ({error})") from None
    function = getattr(module, attr, None)
    if not callable(function):
        raise ValueError(f"--objective {spec!r}: module {module_name!r} has no function {attr!r}")
    validate = getattr(module, "validate_config", None)
    return function, validate if callable(validate) else (lambda config: dict(config))


def worker_command(
    study_file: str,
    *,
    worker_id: int,
    n_trials: int | None = None,
    timeout: float | None = None,
    device: str | None = None,
    objective: str | None = None,
    python: str = sys.executable,
) -> list[str]:
    """The argv of one worker process (``python -m search.cli worker ...``, the ``worker`` verb).

    The storage URL is not in it: the worker reads it from ``$STORAGE_ENV`` (``--storage-env``).
    """
    argv = [python, "-m", "search.cli", "worker", str(study_file), "--storage-env", STORAGE_ENV,
            "--worker-id", str(worker_id)]  # fmt: skip
    if n_trials is not None:
        argv += ["--n-trials", str(n_trials)]
    if timeout is not None:
        argv += ["--timeout", str(timeout)]
    if device is not None:
        argv += ["--device", device]
    if objective is not None:
        argv += ["--objective", objective]
    return argv


def _prepare(
    study_file: str, storage_url: str | None, *, device: str | None = None, log: Callable[[str], None] = print
) -> tuple[Any, Any, str]:
    """Open storage, parse the file, create/check every arm's study (of every batch of an axis; raises
    on any problem), and run the ``lr: auto`` range tests the studies do not hold yet.

    The range tests run here, once, before any worker starts: workers started together
    would each run them (none finds the range stored yet), paying the cost several times
    while the arm's compute counts it once. Each worker then reads the stored range.
    """
    spec = load_spec(study_file)
    url = resolve_storage_url(storage_url, spec)
    storage = open_storage(url)
    for one in spec.runs():  # a batch-size axis: each batch's own studies, never the file's unscaled ones
        studies = open_studies(one, storage, url=url)
        if any(needs_range_test(arm) for arm in one.arms):
            resolve_ranges(one, studies, device=device, log=log)
    return spec, storage, url


def cpu_threads_per_worker(n_workers: int, cores: int | None = None) -> int:
    """Intra-op threads for each of ``n_workers`` local workers: the cores shared out, at least 1."""
    if cores is None:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, cores // n_workers)


def worker_count(n_workers: int | None, gpu_list: list[str] | None) -> int:
    """One worker per GPU when GPUs are listed (``--workers`` must then agree), else ``n_workers`` or 1."""
    if gpu_list is not None:
        if n_workers is not None and n_workers != len(gpu_list):
            raise ValueError(f"--workers must equal the number of --gpus ({len(gpu_list)}), got {n_workers!r}")
        return len(gpu_list)
    if n_workers is None:
        return 1
    if isinstance(n_workers, bool) or not isinstance(n_workers, int) or n_workers < 1:
        raise ValueError(f"--workers must be a positive integer, got {n_workers!r}")
    return n_workers


def _worker_envs(n_workers: int, gpu_list: list[str] | None, env: dict[str, str] | None,
                 storage_url: str) -> list[dict[str, str]]:  # fmt: skip
    """Each worker's environment: the storage URL, its own GPU, and the CPU cores shared out.

    N CPU workers with torch's default of one intra-op thread per core oversubscribe the
    cores, and OpenMP threads spinning at barriers then make each step many times slower.
    """
    base = {**os.environ, **(env or {}), STORAGE_ENV: storage_url}
    base.setdefault("OMP_NUM_THREADS", str(cpu_threads_per_worker(n_workers)))
    base.setdefault("PYTHONUNBUFFERED", "1")  # lines reach the parent as they are written
    return [{**base, **({"CUDA_VISIBLE_DEVICES": gpu_list[i]} if gpu_list else {})} for i in range(n_workers)]


def _relay(i: int, stream: IO[str], log: Callable[[str], None], lock: threading.Lock) -> None:
    """Pass worker ``i``'s output on, one whole line at a time, each tagged ``[worker i]``."""
    tag = f"[worker {i}]"
    for line in stream:
        line = line.rstrip("\n")
        with lock:
            log(line if line.startswith(tag) else f"{tag} {line}")
    stream.close()


def _start(argvs: list[list[str]], envs: list[dict[str, str]], stdout: Any, log: Callable[[str], None],
           procs: list[subprocess.Popen], relays: list[threading.Thread]) -> None:  # fmt: skip
    """Start the workers into ``procs``; with ``stdout`` None their output is relayed to ``log`` line by line."""
    lock = threading.Lock()
    for i, (argv, env) in enumerate(zip(argvs, envs)):
        if stdout is None:
            proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                    errors="replace")  # fmt: skip
            relay = threading.Thread(target=_relay, args=(i, proc.stdout, log, lock), daemon=True)
            relay.start()
            relays.append(relay)
        else:
            proc = subprocess.Popen(argv, env=env, stdout=stdout, stderr=subprocess.STDOUT)
        procs.append(proc)


def launch_workers(
    study_file: str,
    *,
    storage_url: str | None = None,
    n_workers: int | None = None,
    gpus: str | Sequence[int | str] | None = None,
    n_trials: int | None = None,
    timeout: float | None = None,
    device: str | None = None,
    objective: str | None = None,
    env: dict[str, str] | None = None,
    log: Callable[[str], None] = print,
    python: str = sys.executable,
    stdout: Any = None,
) -> int:
    """Start ``n_workers`` (or one per GPU in ``gpus``) worker processes and wait for them.

    Args:
        study_file: path of the study YAML.
        storage_url: ``--storage`` (else the file's ``storage``, else the default).
        n_workers: number of worker processes; with ``gpus`` it must be None or equal
            to the number of GPUs.
        gpus: GPU indices (``"0,1"`` or a list); each worker gets ``CUDA_VISIBLE_DEVICES``
            of its GPU and ``--device cuda`` unless ``device`` says otherwise.
        n_trials, timeout, device: passed to every worker (see ``run_studies``).
        objective: ``module:function`` replacing ``objectives.train`` (tests).
        env: extra environment variables for the workers.
        log: where the parent's lines, and the workers' (relayed whole, ``[worker i]`` first), go.
        stdout: the workers' stdout and stderr (a file, ``subprocess.DEVNULL``); None relays
            them to ``log``.

    Returns:
        0 when every worker exited 0, else the first non-zero exit status.

    Raises:
        search.errors.StorageError, search.errors.SpecError, search.errors.SpecConflictError,
        search.errors.RangeTestError: raised before any worker starts.
    """
    gpu_list = parse_gpus(gpus)
    n_workers = worker_count(n_workers, gpu_list)
    if gpu_list is not None:
        device = device or "cuda"
    spec, _, url = _prepare(study_file, storage_url, device=device, log=log)  # workers open their own connections
    where = f" on GPUs {','.join(gpu_list)}" if gpu_list else ""
    log(f"{spec.name}: starting {n_workers} worker{'s' if n_workers != 1 else ''}{where} on {mask_url(url)}")
    argvs = [worker_command(study_file, worker_id=i, n_trials=n_trials, timeout=timeout, device=device,
                            objective=objective, python=python) for i in range(n_workers)]  # fmt: skip
    procs: list[subprocess.Popen] = []
    relays: list[threading.Thread] = []
    try:
        _start(argvs, _worker_envs(n_workers, gpu_list, env, url), stdout, log, procs, relays)
        status = _wait_all(procs, log)
    except KeyboardInterrupt as exc:
        _stop_all(procs, forward=signal.SIGTERM if isinstance(exc, Terminated) else None)
        raise
    for relay in relays:
        relay.join()
    return status


def _stop_all(procs: list[subprocess.Popen], grace_s: float = 5.0, forward: int | None = None) -> None:
    """After Ctrl-C: the terminal already sent SIGINT to every worker (one process group).

    Give them ``grace_s`` to mark their trials FAIL and exit; then send SIGINT to the
    ones still running (a parent interrupted programmatically), then SIGKILL as a last
    resort. A second SIGINT too early would interrupt a worker's own cleanup. A signal
    only the parent got (``forward``: SIGTERM) is passed on at once.
    """
    for sig, wait_s in ((forward, grace_s), (signal.SIGINT, 30.0), (signal.SIGKILL, 10.0)):
        if sig is not None:
            for p in procs:
                if p.poll() is None:
                    p.send_signal(sig)
        deadline = time.monotonic() + wait_s
        for p in procs:
            try:
                p.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                break
        if all(p.poll() is not None for p in procs):
            return


def _wait_all(procs: list[subprocess.Popen], log: Callable[[str], None]) -> int:
    """Wait for every worker; say which were killed by a signal; the first non-zero status."""
    status = 0
    for i, p in enumerate(procs):
        code = p.wait()
        if code < 0:
            log(f"worker {i} (pid {p.pid}) was killed by signal {-code}; its running trial is retried by another "
                "worker once its heartbeat expires")  # fmt: skip
            code = 128 - code
        elif code != 0:
            log(f"worker {i} (pid {p.pid}) exited with status {code}")
        status = status or code
    return status


# ------------------------------------------------------------------ one worker process
def run_worker(spec: Any, storage_url: str, settings: RunSettings) -> dict[str, Any]:
    """Run one worker in this process until every arm is complete (the ``worker`` verb).

    ``settings.worker_id`` varies the sampler's seed so that workers do not all draw the same
    random start-up configurations; when None (a worker started by hand on another
    machine) it is derived from the host name and process id (:func:`search.seeds.auto_worker_id`).
    Each line ``settings.log`` gets starts with ``[worker N]``; None: no lines. ``settings.timeout``
    is one limit for every study of a batch-size axis; ``storage_url``, ``progress`` and
    ``poll_s`` are the worker's own.
    """
    storage = open_storage(storage_url)
    worker_id = settings.worker_id
    if worker_id is None:
        worker_id = auto_worker_id(socket.gethostname(), os.getpid())
    prefix, log = f"[worker {worker_id}] ", settings.log
    settings = replace(settings, worker_id=worker_id, storage_url=storage_url, progress=False,
                       log=None if log is None else (lambda line: log(prefix + line)),
                       poll_s=_poll_seconds(storage))  # fmt: skip
    summary: dict[str, Any] = {}
    for one, left in spec.timed_runs(settings.timeout):  # a batch-size axis: one after another, as `run` does
        if left == 0:
            break
        stats = run_studies(one, storage, replace(settings, timeout=left))
        summary.update({f"{one.name}/{k}" if spec.axis else k: v for k, v in stats.items()})
    return summary


def _poll_seconds(storage: Any) -> float:
    """Wait between checks for trials running elsewhere: half a heartbeat, 0.5 to 5 s."""
    interval = storage.get_heartbeat_interval() if hasattr(storage, "get_heartbeat_interval") else None
    return 5.0 if interval is None else min(5.0, max(0.5, interval / 2))
