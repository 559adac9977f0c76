"""Render an evaluation result for people: a plain-text table with explanations, or Markdown."""

from __future__ import annotations

import html
from typing import Any

from reirrad.errors import one_line

__all__ = ["POLICY_ORDER", "markdown_text", "render_markdown", "render_text", "unchecked_line"]

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


def _rows(entries: list[dict[str, Any]]) -> list[list[str]]:
    return [
        [
            e.get("policy") or "",
            e.get("criterion") or "",
            f"{e['structure']} {e['metric']}" if e.get("structure") else "(case)",
            _value(e),
            _limit(e),
            _STATUS[e["status"]],
        ]
        for e in sorted(entries, key=_order)
    ]


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
    if open_:
        sections.append(
            ["Undecided: data needed"]
            + [f"{bullet}[{r['rule_id']}] {r['title']} — needs: {_because(r, None)}." for r in open_]
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


def render_text(result: dict[str, Any]) -> str:
    """A tumour-board note: recommendations, the dose policies side by side, what was considered and not
    recommended, what is missing; then the assessment and, for the physicist, every explanation."""
    head = ["Policy", "Criterion", "Structure / metric", "Value", "Limit", "Verdict"]
    out = [*_header(result), ""]
    if "recommendations" in result:
        out += [*_made_lines(result), ""]
    summary = ", ".join(
        f"{p['policy']}: {p['verdict'].upper() if p['verdict'] == 'fail' else p['verdict']}"
        for p in sorted(
            result["policy_summary"], key=lambda p: _order({"policy": p["policy"], "rule_id": ""})
        )
    )
    out += [f"Policies: {summary}", "", "Cord dose constraints", _table(head, _rows(result["constraints"]))]
    if result["advisories"]:
        out += ["", "Advisories (not safety limits)", _table(head, _rows(result["advisories"]))]
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


def render_markdown(result: dict[str, Any]) -> str:
    head = ["Policy", "Criterion", "Structure / metric", "Value", "Limit", "Verdict"]
    out = [f"# Re-irradiation evaluation — case `{one_line(result['case_id']).replace('`', '')}`", ""]
    out += [f"- {line}" for line in _header(result)[1:]] + [""]
    if "recommendations" in result:
        recs = _made_lines(result)
        out += ["## " + recs[0], "", *recs[1:], ""]
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
