"""The lars tests use tiny tensors: one intra-op thread is faster for them and keeps
them quick on a busy 2-core machine (OpenMP threads waiting on each other)."""

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
