"""Fixtures of the format tests."""

import pytest
from format_data import fixture_ds


@pytest.fixture(scope="module")
def fuzz_ds(tmp_path_factory):
    return fixture_ds(tmp_path_factory.mktemp("fuzz"))
