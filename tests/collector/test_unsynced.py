"""Ratings pressed while a kiosk's clock was not synchronised have an unverified time: the roll-ups
count them, reports say how many there are, and the three-level form can leave them out."""

import io
from dataclasses import replace
from datetime import date

import pytest
import sqlite_utils
from openpyxl import load_workbook

from collector.config import ReportSettings, settings_from_dict
from collector.store import MIGRATIONS, SqliteStore
from kiosk.sqlite import migrate, open_database
from tests.collector.conftest import PASSWORD, read_csv
from tests.ratings import make_rating, store_ratings

MONTH = "period=month&at=2026-10-15"


@pytest.fixture
def october(store, settings, users):
    """Văn Bàn's vb-q1 in October 2026: 5 ratings, 3 of them (two 4s, one 1) with an unsynced clock,
    one flagged unsynced press; and one unsynced rating at Sa Pa."""
    rows = [(4, "synced", None), (3, "corrected", None), (4, "unsynced", None), (4, "unsynced", None)]
    rows += [(1, "unsynced", None), (2, "unsynced", "lockout")]
    ratings = [
        make_rating(seq=i + 1, counter="vb-q1", score=s, clock=clock, flag=flag, pressed_at="2026-10-20T03:00:00.000Z")
        for i, (s, clock, flag) in enumerate(rows)
    ]
    ratings.append(make_rating(seq=50, counter="sp-q1", clock="unsynced", pressed_at="2026-10-21T03:00:00.000Z"))
    store_ratings(store, ratings, tz=settings.tz)


@pytest.fixture
def admin(client_for):
    client = client_for("admin")
    client.auth = None
    client.post("/login", data={"username": "admin", "password": PASSWORD})
    return client


def test_rollups_count_unsynced_ratings_over_days_and_whole_months(store, october):
    by_day = store.counts(["vb-q1"], date(2026, 10, 20), date(2026, 10, 20), by="day")
    year = store.counts(["vb-q1"], date(2026, 1, 1), date(2026, 12, 31), by="counter")  # monthly roll-up
    for counts in (by_day, year):
        assert sum(c.unsynced for c in counts if not c.flagged) == 3
        assert sum(c.unsynced for c in counts if c.flagged) == 1
        assert {c.score: c.unsynced for c in counts if not c.flagged and c.unsynced} == {4: 2, 1: 1}


def test_summaries_say_how_many_ratings_have_an_unverified_time(admin, october):
    counter = admin.get("/api/v1/counters/vb-q1/summary?from=2026-10-01&to=2026-10-31").json()
    assert counter["total"] == 5 and counter["unsynced"] == 3
    assert next(d for d in counter["days"] if d["day"] == "2026-10-20")["unsynced"] == 3
    province = admin.get("/api/v1/units/10/summary?from=2026-01-01&to=2026-12-31").json()
    assert province["unsynced"] == 4 and "months" in province
    van_ban = next(c for c in province["children"] if c["id"] == "10.085")
    assert van_ban["unsynced"] == 3


def test_pages_and_exports_show_the_unsynced_count(admin, october):
    page = admin.get(f"/counters/vb-q1?{MONTH}").text
    assert "Lượt có thời gian chưa xác minh" in page and '<div class="value" data-unsynced>3</div>' in page
    rows = read_csv(admin.get(f"/units/10.085/table.csv?{MONTH}").content)
    column = rows[0].index("Lượt có thời gian chưa xác minh")
    assert next(r for r in rows if r[0] == "Quầy 1 — Đất đai (Văn Bàn)")[column] == "3"
    days = read_csv(admin.get(f"/counters/vb-q1/days.csv?{MONTH}").content)
    column = days[0].index("Lượt có thời gian chưa xác minh")
    assert next(r for r in days if r[0] == "20/10/2026")[column] == "3"


def _form(settings, store, exclude: bool) -> list[tuple]:
    from collector import documents
    from collector.periods import period_of

    settings = replace(settings, reports=ReportSettings(three_level_exclude_unsynced=exclude))
    registry = store.load_registry()
    table = documents.three_level_form(
        settings, store, registry, "10.085", period_of("month", date(2026, 10, 15)), date(2026, 11, 2)
    )
    from collector import exports

    return list(load_workbook(io.BytesIO(exports.three_level_xlsx(table))).active.iter_rows(values_only=True))


def test_three_level_form_counts_unsynced_ratings_by_default_and_says_so(settings, store, october):
    values = _form(settings, store, exclude=False)
    assert values[4][0] == "Trong đó 3 lượt đánh giá có thời gian chưa xác minh (đồng hồ thiết bị chưa đồng bộ)"
    assert next(r for r in values if r and r[1] == "Tổng cộng")[3] == 5


def test_three_level_form_leaves_unsynced_ratings_out_by_setting(settings, store, october):
    values = _form(settings, store, exclude=True)
    assert values[4][0] == "Không tính 3 lượt đánh giá có thời gian chưa xác minh (đồng hồ thiết bị chưa đồng bộ)"
    total = next(r for r in values if r and r[1] == "Tổng cộng")
    assert total[3] == 2 and (total[4], total[6], total[8]) == (1, 1, 0)  # the synced 4 and the corrected 3
    # From the review: its note counted «Bình thường» among the ratings left out; it counts the form's.
    notes = [str(r[0]) for r in values if r and r[0] and "Bình thường" in str(r[0])]
    assert notes and "(0 lượt) được tính là «Hài lòng»" in notes[0], notes
    assert any("Tỷ lệ hài lòng theo mẫu 3 mức = (Rất hài lòng + Hài lòng) / tổng số lượt = 100,0 %" in str(r[0])
               for r in values if r)  # fmt: skip


def test_the_setting_is_read_from_collector_toml(tmp_path):
    doc = {"data_dir": "d", "reports": {"three_level_exclude_unsynced": True}}
    assert settings_from_dict(doc, base_dir=tmp_path).reports.three_level_exclude_unsynced is True
    assert settings_from_dict({"data_dir": "d"}, base_dir=tmp_path).reports.three_level_exclude_unsynced is False


def test_a_store_from_before_migration_6_gets_its_unsynced_counts(tmp_path, settings):
    path = tmp_path / "old.db"
    db = open_database(path)
    migrate(db, MIGRATIONS[:3], name="old store")
    old = sqlite_utils.Database(db.conn)
    for i, (clock, day) in enumerate(
        (("unsynced", "2026-10-20"), ("synced", "2026-10-20"), ("unsynced", "2026-09-30"))
    ):
        old.execute(
            "INSERT INTO ratings VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            [f"r{i}", "k-vb-q1", "a1b2c3d4", i + 1, "vb-q1", "10.085", 4, None, f"{day}T03:00:00.000Z", day, clock]
            + [None, None, None, "0.1.0", "2026-11-05T03:00:00.000Z"],
        )
        for table, period in (("daily", day), ("monthly", day[:7])):
            old.execute(
                f"INSERT INTO {table} VALUES ('vb-q1', ?, 4, 0, 1) ON CONFLICT DO UPDATE SET n = n + 1", [period]
            )
    db.conn.close()

    store = SqliteStore(path)
    counts = store.counts(["vb-q1"], date(2026, 9, 1), date(2026, 10, 31), by="counter")
    assert [(c.n, c.unsynced) for c in counts] == [(3, 2)]
    days = store.counts(["vb-q1"], date(2026, 10, 20), date(2026, 10, 20), by="day")
    assert [(c.n, c.unsynced) for c in days] == [(2, 1)]
    # Received in November for September and October: noted as having come after their month closed.
    assert store.conn.execute("SELECT COUNT(*) FROM after_month").fetchone()[0] == 3
    store.close()
