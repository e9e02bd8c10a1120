"""The JSON API's answers as typed models, for the OpenAPI document (/openapi.json, /docs): what a
script or a BI tool can rely on. The routes still build plain dicts (the same ones the pages
and documents use); FastAPI checks them against these and leaves out what was not set, so an
answer is what it was before, now described. Fields a later version adds are let through."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class _Model(BaseModel):
    model_config = ConfigDict(extra="allow")


class Figures(_Model):
    total: int = Field(description="accepted ratings (flagged presses are counted apart)")
    by_score: dict[str, int] = Field(description='ratings per score, "4" = Rất hài lòng … "1" = Không hài lòng')
    satisfaction_rate: float | None = Field(description="(score 4 + score 3) / total; null without ratings")
    average: float | None = Field(description="mean score 1–4")
    index: float | None = Field(description="0–100: score 4 = 100, 3 = 66.7, 2 = 33.3, 1 = 0")


class PeriodFigures(Figures):
    flagged: int = Field(description="presses the kiosk flagged (too fast, a burst): never in the rate")
    unsynced: int = Field(description="of the ratings, how many were pressed with the kiosk's clock unsynchronised")


class Day(PeriodFigures):
    day: str = Field(description="local day, YYYY-MM-DD")


class Month(PeriodFigures):
    month: str = Field(description="local month, YYYY-MM (the period's first and last may be partial)")


class KioskBacklogOut(_Model):
    kiosk: str
    state: str
    ratings: int
    oldest_at: str | None
    reported_at: str | None


class Completeness(_Model):
    complete_up_to: str | None = Field(description="the oldest press a kiosk still holds (UTC); null: none or unknown")
    pending_ratings: int
    period_complete: bool
    kiosks: list[KioskBacklogOut]


class Ref(_Model):
    id: str
    name: str


class CounterSummary(PeriodFigures):
    counter: str
    name: str
    unit: Ref
    kiosks: list[str]
    from_: str = Field(alias="from")
    to: str
    days: list[Day] | None = Field(default=None, description="per day, up to a quarter")
    months: list[Month] | None = Field(default=None, description="per month, beyond a quarter")
    completeness: Completeness | None = None


class Child(PeriodFigures):
    kind: str = Field(description='"unit" or "counter"')
    id: str
    name: str
    level: str | None = None


class UnitSummary(PeriodFigures):
    unit: str
    name: str
    level: str
    path: list[Ref]
    from_: str = Field(alias="from")
    to: str
    children: list[Child]
    days: list[Day] | None = None
    months: list[Month] | None = None
    completeness: Completeness | None = None


class UnitNode(_Model):
    id: str
    name: str
    level: str
    counters: list[Ref]
    children: list[UnitNode]


class UnitTree(_Model):
    units: list[UnitNode]


class KioskHealth(_Model):
    kiosk: str
    counter: str
    online: bool
    state: str = Field(description='online, offline or "never_seen"')
    last_seen: str | None
    backlog: dict[str, Any] | None
    camera: str | None
    clock: str | None
    panel: str | None
    fw: str | None
    uptime_s: float | None
    suppressed_presses: int | None
    last_press_at: str | None
    possibly_missing_ratings: int
    selftest: dict[str, Any] | None
    update: dict[str, Any] | None


class Kiosks(_Model):
    kiosks: list[KioskHealth]


class CounterFigures(Figures):
    counter: str


class OfficerSummary(Figures):
    officer: str
    name: str
    unit: str
    from_: str = Field(alias="from")
    to: str
    counters: list[CounterFigures]


class OfficerFigures(Figures):
    officer: str | None = Field(description="null: ratings while nobody was on duty")
    name: str | None


class UnitOfficers(_Model):
    unit: str
    from_: str = Field(alias="from")
    to: str
    officers: list[OfficerFigures]


class AlertOut(_Model):
    id: int
    kind: str
    target: str = Field(description="the counter or kiosk it is about")
    unit: str
    opened_at: str
    detail: str = Field(description="in Vietnamese")
    detail_en: str
    facts: dict[str, Any] | None = Field(description="what the alert says, as data; null for an alert stored before")
    acked_by: str | None
    acked_at: str | None
    ack_comment: str | None


class Alerts(_Model):
    alerts: list[AlertOut]


class QuarantinedOut(_Model):
    id: int
    topic: str
    received_at: str
    reason: str
    detail: str
    bytes: int
    preview: str


class Quarantine(_Model):
    next_after_id: int | None = Field(description="pass as after_id for the next page; null on the last")
    entries: list[QuarantinedOut]
