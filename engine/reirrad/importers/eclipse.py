"""Eclipse DVH text export (cumulative or differential; cGy or Gy; plans and plan sums) → one course.

Layout followed (Eclipse "Export DVH in tabular format"): a file header of ``Key : value`` lines
(patient identity lines are skipped and never kept), one block per plan or plan sum (``Plan: X`` /
``Plan sum: X``, ``Prescribed dose [cGy]: 3000.0`` or ``not defined``), then one block per structure:
``Structure: NAME``, ``Plan:`` / ``Plan sum:``, ``Volume [cm³]: …``, ``Dose Cover.[%]: …``, ``Max Dose
[cGy]: …`` …, a column header such as ``Dose [cGy]  Relative dose [%]  Ratio of Total Structure Volume
[%]`` (or ``Structure Volume [cm³]``, or ``dVolume / dDose [cm³ / cGy]`` for a differential DVH), and
the rows.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from itertools import pairwise

from reirrad.errors import InputError, Problem
from reirrad.importers.common import (
    METRIC_VOLUMES_CC,
    CourseOptions,
    ImportRefused,
    ImportResult,
    assemble_course,
    listing,
    ordered_metrics,
    plural,
    read_bytes,
)
from reirrad.importers.structure_map import StructureMap, load_structure_map, resolve_rois

__all__ = ["import_eclipse_dvh", "parse_eclipse_dvh"]

_IDENTITY_KEYS = ("patient name", "patient id", "patient", "name", "id", "birth", "date of birth")
_COLUMN = re.compile(r"\s*([^\[\]:]+?\s*\[[^\]]*\])")
_COLUMNS = re.compile(r"(?:\s*[^\[\]:]+?\s*\[[^\]]*\])+\s*")
_CM3 = re.compile(r"cm(?:³|Â³|3|\^3)|(?<=[\[\s/])cc(?=[\]\s/])")
"""cm³ as exported (UTF-8, Windows-1252 read as UTF-8, ASCII) and cc, which is the same unit."""
MIN_DOSE_COVER = 99.5
"""A structure whose ``Dose Cover.[%]`` is below this lies partly outside the dose grid: refused."""


@dataclass
class StructureDVH:
    """One structure block: where it starts, its plan, header values, and its table."""

    name: str
    line: int
    plan: str = ""
    header: dict[str, str] = field(default_factory=dict)
    header_lines: dict[str, int] = field(default_factory=dict)
    columns: list[str] = field(default_factory=list)
    column_line: int = 0
    rows: list[tuple[int, list[float]]] = field(default_factory=list)


@dataclass
class EclipseExport:
    """The parts of an export reirrad uses; never the patient's identity."""

    kind: str
    plans: dict[str, dict[str, str]]
    structures: list[StructureDVH]


def _decode(data: bytes, file: str) -> str:
    for encoding in ("utf-8-sig", "cp1252"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise InputError.of(
        [
            Problem(
                file,
                (),
                "neither UTF-8 nor Windows-1252 text",
                accepted="the .txt file Eclipse exported, unchanged",
                code="dvh.encoding",
            )
        ]
    )


def _key(text: str) -> str:
    return " ".join(_CM3.sub("cm3", text).split()).casefold()


def parse_eclipse_dvh(text: str, file: str) -> EclipseExport:
    """Split an export into plans and structure blocks; rows are parsed, not yet interpreted."""
    kind = ""
    plans: dict[str, dict[str, str]] = {}
    structures: list[StructureDVH] = []
    current_plan: dict[str, str] | None = None
    block: StructureDVH | None = None
    problems: list[Problem] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line:
            if block is not None and block.rows:
                block = None
            continue
        key, sep, value = line.partition(":")
        k = _key(key)
        value = value.strip()
        if block is not None and block.columns:
            cells = line.split()
            try:
                block.rows.append((number, [float(c) for c in cells]))
            except ValueError:
                if sep and k == "structure":
                    block = None
                else:
                    problems.append(
                        Problem(
                            file,
                            ("structure", block.name),
                            f"row '{line[:60]}' is not numbers",
                            accepted="numeric columns under the column header",
                            line=number,
                            code="dvh.row",
                        )
                    )
                    continue
            else:
                if len(cells) != len(block.columns):
                    problems.append(
                        Problem(
                            file,
                            ("structure", block.name),
                            f"{len(cells)} numbers in a row of {len(block.columns)} columns",
                            accepted="one number per column",
                            line=number,
                            code="dvh.row",
                        )
                    )
                continue
        if sep and k == "structure":
            block = StructureDVH(value, number)
            structures.append(block)
            continue
        if block is not None:
            if sep:
                block.header[k] = value
                block.header_lines[k] = number
                if k in ("plan", "plan sum"):
                    block.plan = value
            elif _COLUMNS.fullmatch(line):
                block.columns = [_key(c) for c in _COLUMN.findall(line)]
                block.column_line = number
            continue
        if sep and k in ("plan", "plan sum"):
            current_plan = {"kind": k}
            plans[value] = current_plan
        elif sep and current_plan is not None:
            current_plan[k] = value
        elif sep and k == "type":
            kind = value
        elif sep and k.startswith(_IDENTITY_KEYS):
            continue
    if problems:
        raise InputError.of(problems)
    return EclipseExport(kind, plans, structures)


def _number(text: str) -> float | None:
    try:
        return float(text.replace(",", "."))
    except ValueError:
        return None


def _dose_header(header: Mapping[str, str], name: str) -> tuple[float | None, str]:
    """A header dose such as ``max dose [cgy]`` in Gy, and the key found."""
    for unit, scale in (("cgy", 0.01), ("gy", 1.0)):
        key = f"{name} [{unit}]"
        if key in header:
            value = _number(header[key])
            return (None if value is None else value * scale), key
    return None, ""


def _cumulative_cc(block: StructureDVH, file: str, kind: str) -> tuple[list[float], list[float], str]:
    """Dose (Gy) and volume receiving at least that dose (cm³), and how they were read."""

    def bad(message: str, accepted: str, line: int | None = None) -> InputError:
        return InputError.of(
            [
                Problem(
                    file,
                    ("structure", block.name),
                    message,
                    accepted,
                    line or block.column_line or block.line,
                    code="dvh.table",
                )
            ]
        )

    if not block.columns:
        raise bad(
            "no DVH table (no column header such as 'Dose [cGy]  Ratio of Total Structure Volume [%]')",
            "the structure's DVH exported as a table",
        )
    dose_col = next((i for i, c in enumerate(block.columns) if c in ("dose [cgy]", "dose [gy]")), None)
    if dose_col is None:
        raise bad(
            f"no absolute dose column among {block.columns}",
            "'Dose [cGy]' or 'Dose [Gy]' (export absolute dose)",
        )
    dose_scale = 0.01 if block.columns[dose_col] == "dose [cgy]" else 1.0
    vol_col, how = None, ""
    for i, c in enumerate(block.columns):
        if c == "ratio of total structure volume [%]":
            vol_col, how = i, "cumulative %"
        elif c == "structure volume [cm3]":
            vol_col, how = i, "cumulative cm3"
        elif re.fullmatch(r"dvolume ?/ ?ddose \[(%|cm3) ?/ ?(c?gy)\]", c):
            vol_col, how = i, "differential " + c
    if vol_col is None:
        raise bad(
            f"no volume column among {block.columns}",
            "'Ratio of Total Structure Volume [%]', "
            "'Structure Volume [cm³]' or 'dVolume / dDose [cm³ / cGy]'",
        )
    differential = how.startswith("differential")
    if kind and ("differential" in kind.casefold()) != differential:
        raise bad(
            f"the file says '{kind}' but the table of '{block.name}' is {how.split()[0]}",
            "a table matching the Type line",
        )
    total = block.header.get("volume [cm3]")
    total_cc = _number(total) if total is not None else None
    doses = [row[dose_col] * dose_scale for _, row in block.rows]
    raw = [row[vol_col] for _, row in block.rows]
    if len(doses) < 2:
        raise bad("the DVH table has fewer than two rows", "the full table")
    if any(b <= a for a, b in pairwise(doses)):
        line = next(block.rows[i + 1][0] for i in range(len(doses) - 1) if doses[i + 1] <= doses[i])
        raise bad("doses do not increase from row to row", "rows in increasing dose", line)
    percent = "%" in how
    if percent and (total_cc is None or total_cc <= 0):
        raise bad(
            "volumes are in % and the structure's 'Volume [cm³]' (or 'Volume [cc]') line is missing",
            "the header exported with the table",
            block.line,
        )
    scale = total_cc / 100.0 if percent else 1.0  # type: ignore[operator]
    if differential:
        per = "cgy" if how.endswith("cgy]") else "gy"
        widths = [(b - a) / (0.01 if per == "cgy" else 1.0) for a, b in pairwise(doses)]
        widths.append(widths[-1])
        volumes, running = [], 0.0
        for v, w in zip(reversed(raw), reversed(widths), strict=True):
            running += v * w * scale
            volumes.append(running)
        volumes.reverse()
    else:
        volumes = [v * scale for v in raw]
        if any(b > a + 1e-9 * max(1.0, a) for a, b in pairwise(volumes)):
            line = next(
                block.rows[i + 1][0] for i in range(len(volumes) - 1) if volumes[i + 1] > volumes[i] + 1e-9
            )
            raise bad("a cumulative DVH cannot grow with dose", "a non-increasing volume column", line)
    return doses, volumes, how


def _metrics(
    doses: list[float], volumes: list[float], max_dose: float | None
) -> tuple[dict[str, float | None], str]:
    """Dmax and D_v by linear interpolation of the cumulative DVH between its rows."""
    out: dict[str, float | None] = {}
    how = "Dmax from the 'Max Dose' line"
    if max_dose is None:
        zero = next((d for d, v in zip(doses, volumes, strict=True) if v <= 0), doses[-1])
        max_dose, how = zero, "Dmax: first dose row with no volume left (an upper bound: no 'Max Dose' line)"
    out["Dmax"] = max_dose
    for metric, v in METRIC_VOLUMES_CC.items():
        value = None
        if volumes[0] >= v:
            for (d0, v0), (d1, v1) in pairwise(zip(doses, volumes, strict=True)):
                if v0 >= v > v1:
                    value = d0 + (d1 - d0) * (v0 - v) / (v0 - v1)
                    break
            else:
                value = doses[-1]
        out[metric] = None if value is None else min(value, max_dose)
    return out, how


def import_eclipse_dvh(
    path: str,
    options: CourseOptions | None = None,
    structure_map: StructureMap | None = None,
    explicit_rois: Mapping[str, str] | None = None,
    plan: str | None = None,
) -> ImportResult:
    """Read an Eclipse DVH export and build a course; every problem is raised as an ImportRefused, with the
    warnings gathered before it."""
    warnings: list[str] = []
    try:
        return _import_eclipse_dvh(
            path, options or CourseOptions(), structure_map, explicit_rois, plan, warnings
        )
    except InputError as exc:
        raise ImportRefused.gathered(exc.problems, warnings) from None


def _import_eclipse_dvh(
    path: str,
    options: CourseOptions,
    structure_map: StructureMap | None,
    explicit_rois: Mapping[str, str] | None,
    plan: str | None,
    warnings: list[str],
) -> ImportResult:
    smap = structure_map or load_structure_map()
    export = parse_eclipse_dvh(_decode(read_bytes(path), path), path)
    if not export.structures:
        raise InputError.of(
            [
                Problem(
                    path,
                    (),
                    "no 'Structure:' block found",
                    accepted="an Eclipse DVH text export",
                    code="dvh.empty",
                )
            ]
        )
    labels = list(dict.fromkeys(s.plan for s in export.structures))
    if plan is not None:
        if plan not in labels:
            raise InputError.of(
                [
                    Problem(
                        path,
                        ("plan",),
                        f"no structure block for plan '{plan}'",
                        accepted=f"--plan {' or '.join(repr(x) for x in labels)}",
                        code="dvh.plan",
                    )
                ]
            )
        chosen_plan = plan
    elif len(labels) > 1:
        raise InputError.of(
            [
                Problem(
                    path,
                    ("plan",),
                    f"the export holds DVHs of {len(labels)} plans or plan sums: {listing(labels)}",
                    accepted="--plan NAME",
                    code="dvh.plan",
                )
            ]
        )
    else:
        chosen_plan = labels[0]
    blocks = [s for s in export.structures if s.plan == chosen_plan]
    lines = {}
    for b in blocks:
        lines.setdefault(b.name, b.line)
    choice = resolve_rois([b.name for b in blocks], smap, explicit_rois or {}, path, lines)
    by_name = {b.name: b for b in blocks}
    if choice.unused:
        warnings.append(
            f"{path}: {plural(len(choice.unused), 'structure')} not used: {listing(choice.unused)}"
        )
    notes = [f"Eclipse DVH export, {export.kind or 'type not stated'}; plan '{chosen_plan}'."]
    problems: list[Problem] = []
    structures: dict[str, dict[str, float]] = {}
    for tg, roi in choice.chosen.items():
        block = by_name[roi]
        cover = _number(block.header.get("dose cover.[%]", "100"))
        if cover is not None and cover < MIN_DOSE_COVER:
            problems.append(
                Problem(
                    path,
                    ("structure", roi),
                    f"Dose Cover. is {cover:g} %: the dose grid does not cover the structure",
                    f"≥ {MIN_DOSE_COVER:g} % (enlarge the calculation volume)",
                    block.header_lines.get("dose cover.[%]"),
                    code="dvh.coverage",
                )
            )
            continue
        try:
            doses, volumes, how = _cumulative_cc(block, path, export.kind)
        except InputError as exc:
            problems += exc.problems
            continue
        max_dose, _ = _dose_header(block.header, "max dose")
        values, dmax_how = _metrics(doses, volumes, max_dose)
        for metric, v in METRIC_VOLUMES_CC.items():
            if values[metric] is None:
                warnings.append(
                    f"{path}: structure '{roi}' is {volumes[0]:.3f} cm³, smaller than {v} cm³: "
                    f"{metric} left out"
                )
        structures[tg] = ordered_metrics(values)
        notes.append(f"{tg} is '{roi}' ({how} table; D_v by linear interpolation between rows; {dmax_how}).")
    if problems:
        raise InputError.of(problems)
    prescription = None
    plan_info = export.plans.get(chosen_plan, {})
    dose, _ = _dose_header(plan_info, "prescribed dose")
    if dose is not None and plan_info.get("kind") == "plan":
        prescription = dose
    course = assemble_course(
        path,
        options,
        dose_gy=prescription,
        sources={"prescription": f"the export's 'Prescribed dose' of plan '{chosen_plan}'"},
        structures=structures,
    )
    return ImportResult(course, notes, warnings)
