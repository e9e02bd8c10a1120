"""The opt-in memory report (SAT_TRACEMALLOC) used to hunt leaks in long runs."""

import tracemalloc

from hypothesis import given, settings
from hypothesis import strategies as st

from kiosk import memtrace


@settings(derandomize=True, max_examples=200, deadline=None)
@given(value=st.text(max_size=12).filter(lambda v: not _valid(v)))
def test_anything_but_a_sensible_number_of_seconds_leaves_tracing_off(value):
    assert memtrace.start_from_env({memtrace.ENV: value}) is None
    assert not tracemalloc.is_tracing()


def _valid(value: str) -> bool:
    try:
        return 1 <= float(value.strip()) <= 86_400
    except ValueError:
        return False


def test_a_number_of_seconds_starts_tracing_and_growth_names_the_line_that_grew():
    thread = memtrace.start_from_env({memtrace.ENV: "3600"})
    try:
        assert thread is not None and thread.is_alive() and tracemalloc.is_tracing()
        before = memtrace._snapshot()
        kept = [bytearray(1024) for _ in range(2000)]  # about 2 MiB held here
        lines = memtrace.growth(before, memtrace._snapshot())
    finally:
        tracemalloc.stop()
    assert lines[0].startswith("traced ")
    assert " at test_memtrace.py:" in lines[1] and "(+2" in lines[1], lines[:3]  # the line that allocated, first
    assert len(kept) == 2000
