"""``Store``: either back-end, for code that works on both (the pages, accounts, roster, alerts,
reports, mail). What they may call is what both implement: ``RatingStore`` and the shared ports
of :mod:`collector.sqlshared`."""

from __future__ import annotations

from typing import TypeAlias

from collector.pgstore import PostgresStore
from collector.store import SqliteStore

Store: TypeAlias = SqliteStore | PostgresStore
