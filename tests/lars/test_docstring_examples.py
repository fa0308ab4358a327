"""The examples in lars's docstrings run and print what they say."""

import doctest
import importlib

import pytest

MODULES = ["lars.param_groups", "lars.schedules", "lars.trust_ratio", "lars.wrapper"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
