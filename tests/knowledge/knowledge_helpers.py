"""Shared helpers of the knowledge-data and `reirrad limits` tests."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import Any

from reirrad.case import Case, parse_case
from reirrad.cli.main import main
from reirrad.dose.limits import DerivedLimit, derive_limits
from reirrad.knowledge.data import Table, load_table
from reirrad.knowledge.rulepack import RulePack, load_pack

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "rules"
SOURCES = ROOT.parent / "shared" / "sources"
AS_OF = date(2025, 6, 1)


def case_text(
    priors: Sequence[dict[str, Any]],
    *,
    planned_start: str = "2025-01-20",
    planned_fractions: int = 3,
    planned_structures: str = "ThecalSac: {Dmax: 12.0}",
    levels: str = "[T6]",
) -> str:
    lines = [
        "schema: reirrad/case/v1",
        "case_id: limits-test",
        f"lesion: {{levels: {levels}}}",
        "prior_courses:",
    ]
    if not priors:
        lines[-1] = "prior_courses: []"
    for p in priors:
        lines += [
            f"  - start: {p.get('start', '2023-12-01')}",
            f"    end: {p.get('end', '2024-01-19')}",
            f"    technique: {p.get('technique', '3DCRT')}",
            f"    prescription: {{dose: {p['dose']}, fractions: {p['fractions']}}}",
        ]
        if p.get("dosimetry") == "unavailable":
            lines.append("    dosimetry: unavailable")
        else:
            lines.append("    structures:")
            for name, metrics in p.get("structures", {"ThecalSac": {"Dmax": p["dose"]}}).items():
                inner = ", ".join(f"{m}: {v}" for m, v in metrics.items())
                lines.append(f"      {name}: {{{inner}}}")
    lines += [
        "planned_course:",
        f"  start: {planned_start}",
        "  technique: SBRT",
        f"  prescription: {{dose: 24, fractions: {planned_fractions}}}",
        "  structures:",
        f"    {planned_structures}",
    ]
    return "\n".join(lines) + "\n"


def make_case(priors: Sequence[dict[str, Any]], **kw: Any) -> Case:
    return parse_case(case_text(priors, **kw), "test-case.yaml")


def selected_pack(root: Path = RULES, as_of: date = AS_OF) -> RulePack:
    return load_pack(root).select(as_of)


def the_table() -> Table:
    return load_table(RULES)


def one_limit(
    case: Case,
    policy: str,
    fractions: int,
    *,
    structure: str = "ThecalSac",
    metric: str = "Dmax",
    pack: RulePack | None = None,
) -> DerivedLimit:
    report = derive_limits(
        case,
        pack or selected_pack(),
        table=the_table(),
        fractions=[fractions],
        structures=[structure],
        metrics=[metric],
    )
    found = [lim for lim in report.limits if lim.policy == policy]
    assert len(found) == 1, [(lim.policy, lim.structure, lim.metric) for lim in report.limits]
    return found[0]


def run_cli(argv: Sequence[str]) -> int:
    """`reirrad` with these arguments, as the console command runs it (InputError → exit 2)."""
    return main(list(argv))
