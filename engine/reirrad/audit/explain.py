"""One stored case re-evaluated with the audit's pinned rule pack: its full explanation, as ``reirrad evaluate`` prints
it, checked against the verdicts the audit stored (``reirrad explain AUDIT_DIR CASE_ID``)."""

from __future__ import annotations

import json
import shutil
from datetime import date
from pathlib import Path
from typing import Any

from reirrad.errors import EngineError, InputError, Problem
from reirrad.knowledge.rulepack import RulePack, load_pack

__all__ = ["explain_case", "open_audit", "write_explanations"]


def _refuse(where: str, message: str, accepted: str, code: str = "explain") -> InputError:
    return InputError.of([Problem(where, (), message, accepted, code=code)])


def open_audit(out: Path, rules: Path | None = None) -> tuple[Any, dict[str, Any], RulePack]:
    """The audit's database (read only), its manifest and the rule pack it pinned, or a refusal saying why not."""
    from reirrad.audit.store import DB_FILE, Store

    if not (out / DB_FILE).is_file():
        raise _refuse(
            str(out), "no audit database here", f"a directory written by reirrad audit (it holds {DB_FILE})"
        )
    store = Store(out, read_only=True)
    try:
        manifest = store.metadata().get("manifest")
        if not manifest:
            raise _refuse(
                str(out / DB_FILE), "the audit has no manifest", "an audit written by reirrad audit"
            )
        pack = pinned_pack(manifest, rules)
    except BaseException:
        store.close()
        raise
    return store, manifest, pack


def pinned_pack(manifest: dict[str, Any], rules: Path | None) -> RulePack:
    """--rules, else the pack directory the audit used, else the default pack; refused unless its content hash is the
    audit's."""
    want = manifest["rule_pack"]
    where = rules or (Path(manifest["rules"]) if manifest.get("rules") else None)
    pack = load_pack(where) if where is not None else load_pack()
    if pack.content_sha256 != want["content_sha256"]:
        raise _refuse(
            str(where or "the default rule pack"),
            f"the rule pack differs from the one the audit used: the audit was run with {want['name']} "
            f"{want['version']} (content sha256 {want['content_sha256'][:12]}…), this pack is {pack.name} "
            f"{pack.version} (content sha256 {pack.content_sha256[:12]}…); its explanation would not be the audit's",
            "--rules DIR naming the pack the audit used (same content hash), or a new audit with this pack",
            code="explain.pack",
        )
    return pack


def explain_case(
    store: Any, manifest: dict[str, Any], pack: RulePack, case_id: str, cache: Any = None
) -> tuple[str, dict[str, Any]]:
    """The case's full text explanation and its result, re-evaluated as the audit evaluated it."""
    row = store.con.execute(
        "SELECT seq, case_id, source, as_of, document FROM cases WHERE case_id = ? ORDER BY seq LIMIT 1",
        [case_id],
    ).fetchone()
    if row is None:
        rejected = store.con.execute(
            "SELECT source, message FROM errors WHERE case_id = ? ORDER BY seq, message LIMIT 3", [case_id]
        ).fetchall()
        if rejected:
            why = "; ".join(f"{s}: {m}" for s, m in rejected)
            raise _refuse(
                case_id,
                f"the audit rejected this case ({why})",
                "a case the audit evaluated",
                "explain.rejected",
            )
        raise _refuse(
            case_id, "no case with this id in the audit", "a case_id of the cases table", "explain.unknown"
        )
    stored = store.con.execute(
        "SELECT rule_id, coalesce(structure, ''), coalesce(metric, ''), status FROM constraint_lines WHERE seq = ?",
        [row[0]],
    ).fetchall()
    return _explain_row(row, stored, manifest, pack, cache)


def _explain_row(
    row: tuple[Any, ...], stored: list[tuple[Any, ...]], manifest: dict[str, Any], pack: RulePack, cache: Any
) -> tuple[str, dict[str, Any]]:
    from reirrad.audit.evaluators import EvaluatorCache, validate_document
    from reirrad.audit.inputs import ConstLines
    from reirrad.explain.report import render_text

    _, case_id, source, as_of, document = row
    case, problems = validate_document(json.loads(document), ConstLines(0), source)
    if case is None:
        raise EngineError(f"{case_id}: the stored document no longer validates: {problems[0].render()}")
    on = as_of if isinstance(as_of, date) else date.fromisoformat(str(as_of))
    cache = cache or EvaluatorCache(pack, manifest["engine"])
    ev, _ = cache.for_date(on)
    result = ev.evaluate(
        case, as_of=on
    )  # as the audit did: the evaluator is shared by every date of its rule set
    now = sorted(
        (e["rule_id"], e["structure"] or "", e["metric"] or "", e["status"]) for e in result["constraints"]
    )
    if sorted(stored) != now:  # the re-evaluation must give the stored verdicts; anything else is a fault
        diff = sorted(set(stored) ^ set(now))[:3]
        raise EngineError(f"{case_id}: the re-evaluation differs from the stored verdicts ({diff})")
    return render_text(result), result


def write_explanations(store: Any, summary: dict[str, Any], out: Path, pack: RulePack) -> None:
    """explanations/CASE_ID.txt for every non-conforming case listed in the report (the report links them)."""
    from reirrad.audit.evaluators import EvaluatorCache

    directory = out / "explanations"
    shutil.rmtree(directory, ignore_errors=True)
    seqs = sorted({c["seq"] for c in summary["non_conforming"]["listed"]})
    if not seqs:
        return
    directory.mkdir()
    manifest = store.metadata()["manifest"]
    cache = EvaluatorCache(pack, manifest["engine"])
    store.con.execute("CREATE OR REPLACE TEMP TABLE listed AS SELECT unnest(?::BIGINT[]) AS seq", [seqs])
    rows = store.con.execute(
        "SELECT seq, case_id, source, as_of, document FROM cases JOIN listed USING (seq) ORDER BY seq"
    ).fetchall()
    lines: dict[int, list[tuple[Any, ...]]] = {}
    for seq, *rest in store.con.execute(
        "SELECT seq, rule_id, coalesce(structure, ''), coalesce(metric, ''), status FROM constraint_lines "
        "JOIN listed USING (seq)"
    ).fetchall():
        lines.setdefault(seq, []).append(tuple(rest))
    for row in rows:
        text, _ = _explain_row(row, lines.get(row[0], []), manifest, pack, cache)
        (directory / f"{row[1]}.txt").write_text(text, encoding="utf-8")
