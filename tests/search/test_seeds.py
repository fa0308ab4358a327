"""The seed plan's numbers hold together (search/seeds.py)."""

from __future__ import annotations

from search import seeds
from search.seeds import evaluation_seed, sampler_offset, sampler_seed


def test_a_hand_started_worker_offset_stays_below_numpys_seed_range():
    assert seeds.WORKER_STRIDE * (seeds.AUTO_WORKER_IDS - 1) < seeds.SAMPLER_SEED_RANGE
    assert seeds.SAMPLER_SEED_MAX < seeds.SAMPLER_SEED_RANGE
    assert all(0 <= seeds.auto_worker_id(f"host{i}", 4000 + i) < seeds.AUTO_WORKER_IDS for i in range(200))


def test_replicates_never_share_an_evaluation_seed():
    assert seeds.MAX_EVALUATION_SEEDS < seeds.EVALUATION_STRIDE
    last_of_r0 = evaluation_seed(0, 0, seeds.MAX_EVALUATION_SEEDS - 1)
    assert last_of_r0 < evaluation_seed(0, 1, 0) == 1001
    assert evaluation_seed(5, 2, 3) == 5 + 1 + 2000 + 3


def test_sampler_seeds_by_hand():
    assert sampler_offset(7, None, 0) == 7
    assert sampler_offset(2, 3, 1) == 2 + 3 * 100003 + 1000003
    assert sampler_seed(seeds.SAMPLER_SEED_MAX, sampler_offset(0, 39_999, 0)) == (2**31 - 1 + 39_999 * 100003) % 2**32


def test_each_replicate_searches_with_its_own_seed_that_no_evaluation_takes():
    assert [seeds.search_seed(5, r) for r in range(3)] == [5, 1005, 2005]
    taken = {evaluation_seed(5, r, k) for r in range(3) for k in range(seeds.MAX_EVALUATION_SEEDS)}
    assert not taken & {seeds.search_seed(5, r) for r in range(3)}
