"""The replay pre-pass's quick timestamp check agrees with the exact one
(regex + datetime.fromisoformat) on every string, so `fast_valid` never says
yes where the validator would say no."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cdpio_cli.replay.validate import _fast_timestamp_ok, _slow_timestamp_ok

_digit = st.sampled_from("0123456789")
_near_digit = st.sampled_from("0123456789٣²x :-.TZ")


def _two(d):
    return st.tuples(d, d).map("".join)


@st.composite
def _stamps(draw):
    d = draw(st.sampled_from([_digit, _near_digit]))
    year = "".join(draw(st.tuples(d, d, d, d)))
    month = draw(st.one_of(_two(d), st.sampled_from(["01", "02", "12", "13", "00"])))
    day = draw(st.one_of(_two(d), st.sampled_from(["01", "28", "29", "30", "31", "32", "00"])))
    hour = draw(st.one_of(_two(d), st.sampled_from(["00", "23", "24", "99"])))
    minute = draw(st.one_of(_two(d), st.sampled_from(["00", "59", "60"])))
    second = draw(st.one_of(_two(d), st.sampled_from(["00", "59", "60"])))
    frac = draw(st.sampled_from(["", ".", ".1", ".12", ".123", ".123456", ".1234567", ".12a", ".١٢٣"]))
    zone = draw(st.sampled_from(["Z", "", "+00:00", "-05:30", "z", "ZZ", "+0000"]))
    sep = draw(st.sampled_from(["T", "T", "T", " ", "t"]))
    return f"{year}-{month}-{day}{sep}{hour}:{minute}:{second}{frac}{zone}"


@pytest.mark.slow  # a sweep: .ci/run runs it with -m slow
@settings(max_examples=3000, deadline=None)
@given(value=st.one_of(_stamps(), st.text(max_size=30)))
def test_quick_timestamp_check_matches_the_exact_one(value):
    assert _fast_timestamp_ok(value) == _slow_timestamp_ok(value), value


def test_quick_timestamp_check_on_known_values():
    assert _fast_timestamp_ok("2024-03-01T10:00:00.000Z")
    assert _fast_timestamp_ok("2024-02-29T23:59:59Z")  # a leap day
    assert not _fast_timestamp_ok("2023-02-29T10:00:00.000Z")  # not a leap year
    assert not _fast_timestamp_ok("2024-03-01T24:00:00.000Z")
    assert not _fast_timestamp_ok("2024-03-01T10:00:60Z")
    assert not _fast_timestamp_ok("0000-01-01T00:00:00Z")
    assert _fast_timestamp_ok(None) and not _fast_timestamp_ok(1709251200)
