"""Where a long-running process's memory goes: an opt-in tracemalloc report for the kiosk and the
collector, for finding a leak on a machine that has run for days.

With ``SAT_TRACEMALLOC=<seconds>`` in the environment, the process starts tracemalloc at once and
logs, every that many seconds, the allocation sites whose memory grew most since the first report
(one line each: size, growth, count, file:line). Off by default: tracing costs CPU and memory.
"""

from __future__ import annotations

import logging
import os
import threading
import tracemalloc

log = logging.getLogger(__name__)

ENV = "SAT_TRACEMALLOC"
TOP = 12


def start_from_env(environ: dict[str, str] | None = None) -> threading.Thread | None:
    """Start the reports when the environment asks for them; returns their thread, or None."""
    value = (environ if environ is not None else os.environ).get(ENV, "").strip()
    if not value:
        return None
    try:
        every_s = float(value)
    except ValueError:
        log.warning("%s=%r is not a number of seconds; memory tracing stays off", ENV, value)
        return None
    if not 1 <= every_s <= 86_400:
        log.warning("%s=%r must be 1..86400 seconds; memory tracing stays off", ENV, value)
        return None
    tracemalloc.start(4)
    thread = threading.Thread(target=_report_forever, args=(every_s,), name="memtrace", daemon=True)
    thread.start()
    log.info("memory tracing on: a report every %g s", every_s)
    return thread


def _report_forever(every_s: float) -> None:
    first: tracemalloc.Snapshot | None = None
    stop = threading.Event()
    while not stop.wait(every_s):
        snapshot = _snapshot()
        if first is None:
            first = snapshot
            continue
        for line in growth(first, snapshot):
            log.info("memory growth: %s", line)


def _snapshot() -> tracemalloc.Snapshot:
    return tracemalloc.take_snapshot().filter_traces(
        (
            tracemalloc.Filter(False, tracemalloc.__file__),
            tracemalloc.Filter(False, "<frozen importlib._bootstrap>"),
            tracemalloc.Filter(False, "<unknown>"),
        )
    )


def growth(before: tracemalloc.Snapshot, after: tracemalloc.Snapshot, top: int = TOP) -> list[str]:
    """The ``top`` allocation sites that grew most, as text lines (total traced first)."""
    stats = after.compare_to(before, "traceback")
    total = sum(s.size for s in after.statistics("filename"))
    lines = [f"traced {total / 2**20:.1f} MiB"]
    for stat in sorted(stats, key=lambda s: s.size_diff, reverse=True)[:top]:
        if stat.size_diff <= 0:
            break
        # the allocating line first, then its callers
        where = " < ".join(f"{f.filename.rsplit('/', 1)[-1]}:{f.lineno}" for f in reversed(stat.traceback))
        lines.append(
            f"{stat.size / 1024:.0f} KiB ({stat.size_diff / 1024:+.0f} KiB, {stat.count_diff:+d} blocks) at {where}"
        )
    return lines
