"""The runtime's small rules, without a server or a bundle: serve.py's max_request_mb in bytes, and
how a bundle.json message shows a value it refuses."""

import math

import pytest

from litlab.errors import UserError
from litlab.runtime.bundle_json import short
from litlab.runtime.server import checked_limit


@pytest.mark.parametrize(("mb", "limit"), [(10, 10_000_000), (2.5, 2_500_000), (1e-9, 1)])
def test_max_request_mb_is_millions_of_bytes_and_at_least_one(mb, limit):
    assert checked_limit(mb) == limit


@pytest.mark.parametrize("mb", [0, -1, math.nan, math.inf, "ten", True, None])
def test_max_request_mb_that_is_no_positive_finite_number_is_refused(mb):
    with pytest.raises(UserError, match=r"max_request_mb=.* is not a size; give a positive number of MB"):
        checked_limit(mb)


def test_a_refused_value_is_shown_whole_up_to_60_characters_and_cut_with_dots_beyond():
    fits = "x" * 58  # its repr, quotes included, is 60 characters
    assert short(fits) == repr(fits)
    cut = short("y" * 200)
    assert len(cut) == 60 and cut == repr("y" * 200)[:57] + "..."
