"""report.html: one self-contained page (inline SVG drawn here, inline CSS; no scripts, no network)."""

from __future__ import annotations

import html
from typing import Any

__all__ = ["render_report"]

_COLORS = {
    "pass": "#2e7d32",
    "fail": "#c62828",
    "indeterminate": "#f9a825",
    "not_applicable": "#9e9e9e",
    "other": "#f9a825",
}
_STATUSES = ("pass", "fail", "indeterminate", "not_applicable")
_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2em auto;max-width:1100px;color:#222}
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:2em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:0.5em 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}
th{background:#f3f3f3}td.l,th.l{text-align:left}.note{color:#555;font-size:0.9em;max-width:900px}
.banner{background:#fff3e0;border:1px solid #ffb74d;padding:0.6em 1em}
svg text{font-family:system-ui,sans-serif}
"""


def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _pct(n: int, d: int) -> str:
    return f"{100 * n / d:.1f} %" if d else "–"


def _table(head: list[str], rows: list[list[Any]], left: int = 1) -> str:
    out = [
        "<table><tr>"
        + "".join(f'<th class="{"l" if i < left else ""}">{_e(h)}</th>' for i, h in enumerate(head))
        + "</tr>"
    ]
    for row in rows:
        out.append(
            "<tr>"
            + "".join(f'<td class="{"l" if i < left else ""}">{_e(c)}</td>' for i, c in enumerate(row))
            + "</tr>"
        )
    out.append("</table>")
    return "\n".join(out)


def _scatter(cord: dict[str, Any]) -> str:
    """Cumulative vs re-irradiation cord EQD2 (as Lucido 2025 Figure 4), HyTEC limits at 25 and 70 Gy."""
    w, h, ml, mb, mt, mr = 560, 420, 60, 50, 20, 20
    pts = cord.get("sample", [])
    xmax = max([40.0, *(p[0] for p in pts)]) * 1.05
    ymax = max([100.0, *(p[1] for p in pts)]) * 1.05
    xmax, ymax = min(xmax, 200.0), min(ymax, 400.0)

    def sx(x: float) -> float:
        return ml + (w - ml - mr) * min(x, xmax) / xmax

    def sy(y: float) -> float:
        return h - mb - (h - mb - mt) * min(y, ymax) / ymax

    parts = [
        f'<svg width="{w}" height="{h}" viewBox="0 0 {w} {h}" '
        f'role="img" aria-label="cumulative versus re-irradiation cord EQD2">',
        f'<rect x="{ml}" y="{mt}" width="{w - ml - mr}" height="{h - mt - mb}" fill="#fafafa" stroke="#999"/>',
    ]
    for i in range(0, int(xmax) + 1, 10):
        parts.append(
            f'<line x1="{sx(i):.1f}" y1="{h - mb}" x2="{sx(i):.1f}" y2="{h - mb + 4}" stroke="#666"/>'
            f'<text x="{sx(i):.1f}" y="{h - mb + 16}" font-size="10" text-anchor="middle">{i}</text>'
        )
    step = 20 if ymax <= 200 else 50
    for i in range(0, int(ymax) + 1, step):
        parts.append(
            f'<line x1="{ml - 4}" y1="{sy(i):.1f}" x2="{ml}" y2="{sy(i):.1f}" stroke="#666"/>'
            f'<text x="{ml - 7}" y="{sy(i) + 3:.1f}" font-size="10" text-anchor="end">{i}</text>'
        )
    for p in pts:
        parts.append(
            f'<circle cx="{sx(p[0]):.1f}" cy="{sy(p[1]):.1f}" r="2.2" fill="{_COLORS.get(p[2], "#555")}" '
            f'fill-opacity="0.55"/>'
        )
    lx, ly = cord["limits"]["x"], cord["limits"]["y"]
    parts.append(
        f'<line x1="{sx(lx):.1f}" y1="{mt}" x2="{sx(lx):.1f}" y2="{h - mb}" stroke="#000" '
        f'stroke-dasharray="5,4"/><text x="{sx(lx) + 4:.1f}" y="{mt + 12}" font-size="11">{lx:g} Gy</text>'
    )
    parts.append(
        f'<line x1="{ml}" y1="{sy(ly):.1f}" x2="{w - mr}" y2="{sy(ly):.1f}" stroke="#000" '
        f'stroke-dasharray="5,4"/><text x="{w - mr - 4}" y="{sy(ly) - 4:.1f}" font-size="11" '
        f'text-anchor="end">{ly:g} Gy</text>'
    )
    parts.append(
        f'<text x="{(ml + w - mr) / 2}" y="{h - 12}" font-size="12" text-anchor="middle">'
        f"re-irradiation cord Dmax, Gy EQD2 (α/β 2; hytec.resbrt)</text>"
    )
    parts.append(
        f'<text transform="translate(16,{(mt + h - mb) / 2}) rotate(-90)" font-size="12" '
        f'text-anchor="middle">cumulative cord Dmax, Gy EQD2 (hytec.cumulative)</text>'
    )
    parts.append("</svg>")
    return "".join(parts)


def _bars(policies: dict[str, Any]) -> str:
    """Stacked bars of the policy verdicts (share of cases), one per policy."""
    names = list(policies)
    bar_h, gap, ml, w = 22, 10, 110, 620
    h = 30 + len(names) * (bar_h + gap) + 30
    parts = [f'<svg width="{w}" height="{h}" viewBox="0 0 {w} {h}" role="img" aria-label="policy verdicts">']
    span = w - ml - 20
    for i, name in enumerate(names):
        v = policies[name]["verdicts"]
        total = sum(v.values()) or 1
        y = 20 + i * (bar_h + gap)
        parts.append(f'<text x="{ml - 6}" y="{y + 15}" font-size="12" text-anchor="end">{_e(name)}</text>')
        x = float(ml)
        for s in _STATUSES:
            width = span * v.get(s, 0) / total
            if width > 0:
                parts.append(
                    f'<rect x="{x:.1f}" y="{y}" width="{width:.1f}" height="{bar_h}" fill="{_COLORS[s]}">'
                    f"<title>{_e(name)} {s}: {v.get(s, 0)}</title></rect>"
                )
                if width > 34:
                    parts.append(
                        f'<text x="{x + width / 2:.1f}" y="{y + 15}" font-size="10" fill="#fff" '
                        f'text-anchor="middle">{100 * v.get(s, 0) / total:.0f}%</text>'
                    )
            x += width
    ly = h - 14
    for j, s in enumerate(_STATUSES):
        parts.append(
            f'<rect x="{ml + j * 120}" y="{ly - 10}" width="12" height="12" fill="{_COLORS[s]}"/>'
            f'<text x="{ml + j * 120 + 16}" y="{ly}" font-size="11">{s}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _matrix(names: list[str], dis: dict[str, dict[str, int]], evaluated: int) -> str:
    """Heat map: row policy passes while column policy fails."""
    cell, ml, mt = 70, 110, 100
    w, h = ml + cell * len(names) + 10, mt + cell * len(names) + 10
    top = max([1, *(n for row in dis.values() for n in row.values())])
    parts = [
        f'<svg width="{w}" height="{h}" viewBox="0 0 {w} {h}" role="img" aria-label="policy disagreements">'
    ]
    for j, b in enumerate(names):
        x = ml + j * cell + cell / 2
        parts.append(
            f'<text transform="translate({x:.0f},{mt - 6}) rotate(-40)" font-size="11">{_e(b)} fails</text>'
        )
    for i, a in enumerate(names):
        y = mt + i * cell
        parts.append(
            f'<text x="{ml - 6}" y="{y + cell / 2 + 4:.0f}" font-size="11" text-anchor="end">{_e(a)} '
            f"passes</text>"
        )
        for j, b in enumerate(names):
            n = dis.get(a, {}).get(b, 0)
            shade = int(255 - 200 * n / top)
            parts.append(
                f'<rect x="{ml + j * cell}" y="{y}" width="{cell - 2}" height="{cell - 2}" '
                f'fill="rgb(255,{shade},{shade})" stroke="#ccc"><title>{_e(a)} pass, {_e(b)} fail: {n}'
                f'</title></rect><text x="{ml + j * cell + cell / 2 - 1:.0f}" y="{y + cell / 2 + 4:.0f}" '
                f'font-size="11" text-anchor="middle">{n if a != b else "–"}</text>'
            )
    parts.append("</svg>")
    return "".join(parts)


def render_report(s: dict[str, Any]) -> str:
    counts = s["counts"]
    evaluated = counts["evaluated"]
    pack = s.get("rule_pack", {})
    when = "on each case’s planned start date" if s.get("as_of") == "treatment" else _e(s.get("as_of"))
    body: list[str] = [
        "<h1>Re-irradiation practice audit</h1>",
        f"<p>Input <code>{_e(s.get('input', ''))}</code>: {s.get('input_cases', 0):,} cases; "
        f"{evaluated:,} evaluated, {counts['rejected']:,} rejected (errors.jsonl)"
        + (f", {counts['blank_lines']:,} blank lines skipped" if counts["blank_lines"] else "")
        + ". "
        f"Rules in force: {when}"
        f"; rule pack {_e(pack.get('name'))} {_e(pack.get('version'))} "
        f"(content sha256 {_e(str(pack.get('content_sha256', ''))[:12])}…); engine {_e(s.get('engine'))}.</p>",
        '<p class="banner">Decision support, not a verdict on care: published policies disagree, and a case '
        "failing one may be compliant with another. Check the source of each rule before acting on a count.</p>",
    ]
    pol = s["policies"]
    body.append("<h2>Policy verdicts</h2>")
    body.append(_bars(pol) if pol else "<p>No case was evaluated.</p>")
    rows = []
    for name, p in pol.items():
        v, m = p["verdicts"], p["met"]
        rows.append(
            [
                name,
                v["pass"],
                v["fail"],
                v["indeterminate"],
                v["not_applicable"],
                m["evaluated"],
                f"{m['all_metrics']} ({_pct(m['all_metrics'], m['evaluated'])})",
                f"{m['any_metric']} ({_pct(m['any_metric'], m['evaluated'])})",
                ", ".join(f"{k} {n}" for k, n in m["by_metric"].items()),
            ]
        )
    body.append(
        _table(
            [
                "policy",
                "pass",
                "fail",
                "indeterminate",
                "not applicable",
                "applies",
                "met on all metrics",
                "met on ≥1 near-max metric",
                "met on metric",
            ],
            rows,
        )
    )
    body.append(
        '<p class="note">“Met on all metrics”: every line of every criterion passes. '
        "“Met on ≥1 near-max metric”: on at least one of Dmax, D0.03cc, D0.1cc, D1cc every criterion "
        "passes (case-level criteria such as the interval must pass too). Lucido 2025 found 27 % of "
        "plans (L1 and above) met all four HyTEC criteria on the cord point maximum.</p>"
    )
    body.append("<h2>Conformance by criterion</h2>")
    rows = []
    for name, crits in s["criteria"].items():
        for crit, c in crits.items():
            cs, it = c["cases"], c["items"]
            rows.append([name, crit, *(cs[k] for k in _STATUSES), *(it[k] for k in _STATUSES)])
    body.append(
        _table(
            [
                "policy",
                "criterion",
                "cases pass",
                "fail",
                "indet.",
                "n/a",
                "lines pass",
                "fail",
                "indet.",
                "n/a",
            ],
            rows,
            left=2,
        )
    )
    cord = s["cord_eqd2"]
    q = cord["quadrants"]
    body.append("<h2>Spinal cord: cumulative vs re-irradiation EQD2</h2>")
    body.append(_scatter(cord))
    body.append(
        f'<p class="note">Each point is a case (SpinalCord Dmax; green: both HyTEC criteria pass, red: one '
        f"fails). {len(cord['sample']):,} of {cord['points']:,} points drawn (a fixed hash sample); the "
        f"counts below use every case. Dashed: HyTEC limits, 25 Gy re-irradiation and 70 Gy cumulative "
        f"(cf. Lucido 2025, Figure 4).</p>"
    )
    body.append(
        _table(
            ["", "cumulative ≤ 70 Gy", "cumulative > 70 Gy"],
            [
                ["re-irradiation ≤ 25 Gy", q["x_le_y_le"], q["x_le_y_gt"]],
                ["re-irradiation > 25 Gy", q["x_gt_y_le"], q["x_gt_y_gt"]],
            ],
        )
    )
    names = list(pol)
    body.append("<h2>Where policies disagree</h2>")
    if names:
        body.append(_matrix(names, s["disagreements"], evaluated))
        body.append(
            _table(
                ["passes", "fails", "cases"],
                [[a, b, n] for a, row in s["disagreements"].items() for b, n in row.items()],
                left=2,
            )
        )
    if s.get("compare"):
        body.append(f"<h2>Then and now (rules in force {_e(s.get('as_of'))} vs {_e(s.get('now'))})</h2>")
        rows = [[p, k, n] for p, v in s["compare"].items() for k, n in v.items()]
        body.append(_table(["policy", "verdict then → now", "cases"], rows, left=2))
        body.append(
            '<p class="note">“pass→fail”: compliant then, not compliant now. '
            "“not_in_force”: the policy had no rule in force on that date.</p>"
        )
    if s.get("recommendations"):
        body.append("<h2>Recommendations</h2>")
        rows = [
            [r, v.get("made", 0), v.get("not_made", 0), v.get("indeterminate", 0)]
            for r, v in s["recommendations"].items()
        ]
        body.append(_table(["rule", "made", "not made", "indeterminate"], rows))
    if s.get("errors_by_code"):
        body.append("<h2>Rejected cases</h2>")
        body.append(_table(["problem code", "cases"], [[k, v] for k, v in s["errors_by_code"].items()]))
    if s.get("rule_sets"):
        body.append("<h2>Rule sets used</h2>")
        body.append(
            _table(["rules in force (id@version)", "cases"], [[k, v] for k, v in s["rule_sets"].items()])
        )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        "<title>reirrad audit</title><style>"
        + _CSS
        + "</style></head><body>\n"
        + "\n".join(body)
        + "\n</body></html>\n"
    )
