"""The audit's summary, computed from its database (SQL), and the files written from it (summary.json, report.html,
explanations of the non-conforming cases, Parquet). Definitions: docs/audit.md ("summary.json").

Limits drawn or counted are the rules' own (``RulePack`` limit of each rule version that judged a case), never
constants of this module: change a limit in the pack and the plot and its counts change with it.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

from reirrad.audit.store import SUMMARY_MEMORY_LIMIT
from reirrad.knowledge.rulepack import Rule, RulePack

__all__ = ["FRAGILE_RULE", "SAMPLE", "build_summary", "write_outputs"]

SAMPLE = 2000
"""Points drawn per scatter (a fixed hash sample); counts always use every case."""
LISTED = 500
"""Non-conforming cases listed (with an explanation file each) in the report; the rest are counted."""
_STATUSES = ("pass", "fail", "indeterminate", "not_applicable")
FRAGILE_RULE = (
    "a failing criterion is fragile when the same criterion passes for the same structure on another dose "
    "metric (the verdict depends on which metric is read, e.g. Dmax against D0.03cc), or when the failing line "
    "rests on an assumption (an earlier course whose plan data is lost), or when another reading the sources allow "
    "(rules/readings/) would change the verdict"
)
_FACT_WORDS = {
    "prior_course_count": {
        "gt 0": "the level was irradiated before",
        "eq 0": "a first course (no earlier course)",
    },
    "planned_stereotactic": {"eq True": "the planned course is SBRT or SRS"},
}
_CASE_COLUMN = {
    "prior_course_count": "prior_courses",
    "planned_stereotactic": "stereotactic",
    "planned_fractions": "fractions",
}
_OPS = {"gt": ">", "ge": "≥", "lt": "<", "le": "≤", "eq": "=", "ne": "≠"}


def _q(store: Any, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
    return list(store.con.execute(sql, params or []).fetchall())


def _one(store: Any, sql: str, params: list[Any] | None = None) -> Any:
    row = store.con.execute(sql, params or []).fetchone()
    return row[0] if row else None


BATCH = 200_000
"""Records per batch of the per-case queries: each batch fits DuckDB's capped buffer pool whatever the cohort."""


def _batched(store: Any, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
    """Run a per-case aggregate over batches of records and add up its counts (the last column), by the other
    columns. The SQL reads the views ``bl``, ``bv`` and ``bc``: constraint_lines, policy_verdicts and cases of one
    batch (cases are never split across batches, so per-case counts add up)."""
    top = _one(store, "SELECT max(seq) FROM cases")
    totals: dict[tuple[Any, ...], int] = {}
    if top is None:
        return []
    for lo in range(0, int(top) + 1, BATCH):
        hi = lo + BATCH
        for view, table in (("bl", "constraint_lines"), ("bv", "policy_verdicts"), ("bc", "cases")):
            store.con.execute(
                f"CREATE OR REPLACE TEMP VIEW {view} AS SELECT * FROM {table} WHERE seq >= {lo} AND seq < {hi}"
            )
        for row in _q(store, sql, params):
            key = tuple(row[:-1])
            totals[key] = totals.get(key, 0) + int(row[-1])
    return [(*k, v) for k, v in sorted(totals.items(), key=lambda kv: tuple(str(x) for x in kv[0]))]


def _iso(value: Any) -> str | None:
    return value.isoformat() if isinstance(value, date) else value


# --- the rules' own words and limits ----------------------------------------------------------------------------


def _conditions(rule: Rule) -> list[tuple[str, str, Any]]:
    cond = rule.applies_when
    items = cond.get("all", [cond]) if isinstance(cond, dict) else []
    out = []
    for c in items:
        if isinstance(c, dict) and "fact" in c:
            op = next((k for k in c if k in _OPS), "")
            if op:
                out.append((c["fact"], op, c[op]))
    return out


def _condition_text(fact: str, op: str, value: Any) -> str:
    words = _FACT_WORDS.get(fact, {}).get(f"{op} {value}")
    if words:
        return words
    if fact == "planned_fractions":
        return f"the planned course has {_OPS[op]} {value} fractions"
    return f"{fact} {_OPS[op]} {value}"


def _holds(value: Any, op: str, target: Any) -> bool:
    try:
        return bool(
            {
                "gt": lambda: value > target,
                "ge": lambda: value >= target,
                "lt": lambda: value < target,
                "le": lambda: value <= target,
                "eq": lambda: value == target,
                "ne": lambda: value != target,
            }[op]()
        )
    except TypeError:
        return False


def _limits(pack: RulePack, rule_id: str, versions: list[str]) -> list[dict[str, Any]]:
    """The limit(s) of the versions of a rule that judged cases: one value, or a table's values with their notes."""
    out: list[dict[str, Any]] = []
    for r in pack.rules:
        if r.id != rule_id or r.version not in versions or r.limit is None:
            continue
        span = f"v{r.version}, in force from {r.valid_from}" + (
            f" until {r.valid_until}" if r.valid_until else ""
        )
        if r.limit.value is not None:
            out.append(
                {
                    "value": r.limit.value,
                    "operator": r.limit.operator,
                    "label": f"{r.limit.value:g}",
                    "rule": span,
                }
            )
        else:
            for e in r.limit.table:
                out.append(
                    {
                        "value": e.value,
                        "operator": r.limit.operator,
                        "label": f"{e.value:g}",
                        "key": f"{r.limit.by} {e.key}",
                        "rule": span,
                        "note": e.note or "",
                    }
                )
    return out


# --- the summary ---------------------------------------------------------------------------------------------


def build_summary(store: Any, manifest: dict[str, Any], pack: RulePack) -> dict[str, Any]:
    con = store.con
    con.execute("SET threads = 2")
    # the workers have exited: their memory is what the summary's per-batch aggregates use
    con.execute(f"SET memory_limit = '{SUMMARY_MEMORY_LIMIT}'")
    totals = store.totals()
    s: dict[str, Any] = {
        "schema": "reirrad/audit-summary/v2",
        "input": manifest["input"]["path"],
        "input_sha256": manifest["input"]["sha256"],
        "mapped": "map_sha256" in manifest["input"],
        "pseudonymised": "key_check" in manifest["input"],
        "as_of": manifest["as_of"],
        "now": manifest["now"],
        "compare_now": manifest["compare_now"],
        "engine": manifest["engine"],
        "rule_pack": manifest["rule_pack"],
        "counts": {k: totals[k] for k in ("records", "evaluated", "rejected", "blank")},
    }
    first, last, sbrt, conv = con.execute(
        "SELECT min(planned_start), max(planned_start), count(*) FILTER (WHERE stereotactic), "
        "count(*) FILTER (WHERE NOT stereotactic) FROM cases"
    ).fetchone() or (None, None, 0, 0)
    s["treatment_dates"] = {"first": _iso(first), "last": _iso(last)}
    s["courses"] = {
        "stereotactic": sbrt,
        "conventional": conv,
        "reirradiation": _one(store, "SELECT count(*) FROM cases WHERE prior_courses > 0"),
        "first_course": _one(store, "SELECT count(*) FROM cases WHERE prior_courses = 0"),
    }
    s["rules_in_force"] = [
        {"as_of_first": _iso(a), "as_of_last": _iso(b), "rules": r, "cases": n}
        for r, a, b, n in _q(
            store, "SELECT rule_set, min(as_of), max(as_of), count(*) FROM cases GROUP BY 1 ORDER BY 2"
        )
    ]
    # policies: verdicts, how often met, not-applicable reasons
    policies: dict[str, Any] = {}
    for policy, verdict, n in _q(
        store,
        "SELECT policy, verdict, count(*) FROM policy_verdicts WHERE verdict <> 'not_in_force' GROUP BY 1, 2",
    ):
        policies.setdefault(policy, {"verdicts": dict.fromkeys(_STATUSES, 0)})["verdicts"][verdict] = n
    met = _met(store)
    for policy, p in sorted(policies.items()):
        applies = sum(v for k, v in p["verdicts"].items() if k != "not_applicable")
        m = met.get(policy, {})
        p["met"] = {
            "applies": applies,
            "all_metrics": p["verdicts"]["pass"],
            "any_metric": m.get("any", 0),
            "by_metric": dict(sorted(m.get("by_metric", {}).items())),
        }
        p["not_applicable"] = _not_applicable(store, pack, policy)
    s["policies"] = dict(sorted(policies.items()))
    criteria: dict[str, Any] = {}
    for policy, criterion, kind, status, n in _batched(
        store,
        "SELECT policy, criterion, 'items', status, count(*) FROM bl GROUP BY ALL "
        "UNION ALL SELECT policy, criterion, 'cases', worst, count(*) FROM ("
        "  SELECT seq, policy, criterion, CASE max(CASE status WHEN 'fail' THEN 3 WHEN 'indeterminate' THEN 2 "
        "  WHEN 'pass' THEN 1 ELSE 0 END) WHEN 3 THEN 'fail' WHEN 2 THEN 'indeterminate' WHEN 1 THEN 'pass' "
        "  ELSE 'not_applicable' END AS worst FROM bl GROUP BY ALL) GROUP BY ALL",
    ):
        c = criteria.setdefault(policy, {}).setdefault(
            criterion, {k: dict.fromkeys(_STATUSES, 0) for k in ("cases", "items")}
        )
        c[kind][status] = n
    s["criteria"] = {p: dict(sorted(c.items())) for p, c in sorted(criteria.items())}
    s["disagreements"] = {}
    for a, b, n in _batched(
        store,
        "SELECT a.policy, b.policy, count(*) FROM bv a JOIN bv b USING (seq) "
        "WHERE a.verdict = 'pass' AND b.verdict = 'fail' GROUP BY 1, 2",
    ):
        s["disagreements"].setdefault(a, {})[b] = n
    s["recommendations"] = {}
    for rule, status, n in _q(
        store, "SELECT rule_id, status, count(*) FROM recommendations GROUP BY 1, 2 ORDER BY 1, 2"
    ):
        s["recommendations"].setdefault(rule, {})[status] = n
    if manifest["compare_now"]:
        s["compare"] = {}
        for policy, then, now, n in _q(
            store,
            "SELECT policy, verdict, verdict_now, count(*) FROM policy_verdicts "
            "WHERE verdict_now IS NOT NULL AND verdict <> verdict_now GROUP BY 1, 2, 3 ORDER BY 1, 2, 3",
        ):
            s["compare"].setdefault(policy, {})[f"{then}→{now}"] = n
        unchanged = _batched(
            store,
            "SELECT 'n', count(*) FROM (SELECT seq FROM bv WHERE verdict_now IS NOT NULL GROUP BY seq "
            "HAVING bool_and(verdict = verdict_now))",
        )
        s["compare_unchanged"] = unchanged[0][-1] if unchanged else 0
    s["errors_by_code"] = dict(
        _q(store, "SELECT code, count(DISTINCT seq) FROM errors GROUP BY 1 ORDER BY 1")
    )
    s["scatter"] = _scatters(store, pack)
    s["non_conforming"] = _non_conforming(store)
    s["outcomes"] = _outcomes(store)
    s["fragile_rule"] = FRAGILE_RULE
    return s


def _met(store: Any) -> dict[str, dict[str, Any]]:
    """Per policy: cases met on at least one near-max metric, and on each metric (definitions in docs/audit.md)."""
    rows = _batched(
        store,
        """
        WITH l AS (SELECT seq, policy, criterion, metric, status FROM bl),
        applies AS (SELECT seq, policy, verdict FROM bv
                    WHERE verdict NOT IN ('not_applicable', 'not_in_force')),
        caselevel AS (SELECT seq, policy, bool_and(status IN ('pass', 'not_applicable')) AS ok,
                      bool_or(status = 'pass') AS anypass FROM l WHERE metric IS NULL GROUP BY ALL),
        dose AS (SELECT seq, policy, count(DISTINCT criterion) AS n FROM l WHERE metric IS NOT NULL GROUP BY ALL),
        onm AS (SELECT seq, policy, metric, count(DISTINCT criterion) AS n,
                bool_and(status IN ('pass', 'not_applicable')) AS ok, bool_or(status = 'pass') AS anypass
                FROM l WHERE metric IS NOT NULL GROUP BY ALL),
        met AS (SELECT a.policy, o.metric, a.seq FROM applies a
                JOIN onm o USING (seq, policy) JOIN dose d USING (seq, policy) LEFT JOIN caselevel c USING (seq, policy)
                WHERE o.n = d.n AND o.ok AND coalesce(c.ok, true) AND (o.anypass OR coalesce(c.anypass, false))
                UNION ALL
                SELECT a.policy, NULL, a.seq FROM applies a LEFT JOIN dose d USING (seq, policy)
                WHERE d.n IS NULL AND a.verdict = 'pass')
        SELECT policy, metric, count(*) FROM met WHERE metric IS NOT NULL GROUP BY ALL
        UNION ALL SELECT policy, '*any*', count(DISTINCT seq) FROM met GROUP BY ALL
        """,
    )
    out: dict[str, dict[str, Any]] = {}
    for policy, metric, n in rows:
        p = out.setdefault(policy, {"any": 0, "by_metric": {}})
        if metric == "*any*":
            p["any"] += n
        else:
            p["by_metric"][metric] = p["by_metric"].get(metric, 0) + n
    return out


def _not_applicable(store: Any, pack: RulePack, policy: str) -> list[dict[str, Any]]:
    """Why the policy did not apply, counted: the first condition of its rules that the case does not meet."""
    rules = [r for r in pack.rules if r.policy == policy and r.kind == "constraint"]
    if not rules:
        return []
    conds = _conditions(rules[0])
    groups = _q(
        store,
        "SELECT c.prior_courses, c.stereotactic, c.fractions, count(*) FROM policy_verdicts v JOIN cases c USING (seq) "
        "WHERE v.policy = ? AND v.verdict = 'not_applicable' GROUP BY ALL",
        [policy],
    )
    reasons: dict[str, int] = {}
    for prior, sbrt, fractions, n in groups:
        values = {"prior_courses": prior, "stereotactic": sbrt, "fractions": fractions}
        why = "a condition of the rule not met by the case"
        for fact, op, target in conds:
            col = _CASE_COLUMN.get(fact)
            if col is not None and not _holds(values[col], op, target):
                why = f"not met: {_condition_text(fact, op, target)}"
                break
        reasons[why] = reasons.get(why, 0) + n
    applies = "; ".join(_condition_text(*c) for c in conds)
    return [
        {"reason": k, "cases": v, "applies_when": applies}
        for k, v in sorted(reasons.items(), key=lambda kv: -kv[1])
    ]


def _scatters(store: Any, pack: RulePack) -> list[dict[str, Any]]:
    """Per policy, the SpinalCord Dmax values of the cases it judged: a scatter when the policy has a criterion on the
    planned course and a cumulative one (in the same unit), else a strip of the cumulative values; limits from
    the rules that judged them; conventional and not-applicable cases are counted apart, not drawn."""
    out = []
    crits = _q(
        store,
        "SELECT policy, criterion, rule_id, list(DISTINCT rule_version ORDER BY rule_version), any_value(unit) "
        "FROM constraint_lines WHERE structure = 'SpinalCord' AND metric = 'Dmax' AND status <> 'not_applicable' "
        "GROUP BY ALL ORDER BY 1, 2",
    )
    by_policy: dict[str, list[tuple[str, str, list[str], str]]] = {}
    for policy, criterion, rule_id, versions, unit in crits:
        by_policy.setdefault(policy, []).append((criterion, rule_id, versions, unit))
    for policy, items in by_policy.items():
        cum = [i for i in items if i[0] == "cumulative"]
        if not cum:
            continue
        y = cum[0]
        x = next((i for i in items if i[0] != "cumulative" and i[3] == y[3]), None)
        axes = [a for a in (x, y) if a is not None]
        doc: dict[str, Any] = {
            "policy": policy,
            "kind": "scatter" if x else "strip",
            "axes": [
                {"criterion": a[0], "rule_id": a[1], "unit": a[3], "limits": _limits(pack, a[1], a[2])}
                for a in axes
            ],
        }
        cols = ", ".join(
            f"max(CASE WHEN rule_id = '{a[1]}' THEN value END) AS v{i}, "
            f"max(CASE WHEN rule_id = '{a[1]}' THEN status END) AS s{i}"
            for i, a in enumerate(axes)
        )
        ids = ", ".join(f"'{a[1]}'" for a in axes)
        base = (
            f"SELECT l.seq, c.case_id, {cols} FROM bl l JOIN bc c USING (seq) "
            f"WHERE l.structure = 'SpinalCord' AND l.metric = 'Dmax' AND l.rule_id IN ({ids}) "
            f"AND l.status <> 'not_applicable' GROUP BY l.seq, c.case_id"
        )
        n_axes = len(axes)
        have = " AND ".join(f"v{i} IS NOT NULL" for i in range(n_axes))
        status_cols = ", ".join(f"s{i}" for i in range(n_axes))
        counted = _batched(
            store,
            f"SELECT 'points', count(*) FROM ({base}) WHERE {have} "
            f"UNION ALL SELECT 'undetermined', count(*) FROM ({base}) WHERE NOT ({have})",
        )
        doc["points"] = dict(counted).get("points", 0)
        doc["undetermined"] = dict(counted).get("undetermined", 0)
        doc["counts"] = [
            {"statuses": list(row[:-1]), "cases": row[-1]}
            for row in _batched(
                store, f"SELECT {status_cols}, count(*) FROM ({base}) WHERE {have} GROUP BY ALL"
            )
        ]
        values = ", ".join(f"v{i}" for i in range(n_axes))
        flag = " OR ".join(f"s{i} = 'fail'" for i in range(n_axes))
        sample: list[tuple[Any, ...]] = []
        top = _one(store, "SELECT max(seq) FROM cases") or 0
        for lo in range(0, int(top) + 1, BATCH):  # the smallest MD5s of each batch, then of all
            for view, table in (("bl", "constraint_lines"), ("bc", "cases")):
                store.con.execute(
                    f"CREATE OR REPLACE TEMP VIEW {view} AS SELECT * FROM {table} "
                    f"WHERE seq >= {lo} AND seq < {lo + BATCH}"
                )
            sample += _q(
                store,
                f"SELECT md5(case_id) AS h, {values}, CASE WHEN {flag} THEN 'fail' ELSE 'pass' END "
                f"FROM ({base}) WHERE {have} ORDER BY h LIMIT {SAMPLE}",
            )
        doc["sample"] = [list(r[1:]) for r in sorted(sample)[:SAMPLE]]
        doc["not_drawn"] = dict(
            _q(
                store,
                "SELECT CASE WHEN NOT c.stereotactic THEN 'conventional' WHEN c.prior_courses = 0 THEN 'first course' "
                "ELSE 'other' END, count(*) FROM policy_verdicts v JOIN cases c USING (seq) "
                "WHERE v.policy = ? AND v.verdict = 'not_applicable' GROUP BY 1 ORDER BY 1",
                [policy],
            )
        )
        out.append(doc)
    return out


def _non_conforming(store: Any) -> dict[str, Any]:
    """Cases with a failing policy: per case and policy, the failing criterion with the least margin (most outside),
    its line, and whether the failure is fragile (FRAGILE_RULE)."""
    total = _one(store, "SELECT count(DISTINCT seq) FROM policy_verdicts WHERE verdict = 'fail'")
    rows = _q(
        store,
        f"""
        WITH cases_listed AS (SELECT DISTINCT seq FROM constraint_lines WHERE status = 'fail' ORDER BY seq
                              LIMIT {LISTED}),
        fails AS (SELECT * FROM constraint_lines JOIN cases_listed USING (seq) WHERE status = 'fail'),
        rescued AS (SELECT DISTINCT f.seq, f.rule_id, f.structure FROM fails f JOIN constraint_lines p
                    ON p.seq = f.seq AND p.rule_id = f.rule_id AND p.structure = f.structure
                    AND p.metric <> f.metric AND p.status = 'pass'),
        ranked AS (SELECT f.*, row_number() OVER (PARTITION BY f.seq, f.policy ORDER BY f.margin NULLS LAST, f.rule_id,
                   f.structure, f.metric) AS k FROM fails f)
        SELECT c.case_id, c.planned_start, c.technique, r.policy, r.criterion, r.rule_id, r.rule_version,
               r.structure, r.metric, r.value, r.limit_value, r.operator, r.unit, r.margin,
               (x.seq IS NOT NULL) OR r.assumed OR r.fragile AS fragile, r.assumed, c.seq
        FROM ranked r JOIN cases_listed USING (seq) JOIN cases c USING (seq)
        LEFT JOIN rescued x ON x.seq = r.seq AND x.rule_id = r.rule_id AND x.structure IS NOT DISTINCT FROM r.structure
        WHERE r.k = 1 ORDER BY r.seq, r.policy
        """,
    )
    keys = (
        "case_id",
        "planned_start",
        "technique",
        "policy",
        "criterion",
        "rule_id",
        "rule_version",
        "structure",
        "metric",
        "value",
        "limit",
        "operator",
        "unit",
        "margin",
        "fragile",
        "assumed",
        "seq",
    )
    listed = [{k: _iso(v) for k, v in zip(keys, r, strict=True)} for r in rows]
    return {
        "cases": total or 0,
        "listed": listed,
        "listed_cases": len({r["seq"] for r in listed}),
        "limit": LISTED,
    }


def _outcomes(store: Any) -> dict[str, Any]:
    """Per policy and verdict, each outcome: events among the cases where it is recorded."""
    out: dict[str, Any] = {}
    for name in ("myelopathy", "vertebral_compression_fracture", "local_failure"):
        recorded = _one(store, f"SELECT count({name}) FROM cases")
        if not recorded:
            continue
        rows = _batched(
            store,
            f"SELECT v.policy, v.verdict, 'recorded', count(c.{name}) FROM bv v JOIN bc c USING (seq) "
            f"WHERE v.verdict IN ('pass', 'fail', 'indeterminate') GROUP BY 1, 2 "
            f"UNION ALL SELECT v.policy, v.verdict, 'events', count(*) FILTER (WHERE c.{name}) FROM bv v "
            f"JOIN bc c USING (seq) WHERE v.verdict IN ('pass', 'fail', 'indeterminate') GROUP BY 1, 2",
        )
        per: dict[str, Any] = {}
        for policy, verdict, kind, n in rows:
            per.setdefault(policy, {}).setdefault(verdict, {"recorded": 0, "events": 0})[kind] = n
        out[name] = {"recorded": recorded, "by_policy": per}
    return out


# --- files -----------------------------------------------------------------------------------------------------


def write_outputs(
    store: Any, summary: dict[str, Any], out: Path, pack: RulePack, report: bool = True, parquet: bool = False
) -> None:
    from reirrad.audit.explain import write_explanations

    _atomic_write(out / "summary.json", json.dumps(summary, indent=1, ensure_ascii=False).encode())
    if report:
        from reirrad.audit.report import render_report

        write_explanations(store, summary, out, pack)
        _atomic_write(out / "report.html", render_report(summary).encode())
    if parquet:
        store.export_parquet(out / "parquet")


def _atomic_write(path: Path, data: bytes) -> None:
    import os

    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
