"""The seed plan: which seed drives what, and the numbers that depend on each other, in one place.

=====================  ==================================================================  =================
what                   seed                                                                where it is used
=====================  ==================================================================  =================
a search trial of      ``objective.seed + 1000 x replicate`` (:func:`search_seed`): one      objectives.train
replicate r            initialisation and data order for every trial of a search, so that
                       its trials differ by their hyperparameters alone, and another for
                       each replicate, so that replicates repeat the whole procedure
an arm's sampler       ``(sampler.seed + offset) % 2**32`` with :func:`sampler_offset`:     search.run._samplers
                       trials already stored + 100003 x worker id + 1000003 x replicate
a worker's id          given (``--worker-id``, the local workers' index) or, started by     search.run.workers
                       hand, :func:`auto_worker_id` (host and pid, below 40,000)
evaluation seed k of   ``objective.seed + 1 + 1000 x replicate + k``, k < ``evaluation.     search.run.evaluation
replicate r            seeds`` <= 999 (:func:`evaluation_seed`)
=====================  ==================================================================  =================

Replicate r owns the seed block ``objective.seed + 1000 r`` .. ``+ 999``: its search trains with
the first, its evaluation seeds take the rest. Were the search seed shared, every replicate
would retrain the recipe (trial 0) to the identical number, and the spread between replicates
would leave out the training noise that the search's choice of incumbent rides on.

The offset keeps a resumed or parallel run from replaying the random start-up configurations
of the first, and makes replicates independent searches; arms share it, so their start-up
trials are paired (the same quantile of each arm's own range). The ceilings hold the plan
together: a study file's sampler seed is at most :data:`SAMPLER_SEED_MAX` and a worker id drawn
by :func:`auto_worker_id` below :data:`AUTO_WORKER_IDS`, so that ``WORKER_STRIDE x id`` stays
below numpy's seed range; :data:`MAX_EVALUATION_SEEDS` is below :data:`EVALUATION_STRIDE`, so
two replicates never share an evaluation seed. ``tests/search/test_seeds.py`` checks them.
"""

from __future__ import annotations

import zlib

__all__ = [
    "SAMPLER_SEED_MAX",
    "SAMPLER_SEED_RANGE",
    "WORKER_STRIDE",
    "REPLICATE_STRIDE",
    "AUTO_WORKER_IDS",
    "EVALUATION_STRIDE",
    "MAX_EVALUATION_SEEDS",
    "sampler_offset",
    "sampler_seed",
    "auto_worker_id",
    "evaluation_seed",
    "search_seed",
]

SAMPLER_SEED_RANGE = 2**32  # numpy's seeds are 0 .. 2**32 - 1; the sampler's seed wraps around it
SAMPLER_SEED_MAX = 2**31 - 1  # a study file's sampler.seed; each resume, worker and replicate adds an offset
WORKER_STRIDE = 100003  # prime: worker streams do not line up with the trials-stored term
REPLICATE_STRIDE = 1000003  # prime, ten times the worker stride: replicates far apart from workers
AUTO_WORKER_IDS = 40_000  # a hand-started worker's id is below this: WORKER_STRIDE x id < 2**32
EVALUATION_STRIDE = 1000  # replicate r's block: search seed objective.seed + 1000 r, evaluation seeds after it
MAX_EVALUATION_SEEDS = EVALUATION_STRIDE - 1  # evaluation.seeds: the replicates' seed blocks never overlap


def sampler_offset(stored_trials: int, worker_id: int | None, replicate: int) -> int:
    """What is added to ``sampler.seed`` for one search opened by one worker (see the module docstring)."""
    return stored_trials + WORKER_STRIDE * (worker_id or 0) + REPLICATE_STRIDE * replicate


def sampler_seed(seed: int, offset: int) -> int:
    """The seed an arm's sampler gets: ``(seed + offset) % 2**32``."""
    return (seed + offset) % SAMPLER_SEED_RANGE


def auto_worker_id(host: str, pid: int) -> int:
    """The id of a worker started by hand (no ``--worker-id``): from its host name and process id."""
    return zlib.crc32(f"{host}:{pid}".encode()) % AUTO_WORKER_IDS


def evaluation_seed(objective_seed: int, replicate: int, k: int) -> int:
    """The training seed of final-evaluation run ``k`` of replicate ``replicate``."""
    return objective_seed + 1 + EVALUATION_STRIDE * replicate + k


def search_seed(objective_seed: int, replicate: int) -> int:
    """The training seed of every search trial of replicate ``replicate`` (replicate 0: ``objective.seed``)."""
    return objective_seed + EVALUATION_STRIDE * replicate
