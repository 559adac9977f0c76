"""report.html for a department chair: plain sentences first, every non-conforming case, plots drawn from the limits of
the rules in force; one self-contained page (inline SVG and CSS; no scripts, no network)."""

from __future__ import annotations

import html
from datetime import date
from typing import Any

__all__ = ["render_report"]

_COLORS = {"pass": "#2e7d32", "fail": "#c62828", "indeterminate": "#f9a825", "not_applicable": "#9e9e9e"}
_WORDS = {
    "pass": "conformed",
    "fail": "did not conform",
    "indeterminate": "could not be decided",
    "not_applicable": "did not apply",
}
_OP = {"<=": "≤", ">=": "≥"}
_OUTCOMES = {
    "myelopathy": "myelopathy",
    "vertebral_compression_fracture": "vertebral compression fracture",
    "local_failure": "local failure",
}
_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2em auto;max-width:1100px;color:#222;
line-height:1.45}h1{font-size:1.5em}h2{font-size:1.2em;margin-top:2em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:0.5em 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}
th{background:#f3f3f3}td.l,th.l{text-align:left}.note{color:#555;font-size:0.9em;max-width:900px}
.lead{font-size:1.05em;max-width:900px}.banner{background:#fff3e0;border:1px solid #ffb74d;padding:0.6em 1em}
dt{font-weight:600}dd{margin:0 0 0.5em 1.5em}svg text{font-family:system-ui,sans-serif}
"""


def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _n(k: int, d: int) -> str:
    """A count out of a denominator, never a bare percentage: '12 of 40 (30 %)'."""
    return f"{k:,} of {d:,} ({100 * k / d:.0f} %)" if d else f"{k:,} of 0"


def _day(text: str | None) -> str:
    if not text:
        return "–"
    d = date.fromisoformat(text)
    return f"{d.day} {d:%b %Y}"


def _table(head: list[str], rows: list[list[Any]], left: int = 1, raw: bool = False) -> str:
    out = [
        "<table><tr>"
        + "".join(f'<th class="{"l" if i < left else ""}">{_e(h)}</th>' for i, h in enumerate(head))
        + "</tr>"
    ]
    for row in rows:
        cells = []
        for i, c in enumerate(row):
            text = c if raw and isinstance(c, _Html) else _e(c)
            cells.append(f'<td class="{"l" if i < left else ""}">{text}</td>')
        out.append("<tr>" + "".join(cells) + "</tr>")
    out.append("</table>")
    return "\n".join(out)


class _Html(str):
    """Markup already escaped."""


def _num(v: Any, unit: str = "") -> str:
    if v is None:
        return "–"
    return (
        f"{v:.2f}{' ' + unit if unit else ''}" if isinstance(v, float) else f"{v}{' ' + unit if unit else ''}"
    )


def _lead(s: dict[str, Any]) -> list[str]:
    c, courses, dates = s["counts"], s["courses"], s["treatment_dates"]
    judged = (
        "with the rules in force on each treatment date"
        if s["as_of"] == "treatment"
        else f"with the rules in force on {_day(s['as_of'])}"
    )
    n, re_n, first_n = c["evaluated"], courses["reirradiation"], courses["first_course"]
    out = [
        f"Of {n:,} plan{'s' if n != 1 else ''} treated from {_day(dates['first'])} to {_day(dates['last'])}, "
        f"judged {judged}: {re_n:,} re-irradiation{'s' if re_n != 1 else ''} and {first_n:,} first "
        f"course{'s' if first_n != 1 else ''}; {courses['stereotactic']:,} stereotactic (SBRT or SRS) and "
        f"{courses['conventional']:,} conventional."
    ]
    for policy, p in s["policies"].items():
        v = p["verdicts"]
        applies = p["met"]["applies"]
        if not applies:
            continue
        out.append(
            f"Under the {policy} policy, {_n(v['pass'], applies)} plans it applies to conformed, {v['fail']:,} did "
            f"not and {v['indeterminate']:,} could not be decided for lack of data; it did not apply to "
            f"{v['not_applicable']:,}."
        )
    nc = s["non_conforming"]
    out.append(
        f"{nc['cases']:,} plan{'s' if nc['cases'] != 1 else ''} did not conform to at least one policy; each is listed "
        "below with the criterion it failed and by how much."
    )
    if c["rejected"]:
        out.append(
            f"{c['rejected']:,} record{'s' if c['rejected'] != 1 else ''} could not be audited (unreadable or incomplete); "
            "each is in the errors table with its row and what was wrong."
        )
    return out


def _non_conforming(s: dict[str, Any]) -> str:
    nc = s["non_conforming"]
    if not nc["listed"]:
        return "<p>Every plan the policies judged conformed, or could not be decided.</p>"
    rows = []
    for r in nc["listed"]:
        link = _Html(f'<a href="explanations/{_e(r["case_id"])}.txt">{_e(r["case_id"])}</a>')
        where = " ".join(x for x in (r["structure"] or "", r["metric"] or "") if x) or "the case"
        margin = r["margin"]
        if margin is None:
            by = "–"
        else:
            side = "above" if r["operator"] in ("<", "<=") else "below"
            by = f"{abs(margin):.2f} {r['unit'] or ''} {side} the limit".replace("  ", " ")
        fragile = (
            "yes (rests on an assumption)"
            if r["assumed"]
            else "yes (passes on another metric)"
            if r["fragile"]
            else "no"
        )
        rows.append(
            [
                link,
                _day(r["planned_start"]),
                r["policy"],
                f"{r['criterion']} ({r['rule_id']} v{r['rule_version']})",
                where,
                f"{_num(r['value'])} vs {_OP.get(r['operator'], r['operator'])} {_num(r['limit'])} {r['unit'] or ''}".strip(),
                by,
                fragile,
            ]
        )
    head = [
        "case",
        "treated",
        "policy",
        "criterion that failed",
        "where",
        "value vs limit",
        "by how much",
        "fragile",
    ]
    text = _table(head, rows, left=5, raw=True)
    more = nc["cases"] - nc["listed_cases"]
    if more > 0:
        text += (
            f'<p class="note">{more:,} more non-conforming plans are not listed here (the first {nc["limit"]:,} are); '
            "the database holds them all (docs/audit.md, SQL queries).</p>"
        )
    return text + (
        '<p class="note">For each plan and policy the failing line furthest outside its limit is shown; the case id '
        "links to its full explanation (also printed by <code>reirrad explain DIR CASE_ID</code>). "
        f"Fragile: {_e(s['fragile_rule'])}.</p>"
    )


def _policies(s: dict[str, Any]) -> str:
    rows = []
    for name, p in s["policies"].items():
        v, m = p["verdicts"], p["met"]
        rows.append(
            [
                name,
                m["applies"],
                _n(v["pass"], m["applies"]),
                v["fail"],
                v["indeterminate"],
                v["not_applicable"],
                _n(m["any_metric"], m["applies"]),
            ]
        )
    return _table(
        [
            "policy",
            "plans it applies to",
            "conformed",
            "did not conform",
            "could not be decided",
            "did not apply",
            "conformed on at least one dose metric",
        ],
        rows,
    )


def _not_applicable(s: dict[str, Any]) -> str:
    rows = []
    for name, p in s["policies"].items():
        for r in p["not_applicable"]:
            rows.append([name, r["applies_when"], r["reason"], r["cases"]])
    if not rows:
        return "<p>Every policy applied to every plan.</p>"
    return _table(["policy", "applies when", "why it did not apply", "plans"], rows, left=3) + (
        '<p class="note">A policy that does not apply has no verdict on the plan: its criteria were written for another '
        "situation (e.g. SBRT re-irradiation), so a conventional re-irradiation or a first course is counted here, "
        "not as conforming or failing.</p>"
    )


def _scatter(sc: dict[str, Any]) -> str:
    """One policy's SpinalCord Dmax values: x = its criterion on the planned course, y = its cumulative criterion
    (a scatter), or the cumulative values alone (a strip); dashed lines at the limits of the rules that judged them."""
    w, h, ml, mb, mt, mr = 660, 420, 70, 55, 20, 190
    pts = sc["sample"]
    axes = sc["axes"]
    scatter = sc["kind"] == "scatter"
    ax_y = axes[-1]
    ax_x = axes[0] if scatter else None
    ys = [p[-2] for p in pts] + [lim["value"] for lim in ax_y["limits"]]
    ymax = max([1.0, *ys]) * 1.1
    xs = [p[0] for p in pts] + ([lim["value"] for lim in ax_x["limits"]] if ax_x else [])
    xmax = max([1.0, *xs]) * 1.1 if scatter else 1.0

    def sx(x: float) -> float:
        return float(ml + (w - ml - mr) * min(x, xmax) / xmax)

    def sy(y: float) -> float:
        return float(h - mb - (h - mb - mt) * min(y, ymax) / ymax)

    title = f"{sc['policy']}: cumulative spinal cord Dmax" + (" against this course's" if scatter else "")
    parts = [
        f'<svg width="{w}" height="{h}" viewBox="0 0 {w} {h}" role="img" aria-label="{_e(title)}">',
        f'<rect x="{ml}" y="{mt}" width="{w - ml - mr}" height="{h - mt - mb}" fill="#fafafa" stroke="#999"/>',
    ]
    for i in range(6):
        yv = ymax * i / 5
        parts.append(
            f'<text x="{ml - 6}" y="{sy(yv) + 3:.1f}" font-size="10" text-anchor="end">{yv:.0f}</text>'
            f'<line x1="{ml - 3}" y1="{sy(yv):.1f}" x2="{ml}" y2="{sy(yv):.1f}" stroke="#666"/>'
        )
        if scatter:
            xv = xmax * i / 5
            parts.append(
                f'<text x="{sx(xv):.1f}" y="{h - mb + 15}" font-size="10" text-anchor="middle">{xv:.0f}</text>'
            )
    for i, p in enumerate(pts):
        x = sx(p[0]) if scatter else ml + (w - ml - mr) * ((i * 0.618034) % 1.0)
        parts.append(
            f'<circle cx="{x:.1f}" cy="{sy(p[-2]):.1f}" r="2.3" fill="{_COLORS["fail" if p[-1] == "fail" else "pass"]}" '
            f'fill-opacity="0.6"/>'
        )
    for lim in ax_y["limits"]:
        y = sy(lim["value"])
        parts.append(
            f'<line x1="{ml}" y1="{y:.1f}" x2="{w - mr}" y2="{y:.1f}" stroke="#000" stroke-dasharray="5,4"/>'
            f'<text x="{w - mr + 4}" y="{y + 4:.1f}" font-size="11">{_e(lim["label"])} {_e(ax_y["unit"])}</text>'
            + (
                f'<text x="{w - mr + 4}" y="{y + 16:.1f}" font-size="10">({_e(lim["key"])})</text>'
                if lim.get("key")
                else ""
            )
        )
    if ax_x:
        for k, lim in enumerate(ax_x["limits"]):
            x = sx(lim["value"])
            parts.append(
                f'<line x1="{x:.1f}" y1="{mt}" x2="{x:.1f}" y2="{h - mb}" stroke="#000" stroke-dasharray="5,4"/>'
                f'<text x="{x + 4:.1f}" y="{mt + 12 + 12 * k}" font-size="11">{_e(lim["label"])} {_e(ax_x["unit"])}</text>'
            )
        parts.append(
            f'<text x="{(ml + w - mr) / 2}" y="{h - 15}" font-size="12" text-anchor="middle">'
            f"this course, {_e(ax_x['unit'])} ({_e(ax_x['rule_id'])})</text>"
        )
    parts.append(
        f'<text transform="translate(16,{(mt + h - mb) / 2}) rotate(-90)" font-size="12" text-anchor="middle">'
        f"cumulative, {_e(ax_y['unit'])} ({_e(ax_y['rule_id'])})</text>"
    )
    ly = h - 30
    for j, (label, color) in enumerate(
        (("within the limits drawn", _COLORS["pass"]), ("outside a limit drawn", _COLORS["fail"]))
    ):
        parts.append(
            f'<rect x="{w - mr + 6}" y="{ly - 40 + 16 * j}" width="10" height="10" fill="{color}"/>'
            f'<text x="{w - mr + 20}" y="{ly - 31 + 16 * j}" font-size="11">{label}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _scatters(s: dict[str, Any]) -> str:
    out = []
    for sc in s["scatter"]:
        out.append(f"<h3>{_e(sc['policy'])}</h3>")
        out.append(_scatter(sc))
        limits = "; ".join(
            f"{a['criterion']} ({a['rule_id']}): "
            + ", ".join(
                f"{_OP.get(lim['operator'], lim['operator'])} {lim['label']} {a['unit']}"
                + (f" for {lim['key']}" if lim.get("key") else "")
                + f" ({lim['rule']})"
                for lim in a["limits"]
            )
            for a in sc["axes"]
        )
        not_drawn = ", ".join(f"{n:,} {k}" for k, n in sc["not_drawn"].items()) or "none"
        out.append(
            f'<p class="note">Each point is a plan the policy judged (SpinalCord Dmax); {len(sc["sample"]):,} of '
            f"{sc['points']:,} drawn (a fixed sample), the counts below use every plan. Dashed lines: the limits of "
            f"the rules that judged these plans — {_e(limits)}. Not drawn: plans the policy did not apply to "
            f"({_e(not_drawn)}); {sc['undetermined']:,} plan(s) whose cord dose could not be computed.</p>"
        )
        head = [f"{a['criterion']}" for a in sc["axes"]] + ["plans"]
        rows = [[*(_WORDS.get(x or "", x) for x in c["statuses"]), c["cases"]] for c in sc["counts"]]
        out.append(_table(head, rows, left=len(sc["axes"])))
    courses = s["courses"]
    out.append(
        f'<p class="note">Conventional (not stereotactic) plans are shown apart: {courses["conventional"]:,} in this '
        "audit. The stereotactic re-irradiation policies do not apply to them (see “Why a policy did not apply”), so "
        "they are neither drawn nor counted as conforming.</p>"
    )
    return (
        "\n".join(out)
        if s["scatter"]
        else "<p>No plan gave a spinal cord dose that a cumulative criterion judged.</p>"
    )


def _outcomes(s: dict[str, Any]) -> str:
    if not s["outcomes"]:
        return "<p>No outcome was recorded (the case format's optional <code>outcomes</code>).</p>"
    rows = []
    for name, o in s["outcomes"].items():
        for policy, by in o["by_policy"].items():
            cells = []
            for verdict in ("pass", "fail", "indeterminate"):
                x = by.get(verdict, {"recorded": 0, "events": 0})
                cells.append(f"{x['events']:,} of {x['recorded']:,}" if x["recorded"] else "–")
            rows.append([_OUTCOMES[name], policy, *cells])
    return _table(
        ["outcome", "policy", "conformed", "did not conform", "could not be decided"], rows, left=2
    ) + (
        '<p class="note">Events among the plans where the outcome is recorded (a plan without the outcome is not '
        "counted either way). Small counts: read them as counts, not as rates.</p>"
    )


def _criteria(s: dict[str, Any]) -> str:
    rows = []
    for name, crits in s["criteria"].items():
        for crit, c in crits.items():
            cs = c["cases"]
            rows.append([name, crit, cs["pass"], cs["fail"], cs["indeterminate"], cs["not_applicable"]])
    return (
        _table(
            ["policy", "criterion", "conformed", "did not conform", "could not be decided", "did not apply"],
            rows,
            left=2,
        )
        + '<p class="note">One count per plan: its worst dose line for the criterion.</p>'
    )


def _rules(s: dict[str, Any]) -> str:
    out = []
    rows = [
        [_day(r["as_of_first"]), _day(r["as_of_last"]), r["cases"], r["rules"]] for r in s["rules_in_force"]
    ]
    out.append(_table(["judged from", "to", "plans", "rules in force (id@version)"], rows, left=0))
    if "compare" in s:
        out.append(f"<h3>What would change under the rules in force on {_day(s['now'])}</h3>")
        changes = [
            [p, k.replace("→", " → ").replace("_", " "), n]
            for p, v in s["compare"].items()
            for k, n in v.items()
        ]
        if changes:
            out.append(_table(["policy", "verdict then → now", "plans"], changes, left=2))
        else:
            out.append("<p>No verdict changes.</p>")
        out.append(
            f'<p class="note">Only changes are listed; {s.get("compare_unchanged", 0):,} plans keep every verdict.</p>'
        )
    return "\n".join(out)


def _glossary() -> str:
    terms = [
        (
            "policy",
            "a published set of dose limits for re-irradiation (e.g. HyTEC, Nelson); policies disagree.",
        ),
        ("criterion", "one limit of a policy, e.g. the cumulative dose or the dose of this course."),
        ("conformed", "every line of every criterion of the policy is within its limit."),
        ("did not conform", "at least one line is outside its limit."),
        ("could not be decided", "a dose or date needed by a criterion is missing: nothing is assumed."),
        ("did not apply", "the policy was written for another situation (see “Why a policy did not apply”)."),
        ("Dmax, D0.03cc", "the maximum point dose, and the dose to the hottest 0.03 cm³, of a structure."),
        ("EQD2, BED", "doses converted so that courses with different fraction sizes can be added."),
        ("margin", "how far a value is from its limit; “above the limit” means outside it."),
        ("fragile", "a failure that depends on which dose metric is read, or that rests on an assumption."),
    ]
    return "<dl>" + "".join(f"<dt>{_e(t)}</dt><dd>{_e(d)}</dd>" for t, d in terms) + "</dl>"


def render_report(s: dict[str, Any]) -> str:
    pack = s.get("rule_pack", {})
    body: list[str] = ["<h1>Re-irradiation audit</h1>", "<h2>In brief</h2>"]
    body += [f'<p class="lead">{_e(t)}</p>' for t in _lead(s)]
    body.append(
        '<p class="banner">Decision support, not a verdict on care: published policies disagree, and a plan outside one '
        "may be within another. Check the source of each rule before acting on a count.</p>"
    )
    c = s["counts"]
    body.append(
        f'<p class="note">Input {_e(s.get("input", ""))} (sha256 {_e(s.get("input_sha256", "")[:12])}…): '
        f"{c['records']:,} records read = {c['evaluated']:,} audited + {c['rejected']:,} not audited + "
        f"{c['blank']:,} blank. Rule pack {_e(pack.get('name'))} {_e(pack.get('version'))} (content sha256 "
        f"{_e(str(pack.get('content_sha256', ''))[:12])}…); engine {_e(s.get('engine'))}"
        + ("; case ids are pseudonyms (keyed hash)" if s.get("pseudonymised") else "")
        + ".</p>"
    )
    body += ["<h2>Plans that did not conform</h2>", _non_conforming(s)]
    body += [
        "<h2>How often each policy was met</h2>",
        _policies(s) if s["policies"] else "<p>No plan was audited.</p>",
    ]
    body += ["<h2>Why a policy did not apply</h2>", _not_applicable(s)]
    body += ["<h2>Spinal cord doses against the limits in force</h2>", _scatters(s)]
    body += ["<h2>Outcomes by conformance</h2>", _outcomes(s)]
    body += ["<h2>Each criterion</h2>", _criteria(s)]
    if s["disagreements"]:
        body.append("<h2>Where policies disagree</h2>")
        rows = [[a, b, n] for a, row in s["disagreements"].items() for b, n in row.items()]
        body.append(_table(["conformed to", "but not to", "plans"], rows, left=2))
    body += ["<h2>Rules in force</h2>", _rules(s)]
    if s["errors_by_code"]:
        body.append("<h2>Records not audited</h2>")
        body.append(_table(["problem", "records"], [[k, v] for k, v in s["errors_by_code"].items()]))
        body.append(
            '<p class="note">The errors table of audit.duckdb lists each with its row, column, value and fix.</p>'
        )
    if s["recommendations"]:
        body.append("<h2>Recommendations the guidelines would make</h2>")
        rows = [
            [r, v.get("made", 0), v.get("not_made", 0), v.get("indeterminate", 0)]
            for r, v in s["recommendations"].items()
        ]
        body.append(_table(["recommendation", "made", "not made", "could not be decided"], rows))
    body += ["<h2>Glossary</h2>", _glossary()]
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>reirrad audit</title><style>'
        + _CSS
        + "</style></head><body>\n"
        + "\n".join(body)
        + "\n</body></html>\n"
    )
