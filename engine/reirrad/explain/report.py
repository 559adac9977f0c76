"""Render an evaluation result for people: a plain-text table with explanations, or Markdown."""

from __future__ import annotations

import html
from typing import Any

from reirrad.errors import one_line
from reirrad.explain.limits import dose_so_far
from reirrad.explain.why import AWAITING_PLAN

__all__ = [
    "POLICY_ORDER",
    "markdown_text",
    "render_markdown",
    "render_text",
    "sureness_lines",
    "unchecked_line",
]

POLICY_ORDER = ["hytec", "nelson", "conus-bed3", "de-novo", "coverage"]
_OP = {"<": "<", "<=": "≤", ">": ">", ">=": "≥"}
_STATUS = {
    "pass": "pass",
    "fail": "FAIL",
    "indeterminate": "INDETERMINATE",
    "not_applicable": "n/a",
    "applied": "APPLIED",
}


def markdown_text(text: str) -> str:
    """Case-provided text made inert in Markdown: one line (escapes for line breaks and control characters, so no
    heading or list item can start), HTML characters as entities (no raw HTML, no autolink) and no inline link or
    image (``](`` escaped). Other characters are left alone, so that ordinary text reads as it did."""
    return html.escape(one_line(text), quote=False).replace("](", "]\\(")


def unchecked_line(unchecked: dict[str, Any]) -> str:
    """The header line of an output made with a pack that fails ``rules check`` (``--allow-unchecked-pack``)."""
    codes = sorted({str(e["code"]) for e in unchecked["errors"]})
    return (
        f"UNCHECKED RULE PACK ({unchecked['allowed_by']}): `reirrad rules check` found "
        f"{len(unchecked['errors'])} error(s) ({', '.join(codes)}); these verdicts are not those of a checked pack"
    )


def _order(entry: dict[str, Any]) -> tuple[int, str, str, str]:
    policy = entry.get("policy") or ""
    rank = POLICY_ORDER.index(policy) if policy in POLICY_ORDER else len(POLICY_ORDER)
    return rank, entry["rule_id"], entry.get("structure") or "", entry.get("metric") or ""


def _value(entry: dict[str, Any]) -> str:
    v = entry["value"]
    if v is None:
        return "—"
    unit = entry["unit"]
    if unit == "ratio":
        return f"{v:.3f}"
    if unit == "months":
        return f"{v:.2f} mo"
    return f"{v:.2f} {unit}"


def _limit(entry: dict[str, Any]) -> str:
    if entry["limit"] is None:
        return "—"
    unit = "" if entry["unit"] == "ratio" else (" mo" if entry["unit"] == "months" else f" {entry['unit']}")
    return f"{_OP[entry['operator']]} {entry['limit']:g}{unit}"


def _margin(entry: dict[str, Any]) -> str:
    margin = entry.get("margin")
    if margin is None or entry["status"] not in ("pass", "fail"):
        return ""
    unit = (
        "" if margin["unit"] == "ratio" else (" mo" if margin["unit"] == "months" else f" {margin['unit']}")
    )
    percent = f" ({margin['percent']:+.1f} %)" if "percent" in margin else ""
    return f"{margin['value']:+.2f}{unit}{percent}"


def _verdict(entry: dict[str, Any]) -> str:
    return _STATUS[entry["status"]] + (" (fragile)" if entry.get("fragile") else "")


def _rows(entries: list[dict[str, Any]]) -> list[list[str]]:
    return [
        [
            e.get("policy") or "",
            e.get("criterion") or "",
            f"{e['structure']} {e['metric']}" if e.get("structure") else "(case)",
            _value(e),
            _limit(e),
            _margin(e),
            _verdict(e),
        ]
        for e in sorted(entries, key=_order)
    ]


def _policy_headline(result: dict[str, Any]) -> str:
    """Each policy's verdict, by metric where the metrics disagree: 'hytec: fails on Dmax, passes on D0.03cc'."""
    out = []
    for p in sorted(result["policy_summary"], key=lambda p: _order({"policy": p["policy"], "rule_id": ""})):
        by_metric = p.get("by_metric") or {}
        if len(set(by_metric.values())) > 1:
            words = {
                "pass": "passes",
                "fail": "FAILS",
                "indeterminate": "cannot be decided",
                "not_applicable": "does not apply",
            }
            out.append(f"{p['policy']}: " + ", ".join(f"{words[v]} on {m}" for m, v in by_metric.items()))
        else:
            out.append(f"{p['policy']}: {p['verdict'].upper() if p['verdict'] == 'fail' else p['verdict']}")
    return "; ".join(out)


def sureness_lines(result: dict[str, Any], bullet: str = "- ") -> list[str]:
    """Verdicts another defensible reading of the sources would change, and intervals near a boundary."""
    out = []
    for e in sorted(result["constraints"] + result["advisories"], key=_order):
        for flip in e.get("sensitivity", []):
            where = f" {e['structure']} {e['metric']}" if e.get("structure") else ""
            out.append(f"{bullet}{e['rule_id']}{where}: {e['status']}, fragile: {flip['text']}")
    for r in result.get("recommendations", []):
        for flip in r.get("sensitivity", []):
            out.append(
                f"{bullet}{r['rule_id']} (recommendation): {r['status'].replace('_', ' ')}, fragile: {flip['text']}"
            )
    out += [f"{bullet}close to a boundary: {w}" for w in result.get("warnings", [])]
    return out


def _table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    line = "  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))
    out = [line, "  ".join("-" * w for w in widths)]
    out += ["  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join(out)


def _header(result: dict[str, Any]) -> list[str]:
    pack = result["rule_pack"]
    interval = result["interval_months"]
    unchecked = [unchecked_line(pack["unchecked"])] if pack.get("unchecked") else []
    return [
        f"Case {one_line(result['case_id'])}",
        *unchecked,
        f"Rule pack {pack['name']} {pack['version']} (sha256 {pack['sha256'][:16]}…), rules in force on "
        f"{pack['as_of']}; engine {result['engine']['name']} {result['engine']['version']}",
        "Interval since the most recent prior course: "
        + (f"{interval:.2f} months" if interval is not None else "no prior course"),
        *(
            [f"Reading: evaluated under {result['reading']['title']}, not the pack's own reading"]
            if result.get("reading")
            else []
        ),
    ]


def _because(rec: dict[str, Any], holds: bool | None) -> str:
    return "; ".join(b["text"] for b in rec["because"] if b["holds"] is holds)


def _options(rec: dict[str, Any]) -> str:
    opts = [o["label"] for o in rec["action"].get("options", [])]
    return f" Options: {', '.join(opts)}." if opts else ""


def _cites(line: dict[str, Any]) -> str:
    return "; ".join(f"{c['citation']}, {c['locator']}" for c in line["citations"])


NO_DOSE_RULE = "- none: no dose rule applies to this case (see Not applicable)"


def _dose_lines(result: dict[str, Any]) -> tuple[list[dict[str, Any]], list[tuple[str, str]]]:
    """The constraint and advisory lines that apply, in report order, and (rule id, explanation) of those that
    do not, once per rule."""
    lines = sorted(result["constraints"] + result["advisories"], key=_order)
    return (
        [e for e in lines if e["status"] != "not_applicable"],
        sorted({(e["rule_id"], e["explanation"]) for e in lines if e["status"] == "not_applicable"}),
    )


def _made_lines(result: dict[str, Any], bullet: str = "- ") -> list[str]:
    """What is recommended, first in a tumour-board note, each with its evidence level and source."""
    made = [r for r in result.get("recommendations", []) if r["status"] == "made"]
    out = ["Recommendations"]
    for r in made:
        mdt = " Subject to multidisciplinary assessment." if r["multidisciplinary"] else ""
        out.append(
            f"{bullet}[{r['rule_id']} v{r['rule_version']}] {r['title']}. Evidence: {r['evidence']['label']}. "
            f"{r['statement']}{_options(r)}{mdt} Because: {_because(r, True) or 'its conditions hold'}. "
            f"Source: {_cites(r)}."
        )
    if not made:
        out.append(f"{bullet}none made")
    return out


def _considered_lines(result: dict[str, Any], bullet: str = "- ") -> list[list[str]]:
    """What was considered and not recommended, and what could not be decided, as sections (title first)."""
    recs = result.get("recommendations", [])
    not_made = [r for r in recs if r["status"] == "not_made"]
    open_ = [r for r in recs if r["status"] == "indeterminate"]
    sections = []
    if not_made:
        sections.append(
            ["Considered and not recommended"]
            + [
                f"{bullet}[{r['rule_id']}] {r['title']} — not made because: {_because(r, False)}."
                for r in not_made
            ]
        )
    awaiting = [
        r for r in open_ if all(b["text"].endswith(AWAITING_PLAN) for b in r["because"] if b["holds"] is None)
    ]
    open_ = [r for r in open_ if r not in awaiting]
    if open_:
        sections.append(
            ["Undecided: data needed"]
            + [f"{bullet}[{r['rule_id']}] {r['title']} — needs: {_because(r, None)}." for r in open_]
        )
    if awaiting:
        sections.append(
            ["Awaiting a plan (these read the dose verdicts)"]
            + [f"{bullet}[{r['rule_id']}] {r['title']}." for r in awaiting]
        )
    return sections


def _assessment_lines(result: dict[str, Any], bullet: str = "- ", escape: Any = one_line) -> list[str]:
    """``escape`` makes an item's value, which quotes the case (its histology), safe for the output format."""
    blocks = result.get("assessment", [])
    if not blocks:
        return []
    out = ["Assessment (NOMS / ACR criteria)"]
    for block in blocks:
        parts = []
        for item in block["items"]:
            shown = item["status"].replace("_", " ")
            if item.get("value") not in (None, ""):
                shown += f" ({escape(item['value'])})"
            parts.append(f"{item['item']}: {shown}")
        flags = f" Flags: {', '.join(f['text'] for f in block['flags'])}." if block.get("flags") else ""
        out.append(f"{bullet}{block['domain']}: " + "; ".join(parts) + "." + flags)
    return out


def _before_planning_header(result: dict[str, Any]) -> list[str]:
    before = result.get("before_planning")
    if before is None:
        return []
    start = (
        f"; no planned course, so the planned start is taken as {before['planned_start']} (the date asked for)"
        if before["planned_start_assumed"]
        else ""
    )
    return [
        f"Before planning: no planned dose yet{start}. No dose criterion passes or fails until there is a plan; "
        "below, what each policy leaves for a new course."
    ]


def _limit_rows(limits: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """One row per policy and structure / metric, one column per number of fractions, then what binds."""
    numbers = sorted({lim["fractions"] for lim in limits["limits"]})
    rows: dict[tuple[str, str, str], dict[int, str]] = {}
    binds: dict[tuple[str, str, str], list[str]] = {}
    for lim in limits["limits"]:
        key = (lim["policy"], lim["structure"], lim["metric"])
        shown = "—" if lim["max_dose"] is None else f"{'<' if lim['strict'] else ''}{lim['max_dose']:.2f}"
        rows.setdefault(key, {})[lim["fractions"]] = shown
        if lim["binding_criterion"] and lim["binding_criterion"] not in binds.setdefault(key, []):
            binds[key].append(lim["binding_criterion"])
    head = ["Policy", "Structure / metric", *(f"{n} fx" for n in numbers), "Binding criterion"]
    body = [
        [
            policy,
            f"{structure} {metric}".strip() or "—",
            *(cells.get(n, "") for n in numbers),
            ", ".join(binds.get((policy, structure, metric), [])) or "—",
        ]
        for (policy, structure, metric), cells in sorted(
            rows.items(),
            key=lambda kv: _order(
                {"policy": kv[0][0], "rule_id": "", "structure": kv[0][1], "metric": kv[0][2]}
            ),
        )
    ]
    return head, body


def _gate_lines(limits: dict[str, Any], bullet: str = "- ") -> list[str]:
    gates: dict[str, dict[str, Any]] = {}
    for lim in limits["limits"]:
        for g in lim["gates"]:
            gates.setdefault(g["rule_id"], g)
    out = []
    for g in gates.values():
        value = "not known" if g["value"] is None else f"{g['value']:.2f} {g['unit']}"
        out.append(f"{bullet}{g['rule_id']}: {value} {_OP[g['operator']]} {g['limit']:g} → {g['status']}")
    return out


def _so_far_lines(limits: dict[str, Any], bullet: str = "- ") -> list[str]:
    return dose_so_far(limits, bullet=bullet, limit_word=" of")


def _candidate_lines(limits: dict[str, Any], bullet: str = "- ") -> list[str]:
    out = []
    for c in limits.get("candidates", []):
        covering = [f for f in c["policies"] if f["verdict"] != "not applicable"]
        silent = [f["policy"] for f in c["policies"] if f["verdict"] == "not applicable"]
        kind = "SBRT" if c["technique"].startswith("SBRT") else "conventional"
        text = f"{bullet}{c['label']} ({kind}): "
        text += "; ".join(f"{f['policy']} {f['verdict']} — {f['reason']}" for f in covering) or (
            f"no cord policy in force covers a {kind} course in {c['fractions']} fraction(s)"
        )
        if covering and silent:
            text += f"; not covered by {', '.join(silent)}"
        if c.get("published"):
            text += f". Published ({c['published']['basis']}): {c['published']['published']}"
        out.append(text + ".")
    return out


def _before_planning_sections(result: dict[str, Any], bullet: str = "- ") -> list[list[str]]:
    """The short view before planning: limits by fractions, gates, dose already given, candidate schedules."""
    limits = result["before_planning"]["limits"]
    sections = []
    head, body = _limit_rows(limits)
    if body:
        sections.append(
            [
                "What may be given: largest planned cord / thecal sac near-maximum dose (physical Gy, whole new "
                "course, rounded down)",
                _table(head, body),
            ]
        )
    gates = _gate_lines(limits, bullet)
    if gates:
        sections.append(["Interval gates", *gates])
    so_far = _so_far_lines(limits, bullet)
    if so_far:
        sections.append(["Dose already given", *so_far])
    candidates = _candidate_lines(limits, bullet)
    if candidates:
        sections.append(["Candidate schedules", *candidates])
    for na in limits.get("not_applicable", []):
        sections.append([f"{na['policy']}: not applicable to this case"])
    return sections


def render_text(result: dict[str, Any]) -> str:
    """A tumour-board note: recommendations, the dose policies side by side, what was considered and not
    recommended, what is missing; then the assessment and, for the physicist, every explanation."""
    head = ["Policy", "Criterion", "Structure / metric", "Value", "Limit", "Margin", "Verdict"]
    out = [*_header(result), *_before_planning_header(result), ""]
    if "recommendations" in result:
        out += [*_made_lines(result), ""]
    if "before_planning" in result:
        return _render_text_before_planning(result, out)
    out += [
        f"Policies: {_policy_headline(result)}",
        "",
        "Cord dose constraints",
        _table(head, _rows(result["constraints"])),
    ]
    if result["advisories"]:
        out += ["", "Advisories (not safety limits)", _table(head, _rows(result["advisories"]))]
    if result.get("disagreements"):
        out += ["", "Why the policies disagree", *(f"- {d['text']}" for d in result["disagreements"])]
    sureness = sureness_lines(result)
    if sureness:
        out += ["", "How sure the verdicts are", *sureness]
    applied = [a for a in result["assumptions"] if a["status"] == "applied"]
    if applied:
        out += ["", "Assumptions applied"]
        out += [
            f"- {a['rule_id']} v{a['rule_version']}: {a['statement']} Used by: {', '.join(a['used_by']) or 'none'}."
            for a in applied
        ]
    for section in _considered_lines(result):
        out += ["", *section]
    out += ["", "Missing data"] + ([f"- {m}" for m in result["missing_data"]] or ["- none"])
    assessment = _assessment_lines(result)
    if assessment:
        out += ["", *assessment]
    out += ["", "Explanations"]
    explained, not_applicable = _dose_lines(result)
    for e in explained:
        where = f" {e['structure']} {e['metric']}" if e.get("structure") else ""
        out.append(
            f"- [{e['rule_id']} v{e['rule_version']}{where}] {e['explanation']} "
            f"Evidence: {e['evidence']['label']}."
        )
    if not explained:
        out.append(NO_DOSE_RULE)
    if not_applicable:
        out += ["", "Not applicable"] + [f"- [{rid}] {text}" for rid, text in not_applicable]
    return "\n".join(out) + "\n"


def _render_text_before_planning(result: dict[str, Any], out: list[str]) -> str:
    for section in _before_planning_sections(result):
        out += [*section, ""]
    for section in _considered_lines(result):
        out += [*section, ""]
    out += ["Missing data"] + ([f"- {m}" for m in result["missing_data"]] or ["- none"])
    assessment = _assessment_lines(result)
    if assessment:
        out += ["", *assessment]
    return "\n".join(out) + "\n"


def render_markdown(result: dict[str, Any]) -> str:
    head = ["Policy", "Criterion", "Structure / metric", "Value", "Limit", "Margin", "Verdict"]
    out = [f"# Re-irradiation evaluation — case `{one_line(result['case_id']).replace('`', '')}`", ""]
    out += [f"- {line}" for line in [*_header(result)[1:], *_before_planning_header(result)]] + [""]
    if "recommendations" in result:
        recs = _made_lines(result)
        out += ["## " + recs[0], "", *recs[1:], ""]
    if "before_planning" in result:
        return _render_markdown_before_planning(result, out)
    out += ["## Cord dose policies", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    out += ["| " + " | ".join(r) + " |" for r in _rows(result["constraints"])]
    if result["advisories"]:
        out += [
            "",
            "## Advisories (not safety limits)",
            "",
            "| " + " | ".join(head) + " |",
            "|" + "---|" * len(head),
        ]
        out += ["| " + " | ".join(r) + " |" for r in _rows(result["advisories"])]
    out += ["", f"Policies: {_policy_headline(result)}"]
    if result.get("disagreements"):
        out += ["", "## Why the policies disagree", "", *(f"- {d['text']}" for d in result["disagreements"])]
    sureness = sureness_lines(result)
    if sureness:
        out += ["", "## How sure the verdicts are", "", *sureness]
    for section in _considered_lines(result):
        out += ["", "## " + section[0], "", *section[1:]]
    out += ["", "## Missing data", ""] + ([f"- {m}" for m in result["missing_data"]] or ["- none"])
    out += ["", "## Explanations", ""]
    explained, not_applicable = _dose_lines(result)
    for e in explained:
        where = f" — {e['structure']} {e['metric']}" if e.get("structure") else ""
        out.append(
            f"- **{e['rule_id']}** v{e['rule_version']}{where}: {e['explanation']} "
            f"*Evidence:* {e['evidence']['label']}. *Cited:* {_cites(e)}."
        )
    if not explained:
        out.append(NO_DOSE_RULE)
    if not_applicable:
        out += ["", "## Not applicable", ""] + [f"- **{rid}**: {text}" for rid, text in not_applicable]
    assessment = _assessment_lines(result, escape=markdown_text)
    if assessment:
        out += ["", "## " + assessment[0], "", *assessment[1:]]
    applied = [a for a in result["assumptions"] if a["status"] == "applied"]
    if applied:
        out += ["", "## Assumptions applied", ""]
        out += [f"- **{a['rule_id']}** v{a['rule_version']}: {a['statement']}" for a in applied]
    return "\n".join(out) + "\n"


def _render_markdown_before_planning(result: dict[str, Any], out: list[str]) -> str:
    from reirrad.explain.limits import chart_series, render_svg

    limits = result["before_planning"]["limits"]
    head, body = _limit_rows(limits)
    if body:
        out += [
            "## What may be given",
            "",
            "Largest planned cord / thecal sac near-maximum dose, physical Gy over the whole new course, rounded "
            "down to 0.01 Gy.",
            "",
            "| " + " | ".join(head) + " |",
            "|" + "---|" * len(head),
        ]
        out += ["| " + " | ".join(r) + " |" for r in body]
        out.append("")
        for structure, metric in chart_series(limits):
            out += [render_svg(limits, structure, metric), ""]
    for title, lines in (
        ("Interval gates", _gate_lines(limits)),
        ("Dose already given", _so_far_lines(limits)),
        ("Candidate schedules", _candidate_lines(limits)),
    ):
        if lines:
            out += [f"## {title}", "", *lines, ""]
    for section in _considered_lines(result):
        out += ["## " + section[0], "", *section[1:], ""]
    out += ["## Missing data", ""] + ([f"- {m}" for m in result["missing_data"]] or ["- none"])
    assessment = _assessment_lines(result)
    if assessment:
        out += ["", "## " + assessment[0], "", *assessment[1:]]
    return "\n".join(out) + "\n"
