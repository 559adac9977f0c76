"""``reirrad limits`` for people: a text table per policy, markdown with a chart, a standalone HTML page.

The chart (SVG, no external resources) draws the largest planned cord / thecal sac dose against the number of
fractions, one line per policy, with the published table's cells as points.
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterable
from typing import Any

from reirrad.dose.limits import DerivedLimit, LimitsReport, floor_cgy
from reirrad.errors import one_line
from reirrad.vocabulary import Op

__all__ = ["chart_series", "dose_so_far", "render_html", "render_markdown", "render_svg", "render_text"]


def render_text(report: LimitsReport) -> str:
    """A readable table per policy: the limit, what binds, each criterion's own figure, the published cell."""
    lines = [
        f"reirrad limits — case {one_line(report.case_id)}, rules in force on {report.as_of} "
        f"({report.pack.name} {report.pack.version})",
        "Largest planned near-maximum dose (physical Gy, whole new course), rounded down to 0.01 Gy.",
        "",
    ]
    if report.start_assumed and report.planned_start is not None:
        lines[1:1] = [
            f"No planned course yet: the planned start is taken as {report.planned_start} (the date asked "
            f"for); technique considered: {report.technique}."
        ]
    pub = {(p["policy"], p["structure"], p["metric"], p["fractions"]): p for p in report.published}
    by_policy: dict[str, list[DerivedLimit]] = {}
    for lim in report.limits:
        by_policy.setdefault(lim.policy, []).append(lim)
    for policy, lims in by_policy.items():
        rules = list(dict.fromkeys(f"{r.id} {r.version}" for lim in lims for r in lim.rules))
        lines.append(f"{policy}  (rules: {', '.join(rules)})")
        gates = {g.rule_id: g for lim in lims for g in lim.gates}
        for g in gates.values():
            value = "not known" if g.value is None else f"{g.value:.2f} {g.unit}"
            lines.append(
                f"  gate {g.rule_id}: {value} {Op.from_symbol(g.operator).sign} {g.limit:g} → "
                f"{g.status.upper()}"
                + ("  (the policy is not met at any dose until this passes)" if g.status == "fail" else "")
            )
        criteria = list(dict.fromkeys(c.rule_id for lim in lims for c in lim.criteria))
        header = ["structure", "metric", "fx", "max dose", "binding", *criteria, "published"]
        body = []
        for lim in lims:
            by_rule = {c.rule_id: c for c in lim.criteria}
            shown = (
                "—" if lim.max_dose is None else f"{'<' if lim.strict else ''}{floor_cgy(lim.max_dose):.2f}"
            )
            cells = [
                lim.structure or "—",
                lim.metric or "—",
                str(lim.fractions),
                shown,
                lim.binding_criterion or "—",
            ]
            for rid in criteria:
                c = by_rule.get(rid)
                cells.append(
                    ""
                    if c is None
                    else "—"
                    if c.max_dose is None
                    else "∞"
                    if not math.isfinite(c.max_dose)
                    else f"{floor_cgy(c.max_dose):.2f}"
                )
            p = pub.get((lim.policy, lim.structure, lim.metric, lim.fractions))
            cells.append("" if p is None else p["published"])
            body.append(cells)
        widths = [max(len(r[i]) for r in [header, *body]) for i in range(len(header))]
        for r in [header, *body]:
            lines.append("  " + "  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip())
        missing = list(dict.fromkeys(m for lim in lims for m in lim.missing))
        for m in missing:
            lines.append(f"  missing: {m}")
        assumed = list(dict.fromkeys(a for lim in lims for a in lim.assumptions))
        if assumed:
            lines.append(f"  assumption used: {', '.join(assumed)}")
        lines.append("")
    so_far = _dose_so_far(report)
    if so_far:
        lines += ["Dose already given (each cumulative criterion, after any repair credit)"]
        lines += [f"  {s}" for s in so_far] + [""]
    if report.candidates:
        lines += ["Candidate schedules", *_candidate_lines(report, "  "), ""]
    for na in report.not_applicable:
        lines.append(
            f"{na['policy']}: not applicable to this case ("
            + "; ".join(f"{k} applies when {v}" for k, v in na["applies_when"].items())
            + ")"
        )
    if report.row is not None and report.table is not None:
        lines.append(f"published: {report.table.ref} {report.table.locator}, row '{report.row.label}'")
    for note in report.notes:
        lines.append(f"note: {note}")
    lines.append("Steps behind every figure: --format json (limits[].steps).")
    return "\n".join(lines).rstrip() + "\n"


def _candidate_lines(report: LimitsReport, bullet: str = "- ") -> list[str]:
    """Each candidate schedule once, the policies that cover it with their verdict, those that do not cover it."""
    out = []
    for candidate, fits in report.candidates:
        covering = [f for f in fits if f.verdict != "not applicable"]
        silent = [f.policy for f in fits if f.verdict == "not applicable"]
        kind = "SBRT" if candidate.stereotactic else "conventional"
        text = f"{bullet}{candidate.label} ({kind}; {candidate.source}): "
        text += "; ".join(f"{f.policy} {f.verdict} — {f.reason}" for f in covering) or (
            f"no cord policy in force covers a {kind} course in {candidate.fractions} fraction(s)"
        )
        if covering and silent:
            text += f"; not covered by {', '.join(silent)}"
        if candidate.published is not None:
            text += f". Published, {candidate.published['basis']}: {candidate.published['published']}"
        out.append(text + ".")
    return out


def _dose_so_far(report: LimitsReport) -> list[str]:
    """Each cumulative criterion's earlier dose (after any repair credit) and what remains of its budget."""
    return dose_so_far(report.as_dict())


def dose_so_far(limits: dict[str, Any], *, bullet: str = "", limit_word: str = ", limit") -> list[str]:
    """From a limits document (LimitsReport.as_dict): each cumulative criterion's earlier dose, after any repair
    credit, and what remains of its budget, one line per criterion and structure. The evaluation reports write
    "… already given … of 70 Gy" (``limit_word=" of"``), the limits report "…, limit 70 Gy"."""
    grouped: dict[tuple[str, str, float, float, str], list[str]] = {}
    for lim in limits["limits"]:
        for c in lim["criteria"]:
            if c.get("earlier") is None or c.get("limit") is None:
                continue
            key = (c["rule_id"], lim["structure"], c["earlier"], c["limit"], c["unit"])
            metrics = grouped.setdefault(key, [])
            if lim["metric"] not in metrics:
                metrics.append(lim["metric"])
    out = []
    for (rule_id, structure, earlier, limit, unit), metrics in grouped.items():
        left = limit - earlier
        out.append(
            f"{bullet}{rule_id} {structure} {' and '.join(metrics)}: {earlier:.2f} {unit} already given (after its "
            f"repair credit){limit_word} {limit:g} {unit} → "
            + (f"{left:.2f} {unit} left" if left > 0 else "nothing left")
        )
    return out


_COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#17becf"]


def chart_series(limits: dict[str, Any]) -> dict[tuple[str, str], dict[str, list[tuple[int, float]]]]:
    """From a limits document (LimitsReport.as_dict): (structure, metric) → policy → [(fractions, largest dose)]."""
    out: dict[tuple[str, str], dict[str, list[tuple[int, float]]]] = {}
    for lim in limits["limits"]:
        if lim["max_dose"] is None or not lim["structure"]:
            continue
        out.setdefault((lim["structure"], lim["metric"]), {}).setdefault(lim["policy"], []).append(
            (lim["fractions"], lim["max_dose"])
        )
    return out


def _published_points(limits: dict[str, Any]) -> list[tuple[int, float]]:
    """The published table's cells for the case's earlier course, as (fractions, limit) points."""
    points: set[tuple[int, float]] = set()
    for c in limits.get("candidates", []):
        published = c.get("published")
        if published is None or not c["technique"].startswith("SBRT"):
            continue
        cell = published["cell"]
        value = cell.get("value", cell.get("range", {}).get("low"))
        if value is not None:
            points.add((c["fractions"], value))
    return sorted(points)


def render_svg(limits: dict[str, Any], structure: str, metric: str) -> str:
    """One chart: largest planned dose (Gy) against fractions, a line per policy, published cells as points."""
    series = chart_series(limits).get((structure, metric), {})
    published = _published_points(limits)
    xs = sorted({n for s in series.values() for n, _ in s} | {n for n, _ in published}) or [1, 5]
    ys = [v for s in series.values() for _, v in s] + [v for _, v in published]
    top = max([*ys, 1.0]) * 1.1
    width, height, left, right, upper, lower = 640, 360, 56, 170, 24, 44
    x_span = max(xs[-1] - xs[0], 1)

    def x(n: float) -> float:
        return left + (n - xs[0]) / x_span * (width - left - right)

    def y(v: float) -> float:
        return upper + (1 - v / top) * (height - upper - lower)

    title = html.escape(f"Largest planned {structure} {metric} by number of fractions (Gy, whole course)")
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="{width}" '
        f'height="{height}" role="img" aria-label="{title}" font-family="sans-serif" font-size="12">',
        f"<title>{title}</title>",
        f'<line x1="{left}" y1="{height - lower}" x2="{width - right}" y2="{height - lower}" stroke="#333"/>',
        f'<line x1="{left}" y1="{upper}" x2="{left}" y2="{height - lower}" stroke="#333"/>',
    ]
    for n in xs:
        out.append(f'<text x="{x(n):.1f}" y="{height - lower + 16}" text-anchor="middle">{n}</text>')
    out.append(
        f'<text x="{(left + width - right) / 2:.1f}" y="{height - 8}" text-anchor="middle">fractions</text>'
    )
    step = 5 if top <= 40 else 10
    for v in range(0, int(top) + 1, step):
        out.append(
            f'<line x1="{left - 4}" y1="{y(v):.1f}" x2="{width - right}" y2="{y(v):.1f}" stroke="#ddd"/>'
        )
        out.append(f'<text x="{left - 8}" y="{y(v) + 4:.1f}" text-anchor="end">{v}</text>')
    out.append(
        f'<text x="14" y="{upper + 10}" transform="rotate(-90 14 {upper + 10})" text-anchor="end">Gy</text>'
    )
    legend_y: float = upper + 8
    for i, (policy, pts) in enumerate(sorted(series.items())):
        colour = _COLOURS[i % len(_COLOURS)]
        path = " ".join(f"{x(n):.1f},{y(v):.1f}" for n, v in sorted(pts))
        out.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{path}"/>')
        for fx, dose in sorted(pts):
            out.append(
                f'<circle cx="{x(fx):.1f}" cy="{y(dose):.1f}" r="3" fill="{colour}"><title>'
                f"{html.escape(policy)}: {dose:.2f} Gy in {fx} fx</title></circle>"
            )
        out.append(
            f'<line x1="{width - right + 12}" y1="{legend_y}" x2="{width - right + 32}" y2="{legend_y}" '
            f'stroke="{colour}" stroke-width="2"/>'
        )
        out.append(f'<text x="{width - right + 38}" y="{legend_y + 4}">{html.escape(policy)}</text>')
        legend_y += 18
    if published:
        for fx, cell in published:
            cx, cy = x(fx), y(cell)
            out.append(
                f'<rect x="{cx - 4:.1f}" y="{cy - 4:.1f}" width="8" height="8" fill="none" stroke="#000" '
                f'transform="rotate(45 {cx:.1f} {cy:.1f})"><title>published: {cell:g} Gy in {fx} fx</title></rect>'
            )
        out.append(
            f'<rect x="{width - right + 18}" y="{legend_y - 4}" width="8" height="8" fill="none" '
            f'stroke="#000" transform="rotate(45 {width - right + 22} {legend_y})"/>'
        )
        out.append(f'<text x="{width - right + 38}" y="{legend_y + 4}">Table 3 (HyTEC-based)</text>')
    out.append("</svg>")
    return "\n".join(out)


def _md(text: str) -> str:
    """Text from a case or a rule, safe inside markdown: no raw HTML, no table or list syntax."""
    return html.escape(text, quote=False).replace("|", "\\|")


def render_markdown(report: LimitsReport) -> str:
    """The limits as a markdown note: one table per policy, the chart, the candidate schedules."""
    out = [f"# What may be given — case `{_md(one_line(report.case_id)).replace('`', '')}`", ""]
    out.append(
        f"Rules in force on {report.as_of} ({_md(report.pack.name)} {_md(report.pack.version)}); technique: "
        f"{report.technique}. Largest planned near-maximum dose to the cord or thecal sac, physical Gy over the whole "
        "new course, rounded down to 0.01 Gy."
    )
    if report.start_assumed and report.planned_start is not None:
        out.append("")
        out.append(
            f"No planned course yet: the planned start is taken as {report.planned_start} (the date asked for)."
        )
    so_far = _dose_so_far(report)
    if so_far:
        out += ["", "## Dose already given", "", *(f"- {_md(s)}" for s in so_far)]
    by_policy: dict[str, list[DerivedLimit]] = {}
    for lim in report.limits:
        by_policy.setdefault(lim.policy, []).append(lim)
    pub = {(p["policy"], p["structure"], p["metric"], p["fractions"]): p for p in report.published}
    for policy, lims in by_policy.items():
        out += ["", f"## {_md(policy)}", ""]
        gates = {g.rule_id: g for lim in lims for g in lim.gates}
        for g in gates.values():
            value = "not known" if g.value is None else f"{g.value:.2f} {g.unit}"
            out.append(
                f"- gate {g.rule_id}: {value} {Op.from_symbol(g.operator).sign} {g.limit:g} → {g.status}"
            )
        if gates:
            out.append("")
        out += [
            "| structure | metric | fractions | largest dose (Gy) | binding criterion | published |",
            "|---|---|---|---|---|---|",
        ]
        for lim in lims:
            shown = (
                "—" if lim.max_dose is None else f"{'<' if lim.strict else ''}{floor_cgy(lim.max_dose):.2f}"
            )
            p = pub.get((lim.policy, lim.structure, lim.metric, lim.fractions))
            out.append(
                f"| {lim.structure or '—'} | {lim.metric or '—'} | {lim.fractions} | {shown} | "
                f"{lim.binding_criterion or '—'} | {'' if p is None else _md(p['published'])} |"
            )
        for m in dict.fromkeys(m for lim in lims for m in lim.missing):
            out.append(f"\n- missing: {_md(m)}")
    document = report.as_dict()
    charts = list(chart_series(document))
    if charts:
        out += ["", "## Chart", ""]
        for structure, metric in charts:
            out += [render_svg(document, structure, metric), ""]
    if report.candidates:
        out += ["", "## Candidate schedules", "", *_candidate_lines(report)]
    for na in report.not_applicable:
        out += [
            "",
            f"- {_md(na['policy'])}: not applicable to this case ("
            + "; ".join(f"{k} applies when {v}" for k, v in na["applies_when"].items())
            + ")",
        ]
    for note in report.notes:
        out += ["", f"Note: {_md(note)}"]
    return "\n".join(out).rstrip() + "\n"


def render_html(report: LimitsReport) -> str:
    """A standalone page (no external resources) with the same content as the markdown."""
    body = []
    for line in render_markdown(report).splitlines():
        if line.startswith("<svg") or (line.startswith("<") and not line.startswith("<<")):
            body.append(line)
        elif line.startswith("# "):
            body.append(f"<h1>{line[2:]}</h1>")
        elif line.startswith("## "):
            body.append(f"<h2>{line[3:]}</h2>")
        elif line.startswith("|"):
            cells = [c.strip() for c in line.strip("|").split("|")]
            if set(line) <= set("|-"):
                continue
            body.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
        elif line.startswith("- "):
            body.append(f"<p>• {line[2:]}</p>")
        elif line.strip():
            body.append(f"<p>{line}</p>")
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>reirrad limits</title>'
        "<style>body{font-family:sans-serif;max-width:60em;margin:2em auto;font-size:18px}"
        "td{border:1px solid #ccc;padding:2px 8px}</style></head><body>\n"
        + "\n".join(_wrap_tables(body))
        + "\n</body></html>\n"
    )


def _wrap_tables(lines: Iterable[str]) -> list[str]:
    out: list[str] = []
    in_table = False
    for line in lines:
        if line.startswith("<tr>") and not in_table:
            out.append("<table>")
            in_table = True
        elif not line.startswith("<tr>") and in_table:
            out.append("</table>")
            in_table = False
        out.append(line)
    if in_table:
        out.append("</table>")
    return out
