"""Counts over an audit, built one case at a time and merged chunk by chunk (bounded size, whatever the cohort).

Definitions (docs/audit.md):

* ``criteria[policy][criterion].items``: statuses of every constraint line (one per rule, structure and metric).
* ``criteria[policy][criterion].cases``: one status per case, the worst of its lines
  (fail > indeterminate > pass > not_applicable).
* ``policies[policy].verdicts``: the case's policy verdict as in the result's ``policy_summary``.
* ``policies[policy].met``: among cases where the policy applies (verdict not ``not_applicable``):
  ``all_metrics`` = every line of every criterion passes (the verdict is ``pass``); ``any_metric`` = there is a
  near-max metric *m* (Dmax, D0.03cc, …) on which every criterion is met: its case-level lines and its lines on
  metric *m* (every structure) are pass or not_applicable, and every criterion that has dose lines has at least one
  on *m*; ``by_metric[m]`` counts the cases met on *m*. Lucido 2025 counts HyTEC on the point maximum (``Dmax``).
* ``disagreements[a][b]``: cases where policy *a*'s verdict is pass and policy *b*'s is fail.
* ``recommendations[rule_id][status]``: from the result's ``recommendations`` list when present.
* ``cord_eqd2``: the SpinalCord Dmax points (x = hytec.resbrt value, y = hytec.cumulative value, Gy EQD2):
  exact quadrant counts against 25 and 70 Gy, a 2 Gy grid of counts and a deterministic sample of at most
  ``SAMPLE`` points (the smallest CRC32 of the input key: the same sample whatever the workers or chunking).
* ``compare``: with --compare-now, per policy, the counts of (verdict on the audit date → verdict now).
"""

from __future__ import annotations

import heapq
import zlib
from typing import Any

__all__ = ["SAMPLE", "Acc", "merge_into"]

SAMPLE = 2000
GRID_GY = 2.0
GRID_MAX = 200
_RANK = {"fail": 3, "indeterminate": 2, "pass": 1, "not_applicable": 0}
_STATUSES = ("pass", "fail", "indeterminate", "not_applicable")
RESBRT_LIMIT = 25.0
CUMULATIVE_LIMIT = 70.0


def _inc(d: dict[str, Any], *keys: str, by: int = 1) -> None:
    for k in keys[:-1]:
        d = d.setdefault(k, {})
    d[keys[-1]] = d.get(keys[-1], 0) + by


def merge_into(dst: dict[str, Any], src: dict[str, Any]) -> None:
    """Add the counters of ``src`` into ``dst`` (nested dicts of ints); ``sample`` lists merge bottom-k."""
    for k, v in src.items():
        if k == "sample":
            dst[k] = heapq.nsmallest(SAMPLE, dst.get(k, []) + v)
        elif k in ("as_of_min", "as_of_max"):
            old = dst.get(k)
            dst[k] = v if old is None else (min(old, v) if k == "as_of_min" else max(old, v))
        elif isinstance(v, dict):
            merge_into(dst.setdefault(k, {}), v)
        else:
            dst[k] = dst.get(k, 0) + v


class Acc:
    """The counters of some cases; ``data`` is plain JSON (stored in the audit's checkpoint)."""

    def __init__(self, data: dict[str, Any] | None = None) -> None:
        self.data: dict[str, Any] = data if data is not None else {}

    def add_result(self, key: str, result: dict[str, Any], ruleset: str | None = None) -> None:
        d = self.data
        _inc(d, "counts", "evaluated")
        if ruleset:
            _inc(d, "rule_sets", ruleset)
        as_of = result.get("rule_pack", {}).get("as_of")
        if as_of:
            merge_into(d, {"as_of_min": as_of, "as_of_max": as_of})
        per_crit: dict[tuple[str, str], str] = {}
        by_policy: dict[str, list[dict[str, Any]]] = {}
        x = y = None
        xs = ys = ""
        for e in result.get("constraints", []):
            policy, criterion, status = e["policy"], e["criterion"], e["status"]
            _inc(d, "criteria", policy, criterion, "items", status)
            k = (policy, criterion)
            old = per_crit.get(k)
            if old is None or _RANK[status] > _RANK[old]:
                per_crit[k] = status
            by_policy.setdefault(policy, []).append(e)
            if e["structure"] == "SpinalCord" and e["metric"] == "Dmax" and e["value"] is not None:
                if e["rule_id"] == "hytec.resbrt":
                    x, xs = e["value"], status
                elif e["rule_id"] == "hytec.cumulative":
                    y, ys = e["value"], status
        for (policy, criterion), status in per_crit.items():
            _inc(d, "criteria", policy, criterion, "cases", status)
        verdicts = {p["policy"]: p["verdict"] for p in result.get("policy_summary", [])}
        for policy, verdict in verdicts.items():
            _inc(d, "policies", policy, "verdicts", verdict)
            if verdict != "not_applicable":
                self._met(policy, by_policy.get(policy, []), verdict)
        for a, va in verdicts.items():
            if va != "pass":
                continue
            for b, vb in verdicts.items():
                if vb == "fail":
                    _inc(d, "disagreements", a, b)
        for rec in result.get("recommendations", []) or []:
            _inc(d, "recommendations", str(rec.get("rule_id")), str(rec.get("status")))
        if x is not None and y is not None:
            self._point(key, float(x), float(y), xs, ys)

    def _met(self, policy: str, entries: list[dict[str, Any]], verdict: str) -> None:
        d = self.data
        _inc(d, "policies", policy, "met", "evaluated")
        if verdict == "pass":
            _inc(d, "policies", policy, "met", "all_metrics")
        ok_case = True
        crit_metrics: dict[str, dict[str, bool]] = {}
        for e in entries:
            good = e["status"] in ("pass", "not_applicable")
            if e["metric"] is None:
                ok_case = ok_case and good
            else:
                m = crit_metrics.setdefault(e["criterion"], {})
                m[e["metric"]] = m.get(e["metric"], True) and good
        if not ok_case:
            return
        any_met = False
        metrics = sorted({m for per in crit_metrics.values() for m in per})
        for metric in metrics:
            if all(per.get(metric, False) for per in crit_metrics.values()) and any(
                e["status"] == "pass" for e in entries if e["metric"] in (None, metric)
            ):
                _inc(d, "policies", policy, "met", "by_metric", metric)
                any_met = True
        if not crit_metrics and verdict == "pass":
            any_met = True
        if any_met:
            _inc(d, "policies", policy, "met", "any_metric")

    def _point(self, key: str, x: float, y: float, xs: str, ys: str) -> None:
        d = self.data
        flag = "pass" if xs == ys == "pass" else "fail" if "fail" in (xs, ys) else "other"
        q = ("x_le" if x <= RESBRT_LIMIT else "x_gt") + ("_y_le" if y <= CUMULATIVE_LIMIT else "_y_gt")
        _inc(d, "cord_eqd2", "quadrants", q)
        _inc(d, "cord_eqd2", "points")
        ix, iy = min(int(x // GRID_GY), GRID_MAX), min(int(y // GRID_GY), GRID_MAX)
        _inc(d, "cord_eqd2", "grid", f"{ix},{iy}")
        h = zlib.crc32(key.encode())
        sample = d.setdefault("cord_eqd2", {}).setdefault("sample", [])
        item = [h, round(x, 3), round(y, 3), flag]
        if len(sample) < SAMPLE:
            heapq.heappush(sample, [-h, *item[1:]])
        elif -sample[0][0] > h:
            heapq.heapreplace(sample, [-h, *item[1:]])

    def add_error(self, problems: list[dict[str, Any]]) -> None:
        _inc(self.data, "counts", "rejected")
        for code in sorted({str(p.get("code")) for p in problems}):
            _inc(self.data, "errors_by_code", code)

    def add_blank(self) -> None:
        _inc(self.data, "counts", "blank_lines")

    def add_compare(self, then: dict[str, str], now: dict[str, str]) -> None:
        for policy in sorted(set(then) | set(now)):
            a, b = then.get(policy, "not_in_force"), now.get(policy, "not_in_force")
            _inc(self.data, "compare", policy, f"{a}→{b}")

    def export(self) -> dict[str, Any]:
        """The chunk's counters as plain JSON, the sample as [crc32, x, y, flag] sorted by crc32 (mergeable)."""
        d = dict(self.data)
        c = d.get("cord_eqd2")
        if c and "sample" in c:
            c = dict(c)
            c["sample"] = sorted([-s[0], *s[1:]] for s in c["sample"])
            d["cord_eqd2"] = c
        return d


def finalize(data: dict[str, Any], meta: dict[str, Any]) -> dict[str, Any]:
    """The summary.json document: the merged counters plus rates, in a stable order."""
    out: dict[str, Any] = {"schema": "reirrad/audit-summary/v1", **meta}
    out["counts"] = {k: data.get("counts", {}).get(k, 0) for k in ("evaluated", "rejected", "blank_lines")}
    for key in ("rule_sets", "as_of_min", "as_of_max"):
        if key in data:
            out[key] = data[key]
    policies: dict[str, Any] = {}
    for policy, p in sorted(data.get("policies", {}).items()):
        verdicts = {s: p.get("verdicts", {}).get(s, 0) for s in _STATUSES}
        met = p.get("met", {})
        evaluated = met.get("evaluated", 0)
        policies[policy] = {
            "verdicts": verdicts,
            "met": {
                "evaluated": evaluated,
                "all_metrics": met.get("all_metrics", 0),
                "any_metric": met.get("any_metric", 0),
                "by_metric": dict(sorted(met.get("by_metric", {}).items())),
                "all_metrics_rate": round(met.get("all_metrics", 0) / evaluated, 4) if evaluated else None,
                "any_metric_rate": round(met.get("any_metric", 0) / evaluated, 4) if evaluated else None,
            },
        }
    out["policies"] = policies
    out["criteria"] = {
        policy: {
            crit: {kind: {s: v.get(kind, {}).get(s, 0) for s in _STATUSES} for kind in ("cases", "items")}
            for crit, v in sorted(crits.items())
        }
        for policy, crits in sorted(data.get("criteria", {}).items())
    }
    out["disagreements"] = {
        a: dict(sorted(v.items())) for a, v in sorted(data.get("disagreements", {}).items())
    }
    out["recommendations"] = {
        r: dict(sorted(v.items())) for r, v in sorted(data.get("recommendations", {}).items())
    }
    if "compare" in data:
        out["compare"] = {p: dict(sorted(v.items())) for p, v in sorted(data["compare"].items())}
    out["errors_by_code"] = dict(sorted(data.get("errors_by_code", {}).items()))
    cord = data.get("cord_eqd2", {})
    out["cord_eqd2"] = {
        "structure": "SpinalCord",
        "metric": "Dmax",
        "x": "hytec.resbrt value (Gy EQD2)",
        "y": "hytec.cumulative value (Gy EQD2)",
        "limits": {"x": RESBRT_LIMIT, "y": CUMULATIVE_LIMIT},
        "points": cord.get("points", 0),
        "quadrants": {
            q: cord.get("quadrants", {}).get(q, 0)
            for q in ("x_le_y_le", "x_le_y_gt", "x_gt_y_le", "x_gt_y_gt")
        },
        "grid_gy": GRID_GY,
        "grid": dict(sorted(cord.get("grid", {}).items())),
        "sample": [s[1:] for s in cord.get("sample", [])],
    }
    return out
