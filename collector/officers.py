"""Officers and the duty roster: who served at which counter, from when to when.

A rating is attributed to the officer on duty at its counter at its press time. Duties at one
counter may not overlap, so each rating has at most one officer; ratings with nobody on duty are
reported as such, never dropped.
"""

from __future__ import annotations

import csv
import io
import unicodedata
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from collector.anystore import Store
from collector.errors import CollectorError, NotFound
from collector.registry import Registry
from kiosk import wire

NOBODY = ""  # the "officer" of ratings made while nobody was on duty


class RosterError(CollectorError, ValueError):
    """A duty that cannot be entered (unknown officer or counter, overlap, bad time)."""


@dataclass(frozen=True)
class Officer:
    id: str
    name: str
    unit: str


@dataclass(frozen=True)
class Duty:
    id: int
    officer: str
    counter: str
    start_at: str  # UTC, contract time format
    end_at: str


def local_bounds(day_from: date, day_to: date, tz: ZoneInfo) -> tuple[str, str]:
    """UTC instants [start, end) covering local days ``day_from``..``day_to``."""
    start = datetime.combine(day_from, time(0), tz)
    end = datetime.combine(day_to + timedelta(days=1), time(0), tz)
    return wire.format_time(start), wire.format_time(end)


# A roster's times: what an office plans (a duty of 2000 … 2099); a duty at most a month long.
ROSTER_YEARS = (2000, 2099)
MAX_DUTY = timedelta(days=31)
NAME_MAX = 100  # an officer's name, in characters (it is printed on the signed form)


def parse_local(text: str, tz: ZoneInfo) -> str:
    """'2026-11-03 07:30' or '03/11/2026 07:30' (local time; seconds as Excel writes them are
    read too) → UTC contract time."""
    text = text.strip()
    for form in ("%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M", "%d/%m/%Y %H:%M", "%Y-%m-%d %H:%M:%S", "%d/%m/%Y %H:%M:%S"):
        try:
            moment = datetime.strptime(text[:40], form)
        except ValueError:
            continue
        if not ROSTER_YEARS[0] <= moment.year <= ROSTER_YEARS[1]:
            raise RosterError(f"time {text[:40]!r}: a year from {ROSTER_YEARS[0]} to {ROSTER_YEARS[1]}")
        return wire.format_time(moment.replace(tzinfo=tz))
    raise RosterError(f"time {text[:40]!r}: write it as YYYY-MM-DD HH:MM or DD/MM/YYYY HH:MM (local time)")


def clean_name(name: str) -> str:
    """An officer's name as stored: NFC, single spaces (a no-break space is a space), no control
    or formatting characters (a right-to-left override would turn the form's text around)."""
    name = unicodedata.normalize("NFC", name)
    if any(unicodedata.category(ch) in ("Cc", "Cf", "Co", "Cs", "Zl", "Zp") and ch not in "\t" for ch in name):
        raise RosterError("an officer's name holds a control or formatting character")
    name = " ".join(name.split())
    if not name:
        raise RosterError("an officer needs a name")
    if len(name) > NAME_MAX:
        raise RosterError(f"an officer's name is longer than {NAME_MAX} characters")
    return name


def name_key(name: str) -> str:
    """A name as it reads: two names with the same key look alike to a person (case, accents
    composed or not, spaces)."""
    return " ".join(unicodedata.normalize("NFC", name).casefold().split())


def check_span(start_at: str, end_at: str) -> None:
    if end_at <= start_at:
        raise RosterError("a duty must end after it starts")
    if wire.parse_time(end_at) - wire.parse_time(start_at) > MAX_DUTY:
        raise RosterError(f"a duty is at most {MAX_DUTY.days} days long")


def local_text(moment: str, tz: ZoneInfo) -> str:
    """A contract time as the roster's forms write it: 'YYYY-MM-DD HH:MM', local (parse_local reads it)."""
    return wire.parse_time(moment).astimezone(tz).strftime("%Y-%m-%d %H:%M")


class Officers:
    def __init__(self, store: Store, tz: ZoneInfo) -> None:
        self.store = store
        self.tz = tz

    # --- officers ------------------------------------------------------------------

    def add_officer(
        self, officer_id: str, name: str, unit: str, registry: Registry, *, within: frozenset[str] | None = None
    ) -> None:
        """Add an officer, or rename or move one. ``within``: the units the one asking may touch —
        an officer of a unit outside them is neither moved nor renamed."""
        if not wire.UNIT_ID.match(officer_id):
            raise RosterError(f"officer id {officer_id[:80]!r}: letters, digits, '.', '_', '-' only")
        name = clean_name(name)
        registry.unit(unit)
        if not self.store.officer_put(officer_id, name, unit, within=within):
            raise RosterError(f"officer id {officer_id!r} is taken by an officer of another unit; choose another id")

    def officer(self, officer_id: str) -> Officer:
        row = self.store.officer_get(officer_id)
        if row is None:
            raise NotFound(f"no officer {officer_id!r}")
        return Officer(*row)

    def officers(self, units: Iterable[str] | None = None) -> list[Officer]:
        rows = [Officer(*r) for r in self.store.officers_all()]
        if units is None:
            return rows
        allowed = set(units)
        return [o for o in rows if o.unit in allowed]

    # --- duties --------------------------------------------------------------------

    def add_duty(self, officer_id: str, counter: str, start_at: str, end_at: str, registry: Registry) -> int:
        self.officer(officer_id)
        registry.counter(counter)
        check_span(start_at, end_at)
        with self.store.transaction():
            return self._insert_duty(officer_id, counter, start_at, end_at)

    def _insert_duty(self, officer_id: str, counter: str, start_at: str, end_at: str) -> int:
        self._refuse_clash(officer_id, counter, start_at, end_at)
        return self.store.duty_insert(officer_id, counter, start_at, end_at)

    def _refuse_clash(self, officer_id: str, counter: str, start_at: str, end_at: str, other_than: int = 0) -> None:
        """Duties at one counter never overlap (each rating has at most one officer), and an
        officer is at one counter at a time."""
        clash = self.store.duty_clash(counter, start_at, end_at, other_than=other_than)
        if clash:
            raise RosterError(
                f"counter {counter} already has {self._who(clash[0])} on duty from {self._local(clash[1])} "
                f"to {self._local(clash[2])}"
            )
        elsewhere = self.store.officer_clash(officer_id, start_at, end_at, other_than=other_than)
        if elsewhere:
            raise RosterError(
                f"{self._who(officer_id)} is already on duty at counter {elsewhere[0]} from "
                f"{self._local(elsewhere[1])} to {self._local(elsewhere[2])}"
            )

    def _who(self, officer_id: str) -> str:
        row = self.store.officer_get(officer_id)
        return officer_id if row is None else f"{row[1]} ({officer_id})"

    def import_csv(self, text: str, registry: Registry, *, within: frozenset[str] | None = None) -> int:
        """Rows of ``officer,counter,start,end`` (local times; a header row is allowed).
        All rows go in, or none: the first bad row is reported with its line number. A file
        saved by Excel on a Vietnamese Windows (cells split by «;», a byte-order mark) is read too."""
        text = text.removeprefix("\ufeff")
        first = next((line for line in text.splitlines() if line.strip()), "")
        delimiter = ";" if ";" in first and "," not in first else ","
        try:
            rows = list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))
        except csv.Error as exc:  # a NUL byte, a stray carriage return, a field too long
            raise RosterError(f"not a CSV file this tool can read: {exc}") from None
        if rows and rows[0] and rows[0][0].strip().lower() in ("officer", "can_bo", "cán bộ"):
            rows = rows[1:]
            first_line = 2
        else:
            first_line = 1
        known = {o.id for o in self.officers(within)}  # ``within``: the units the one importing may touch
        added = 0
        with self.store.transaction():
            for number, row in enumerate(rows, start=first_line):
                if not row or not any(cell.strip() for cell in row):
                    continue
                if len(row) != 4:
                    raise RosterError(f"line {number}: expected officer,counter,start,end")
                officer_id, counter, start, end = (cell.strip() for cell in row)
                if officer_id not in known:
                    raise RosterError(f"line {number}: unknown officer {officer_id!r}")
                if counter not in registry.counters or (
                    within is not None and registry.counters[counter].unit not in within
                ):
                    raise RosterError(f"line {number}: unknown counter {counter!r}")
                try:
                    start_at, end_at = parse_local(start, self.tz), parse_local(end, self.tz)
                    check_span(start_at, end_at)
                    self._insert_duty(officer_id, counter, start_at, end_at)
                except RosterError as exc:
                    raise RosterError(f"line {number}: {exc}") from None
                added += 1
            if not added:
                raise RosterError("the file holds no duty")
        return added

    def duty(self, duty_id: int) -> Duty:
        row = self.store.duty_row(duty_id)
        if row is None:
            raise NotFound(f"no duty {duty_id}")
        return Duty(*row)

    def edit_duty(self, duty_id: int, officer_id: str, start_at: str, end_at: str) -> tuple[Duty, Duty]:
        """Give a duty another officer or times (a mistake put right): checked as a new one would
        be, against every other duty at its counter. Ratings in it are counted for its officer
        from then on, in every report. Returns (before, after)."""
        self.officer(officer_id)
        check_span(start_at, end_at)
        with self.store.transaction():
            before = self.duty(duty_id)
            self._refuse_clash(officer_id, before.counter, start_at, end_at, other_than=duty_id)
            self.store.duty_update(duty_id, officer_id, start_at, end_at)
        return before, Duty(duty_id, officer_id, before.counter, start_at, end_at)

    def end_duty(self, duty_id: int, at: str) -> str:
        """End a duty now (``at``): "removed" (it had not begun), "ended" or "over" (nothing to do).
        Ratings already attributed to it keep their officer: the duty's past stays."""
        self.duty(duty_id)
        return self.store.duty_end(duty_id, at)

    def duties_between(
        self, counters: Sequence[str], start_at: str, end_at: str, *, limit: int, offset: int = 0
    ) -> tuple[list[Duty], int]:
        """A page of the duties at these counters overlapping [start_at, end_at), and how many in all."""
        rows, total = self.store.duties_between(counters, start_at, end_at, limit=limit, offset=offset)
        return [Duty(*r) for r in rows], total

    def duties(self, *, counter: str | None = None, officer: str | None = None, limit: int = 500) -> list[Duty]:
        return [Duty(*r) for r in self.store.duties(counter=counter, officer=officer, limit=limit)]

    # --- attribution -------------------------------------------------------------------

    def by_officer(
        self, counters: Iterable[str], day_from: date, day_to: date, *, exclude_unsynced: bool = False
    ) -> dict[str, dict[int, int]]:
        """Accepted ratings per officer (``NOBODY`` for none on duty) and score, at these counters;
        without those pressed while the kiosk's clock was unsynced when ``exclude_unsynced``."""
        start, end = local_bounds(day_from, day_to, self.tz)
        out: dict[str, dict[int, int]] = defaultdict(lambda: dict.fromkeys((1, 2, 3, 4), 0))
        for counter in counters:
            totals = dict.fromkeys((1, 2, 3, 4), 0)
            totals.update(self.store.scores_between(counter, start, end, exclude_unsynced=exclude_unsynced))
            if not any(totals.values()):
                continue
            for officer_id, score, n in self.store.scores_on_duty(
                counter, start, end, exclude_unsynced=exclude_unsynced
            ):
                out[officer_id][score] += n
                totals[score] -= n
            if any(totals.values()):
                for score, n in totals.items():
                    out[NOBODY][score] += n
        return dict(out)

    def officer_by_counter(self, officer_id: str, day_from: date, day_to: date) -> dict[str, dict[int, int]]:
        """The officer's accepted ratings per counter and score while on duty."""
        start, end = local_bounds(day_from, day_to, self.tz)
        out: dict[str, dict[int, int]] = defaultdict(lambda: dict.fromkeys((1, 2, 3, 4), 0))
        for counter, score, n in self.store.officer_scores(officer_id, start, end):
            out[counter][score] += n
        return dict(out)

    def _local(self, moment: str) -> str:
        return wire.parse_time(moment).astimezone(self.tz).strftime("%d/%m/%Y %H:%M")
