"""Clinicians' feedback on the rules, in SQLite: what fired, what was accepted or overridden and why.

No patient identity is stored: a case is its SHA-256 (``engine.case_hash``), a rule is its id and version.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

__all__ = ["DB_NAME", "Card", "FeedbackStore", "RuleTally", "flagged", "utc_now"]

DB_NAME = "feedback.sqlite3"
MAX_REASON = 1000
"""Characters of a free-text reason kept; the rest is cut (a reason is a sentence, not a note)."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS cards (
    uuid TEXT PRIMARY KEY,
    service TEXT NOT NULL,
    case_hash TEXT NOT NULL,
    rule_id TEXT,
    rule_version TEXT,
    status TEXT NOT NULL,
    time TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY,
    time TEXT NOT NULL,
    source TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('fired', 'accepted', 'overridden', 'disagreed')),
    case_hash TEXT NOT NULL,
    rule_id TEXT,
    rule_version TEXT,
    status TEXT,
    card_uuid TEXT,
    reason_code TEXT,
    reason TEXT
);
CREATE INDEX IF NOT EXISTS events_rule ON events (rule_id, rule_version);
CREATE TABLE IF NOT EXISTS seen_jti (
    jti TEXT PRIMARY KEY,
    expires REAL NOT NULL
);
"""


def utc_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def flagged(result: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(rule id, version, status) of what a clinician is shown as a finding: failed or undecided criteria and
    recommendations made. This is what 'fired' counts."""
    out: list[tuple[str, str, str]] = []
    seen: set[tuple[str, str, str]] = set()
    for line in [*result.get("constraints", []), *result.get("advisories", [])]:
        if line["status"] in ("fail", "indeterminate"):
            key = (line["rule_id"], line["rule_version"], line["status"])
            if key not in seen:
                seen.add(key)
                out.append(key)
    for rec in result.get("recommendations", []):
        if rec["status"] == "made":
            key = (rec["rule_id"], rec["rule_version"], "made")
            if key not in seen:
                seen.add(key)
                out.append(key)
    return out


@dataclass(frozen=True)
class Card:
    uuid: str
    case_hash: str
    rule_id: str | None
    rule_version: str | None
    status: str


@dataclass
class RuleTally:
    rule_id: str
    rule_version: str
    fired: int = 0
    accepted: int = 0
    overridden: int = 0
    disagreed: int = 0
    reasons: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "rule_id": self.rule_id,
            "rule_version": self.rule_version,
            "fired": self.fired,
            "accepted": self.accepted,
            "overridden": self.overridden,
            "disagreed": self.disagreed,
            "reasons": [
                {"reason": r, "count": n} for r, n in sorted(self.reasons.items(), key=lambda x: -x[1])
            ],
        }


class FeedbackStore:
    """One SQLite file under the service's data folder; a connection per operation (thread-safe, WAL)."""

    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / DB_NAME
        self._lock = threading.Lock()
        with self._connect() as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(_SCHEMA)

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=10)
        try:
            with db:
                yield db
        finally:
            db.close()

    def record_cards(self, service: str, cards: list[Card]) -> None:
        now = utc_now()
        with self._lock, self._connect() as db:
            db.executemany(
                "INSERT OR IGNORE INTO cards VALUES (?, ?, ?, ?, ?, ?, ?)",
                [(c.uuid, service, c.case_hash, c.rule_id, c.rule_version, c.status, now) for c in cards],
            )
            db.executemany(
                "INSERT INTO events (time, source, kind, case_hash, rule_id, rule_version, status, card_uuid) "
                "VALUES (?, 'cds', 'fired', ?, ?, ?, ?, ?)",
                [(now, c.case_hash, c.rule_id, c.rule_version, c.status, c.uuid) for c in cards if c.rule_id],
            )

    def record_fired(self, source: str, case_hash: str, fired: list[tuple[str, str, str]]) -> None:
        now = utc_now()
        with self._lock, self._connect() as db:
            db.executemany(
                "INSERT INTO events (time, source, kind, case_hash, rule_id, rule_version, status) "
                "VALUES (?, ?, 'fired', ?, ?, ?, ?)",
                [(now, source, case_hash, r, v, s) for r, v, s in fired],
            )

    def card(self, uuid: str) -> Card | None:
        with self._connect() as db:
            row = db.execute(
                "SELECT uuid, case_hash, rule_id, rule_version, status FROM cards WHERE uuid = ?", (uuid,)
            ).fetchone()
        return Card(*row) if row else None

    def record_outcome(
        self,
        source: str,
        kind: str,
        case_hash: str,
        rule_id: str | None,
        rule_version: str | None,
        *,
        card_uuid: str | None = None,
        reason_code: str | None = None,
        reason: str | None = None,
        time: str | None = None,
    ) -> None:
        with self._lock, self._connect() as db:
            db.execute(
                "INSERT INTO events (time, source, kind, case_hash, rule_id, rule_version, card_uuid, "
                "reason_code, reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    time or utc_now(),
                    source,
                    kind,
                    case_hash,
                    rule_id,
                    rule_version,
                    card_uuid,
                    reason_code,
                    reason[:MAX_REASON] if reason else None,
                ),
            )

    def claim_jti(self, jti: str, expires: float, now: float) -> bool:
        """True the first time a JWT id is seen before it expires; False for a replay."""
        with self._lock, self._connect() as db:
            db.execute("DELETE FROM seen_jti WHERE expires < ?", (now,))
            try:
                db.execute("INSERT INTO seen_jti VALUES (?, ?)", (jti, expires))
            except sqlite3.IntegrityError:
                return False
        return True

    def report(self) -> list[RuleTally]:
        """Per rule and version: how often it fired, was accepted, overridden or disagreed with, and the reasons."""
        tallies: dict[tuple[str, str], RuleTally] = {}
        with self._connect() as db:
            rows = db.execute(
                "SELECT COALESCE(rule_id, '(no rule: missing data)'), COALESCE(rule_version, ''), kind, "
                "reason_code, reason FROM events ORDER BY id"
            ).fetchall()
        for rule_id, version, kind, code, reason in rows:
            tally = tallies.setdefault((rule_id, version), RuleTally(rule_id, version))
            setattr(tally, kind, getattr(tally, kind) + 1)
            if kind != "fired" and (code or reason):
                text = " — ".join(x for x in (code, reason) if x)
                tally.reasons[text] = tally.reasons.get(text, 0) + 1
        return [tallies[k] for k in sorted(tallies)]
