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

import itertools
import math
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
    target_notes,
)
from reirrad.importers.structure_map import TARGET_NAMES, StructureMap, load_structure_map, resolve_rois

__all__ = ["import_eclipse_dvh", "parse_eclipse_dvh"]

_IDENTITY_KEYS = ("patient name", "patient id", "patient", "name", "id", "birth", "date of birth")
_COLUMN = re.compile(r"\s*([^\[\]:]+?\s*\[[^\]]*\])")
_COLUMNS = re.compile(r"(?:\s*[^\[\]:]+?\s*\[[^\]]*\])+\s*")
_CM3 = re.compile(r"cm(?:³|Â³|3|\^3)|(?<=[\[\s/])cc(?=[\]\s/])")
"""cm³ as exported (UTF-8, Windows-1252 read as UTF-8, ASCII) and cc, which is the same unit."""
_UNDEFINED = ("", "not defined", "n/a", "-")
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
                numbers = [float(c) for c in cells]
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
                if not all(math.isfinite(x) for x in numbers):
                    problems.append(
                        Problem(
                            file,
                            ("structure", block.name),
                            f"row '{line[:60]}' holds a value that is not a finite number",
                            accepted="finite numbers (no nan, inf)",
                            line=number,
                            code="dvh.row",
                        )
                    )
                elif len(cells) != len(block.columns):
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
                else:
                    block.rows.append((number, numbers))
                continue
        if sep and k == "structure":
            block = StructureDVH(value, number)
            structures.append(block)
            continue
        if block is not None:
            if sep:
                if k in block.header and block.header[k] != value:
                    problems.append(
                        Problem(
                            file,
                            ("structure", block.name, key.strip()),
                            f"'{key.strip()}' is given twice in one structure block "
                            f"('{block.header[k]}' on line {block.header_lines[k]}, '{value}' here)",
                            accepted="one value per header line, as Eclipse exports it",
                            line=number,
                            code="dvh.header",
                        )
                    )
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


@dataclass(frozen=True)
class Reference:
    """The dose that relative doses (%) of a structure block refer to, in Gy, and where it comes from."""

    gy: float
    source: str


@dataclass(frozen=True)
class HeaderDose:
    """A dose from a header line (``Max Dose [cGy]: 3000.0``) in Gy, and how precisely it is written."""

    gy: float
    key: str
    line: int | None
    resolution: float
    """Half a unit of the last digit written, in Gy: the line's own rounding."""
    reference: Reference | None = None
    """For a line in %, the dose of 100 %."""


def _written_resolution(text: str, scale: float) -> float:
    decimals = len(text.strip().replace(",", ".").partition(".")[2])
    return 0.5 * 10.0**-decimals * scale


def _header_dose(
    header: Mapping[str, str],
    lines: Mapping[str, int],
    name: str,
    file: str,
    where: tuple[str | int, ...],
    reference: Reference | None = None,
) -> HeaderDose | None:
    """A header dose such as ``max dose [cgy]`` in Gy; the same dose in two units must agree.

    A dose in % (``Max Dose [%]``) is converted with the reference dose (100 %); without one it is left out.
    """
    found: list[HeaderDose] = []
    units = [("cgy", 0.01), ("gy", 1.0)]
    if reference is not None:
        units.append(("%", reference.gy / 100.0))
    for unit, scale in units:
        key = f"{name} [{unit}]"
        if key not in header or header[key].strip().casefold() in _UNDEFINED:
            continue
        value = _number(header[key])
        if value is None or not math.isfinite(value) or value < 0:
            raise InputError.of(
                [
                    Problem(
                        file,
                        (*where, key),
                        f"'{header[key]}' is not a dose",
                        accepted="a finite number ≥ 0",
                        line=lines.get(key),
                        code="dvh.header",
                    )
                ]
            )
        found.append(
            HeaderDose(
                value * scale,
                key,
                lines.get(key),
                _written_resolution(header[key], scale),
                reference if unit == "%" else None,
            )
        )
    for a, b in itertools.combinations(found, 2):
        if abs(a.gy - b.gy) <= a.resolution + b.resolution:
            continue
        raise InputError.of(
            [
                Problem(
                    file,
                    (*where, name),
                    f"'{a.key}' and '{b.key}' disagree ({a.gy:g} Gy and {b.gy:g} Gy)",
                    accepted="one value, or the same dose in both units",
                    line=found[1].line,
                    code="dvh.header",
                )
            ]
        )
    return found[0] if found else None


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
    for (line, row), d, v in zip(block.rows, doses, raw, strict=True):
        if d < 0 or v < 0:
            raise bad(
                f"a negative {'dose' if d < 0 else 'volume'} in the table ({row[dose_col] if d < 0 else v:g})",
                "doses and volumes ≥ 0",
                line,
            )
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


def _reference(
    block: StructureDVH, plans: Mapping[str, Mapping[str, str]], file: str
) -> tuple[Reference | None, str]:
    """The dose of 100 % for a block's relative header lines: its plan's prescribed (total) dose, checked against
    the table's own absolute and relative dose columns; else the table's ratio; else none (and why)."""
    plan = plans.get(block.plan, {})
    stated = _header_dose(plan, {}, "prescribed dose", file, ("plan", block.plan)) or _header_dose(
        plan, {}, "total dose", file, ("plan", block.plan)
    )
    ratio = None
    cols = block.columns
    if "relative dose [%]" in cols and ("dose [cgy]" in cols or "dose [gy]" in cols):
        i_rel = cols.index("relative dose [%]")
        i_abs = cols.index("dose [cgy]") if "dose [cgy]" in cols else cols.index("dose [gy]")
        scale = 0.01 if cols[i_abs] == "dose [cgy]" else 1.0
        ratios = sorted(
            row[i_abs] * scale * 100.0 / row[i_rel] for _, row in block.rows if row[i_rel] >= 50.0
        )
        if ratios:
            ratio = ratios[len(ratios) // 2]
    if stated is not None and ratio is not None and abs(stated.gy - ratio) > 0.005 * stated.gy + 0.01:
        raise InputError.of(
            [
                Problem(
                    file,
                    ("structure", block.name),
                    f"the plan's prescribed dose is {stated.gy:g} Gy but the table's relative dose column puts "
                    f"100 % at {ratio:.2f} Gy: the dose of 100 % is unclear",
                    accepted="an export whose relative doses refer to the plan's prescribed dose",
                    line=block.column_line,
                    code="dvh.reference",
                )
            ]
        )
    if stated is not None:
        how = f"the prescribed dose of plan '{block.plan}', {stated.gy:g} Gy"
        if ratio is not None:
            how += ", as the table's relative dose column confirms"
        return Reference(stated.gy, how), ""
    if ratio is not None:
        return Reference(round(ratio, 4), f"the table's dose columns ({ratio:.2f} Gy is 100 %)"), ""
    return None, "the plan states no prescribed dose and the table has no relative dose column"


def _minimum(
    doses: list[float],
    volumes: list[float],
    min_line: HeaderDose | None,
    file: str,
    block: StructureDVH,
    warnings: list[str],
) -> tuple[float | None, str]:
    """A target's minimum dose: its ``Min Dose`` line, checked against the table.

    The whole volume receives the dose of the last row whose volume is the structure's (Dmin ≥ that dose), and
    less than all of it the next row's (Dmin < it); a line outside these bounds by more than one row's step and
    its own rounding contradicts the table. Without a line the minimum is not known: left out, with the bounds.
    """
    full = volumes[0]
    last = max(i for i, v in enumerate(volumes) if v >= full)
    low = doses[last]
    high = doses[last + 1] if last + 1 < len(doses) else None
    bounds = f"the whole volume receives {low:g} Gy" + (
        f" and not all of it {high:g} Gy" if high is not None else ""
    )
    if min_line is None:
        warnings.append(
            f"{file}: structure '{block.name}' (PTV_High) has no 'Min Dose' line; {bounds}: ptv_high_dmin "
            "not known, left out"
        )
        return None, "not imported (no Min Dose line)"
    step = doses[min(last + 1, len(doses) - 1)] - doses[max(last, 1) - 1]
    slack = abs(step) + min_line.resolution
    if min_line.gy < low - slack or (high is not None and min_line.gy > high + slack):
        raise InputError.of(
            [
                Problem(
                    file,
                    ("structure", block.name, min_line.key),
                    f"the '{min_line.key}' line gives {min_line.gy:g} Gy, but in the table {bounds}",
                    accepted="a Min Dose line that agrees with the table (export the structure again)",
                    line=min_line.line,
                    code="dvh.mindose",
                )
            ]
        )
    how = f"from the '{min_line.key}' line, which agrees with the table"
    if min_line.reference is not None:
        how += f"; 100 % is {min_line.reference.source}"
    return min_line.gy, how


@dataclass
class StructureMetrics:
    """What one structure block gives: metrics (None when the table cannot say), notes, warnings."""

    values: dict[str, float | None]
    how: str
    warnings: list[str]


def _metrics(
    doses: list[float],
    volumes: list[float],
    max_line: HeaderDose | None,
    file: str,
    block: StructureDVH,
) -> StructureMetrics:
    """Dmax and D_v from the table, the ``Max Dose`` line checked against it; never a value the table denies.

    The table bounds the maximum: some volume receives the dose of the last row with volume left (Dmax ≥ that
    dose), none the dose of the next row (Dmax ≤ it). A ``Max Dose`` line outside these bounds, by more than
    one row's dose step and the line's own rounding, contradicts the table and is refused.
    """
    where: tuple[str | int, ...] = ("structure", block.name)
    warnings: list[str] = []
    last = max((i for i, v in enumerate(volumes) if v > 0), default=None)
    if last is None:
        raise InputError.of(
            [
                Problem(
                    file,
                    where,
                    "the DVH table gives no volume at any dose",
                    accepted="the structure's DVH with its volume",
                    line=block.column_line,
                    code="dvh.table",
                )
            ]
        )
    low = doses[last]
    high = doses[last + 1] if last + 1 < len(doses) else None
    step = (high if high is not None else doses[last]) - doses[last - 1 if high is None else last]
    table_says = f"the table has volume up to {low:g} Gy" + (
        f" and none from {high:g} Gy" if high is not None else " (its last row)"
    )
    out: dict[str, float | None] = {}
    if max_line is not None:
        slack = abs(step) + max_line.resolution
        if max_line.gy < low - slack or (high is not None and max_line.gy > high + slack):
            hint = ""
            for factor, reading in ((100.0, "Gy written as cGy"), (0.01, "cGy written as Gy")):
                scaled = max_line.gy * factor
                if scaled >= low - slack * factor and (high is None or scaled <= high + slack * factor):
                    hint = f"; it looks like {reading}"
            raise InputError.of(
                [
                    Problem(
                        file,
                        (*where, max_line.key),
                        f"the '{max_line.key}' line gives {max_line.gy:g} Gy, but {table_says}{hint}",
                        accepted="a Max Dose line that agrees with the table, in the unit its header names "
                        "(export the structure again)",
                        line=max_line.line,
                        code="dvh.maxdose",
                    )
                ]
            )
        out["Dmax"] = max_line.gy
        how = f"Dmax from the '{max_line.key}' line, which agrees with the table"
        if max_line.reference is not None:
            how += f"; 100 % is {max_line.reference.source}"
    elif high is not None:
        out["Dmax"] = high
        how = f"Dmax {high:g} Gy: the first dose row with no volume left (an upper bound: no 'Max Dose' line)"
    else:
        out["Dmax"] = None
        how = "no Dmax"
        warnings.append(
            f"{file}: structure '{block.name}': no 'Max Dose' line and {table_says}: Dmax is at least "
            f"{low:g} Gy, not known; left out"
        )
    for metric, v in METRIC_VOLUMES_CC.items():
        value = None
        if volumes[0] < v:
            warnings.append(
                f"{file}: structure '{block.name}' is {volumes[0]:.3f} cm³, smaller than {v} cm³: "
                f"{metric} left out"
            )
        elif volumes[-1] >= v:
            bound = f" and {out['Dmax']:g} Gy (Dmax)" if out["Dmax"] is not None else ""
            warnings.append(
                f"{file}: structure '{block.name}': the table ends at {doses[-1]:g} Gy with "
                f"{volumes[-1]:.3f} cm³ still above it: {metric} lies between {doses[-1]:g} Gy{bound}, "
                "not known; left out (export the DVH to its end)"
            )
        else:
            for (d0, v0), (d1, v1) in pairwise(zip(doses, volumes, strict=True)):
                if v0 >= v > v1:
                    value = d0 + (d1 - d0) * (v0 - v) / (v0 - v1)
                    break
        dmax = out["Dmax"]
        if value is not None and dmax is not None and value > dmax:
            # The cross-check above bounds the excess by one row step plus the line's rounding.
            how += f"; {metric} interpolated at {value:.3f} Gy, above Dmax within one row's step: written as Dmax"
            value = dmax
        out[metric] = value
    return StructureMetrics(out, how, warnings)


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
    lines: dict[str, int] = {}
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
    ptv_high_dmin = None
    target_notes(
        options, [roi for tg, roi in choice.chosen.items() if tg in TARGET_NAMES], path, notes, warnings
    )
    for tg, roi in choice.chosen.items():
        if tg in TARGET_NAMES and not options.planned:
            continue
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
        try:
            reference, no_reference = _reference(block, export.plans, path)
            max_line = _header_dose(
                block.header, block.header_lines, "max dose", path, ("structure", roi), reference
            )
            line_name = "min dose" if tg in TARGET_NAMES else "max dose"
            if reference is None and f"{line_name} [%]" in block.header:
                warnings.append(
                    f"{path}: structure '{roi}': its '{line_name.title()} [%]' line cannot be converted to Gy "
                    f"({no_reference}); left out"
                )
            if tg in TARGET_NAMES:
                min_line = _header_dose(
                    block.header, block.header_lines, "min dose", path, ("structure", roi), reference
                )
                ptv_high_dmin, min_how = _minimum(doses, volumes, min_line, path, block, warnings)
                notes.append(f"{choice.describe(tg)}: ptv_high_dmin {min_how}.")
                continue
            got = _metrics(doses, volumes, max_line, path, block)
        except InputError as exc:
            problems += exc.problems
            continue
        warnings += got.warnings
        metrics = ordered_metrics(got.values)
        if not metrics:
            problems.append(
                Problem(
                    path,
                    ("structure", roi),
                    "the table gives none of Dmax, D0.03cc, D0.1cc, D1cc",
                    accepted="the structure's whole DVH, with its Max Dose line",
                    line=block.line,
                    code="dvh.table",
                )
            )
            continue
        structures[tg] = metrics
        notes.append(
            f"{choice.describe(tg)}: {how} table; D_v by linear interpolation between rows; {got.how}."
        )
    prescription = None
    plan_info = export.plans.get(chosen_plan, {})
    try:
        dose = _header_dose(plan_info, {}, "prescribed dose", path, ("plan", chosen_plan)) or _header_dose(
            plan_info, {}, "total dose", path, ("plan", chosen_plan)
        )
    except InputError as exc:
        problems += exc.problems
        dose = None
    if dose is not None and plan_info.get("kind") == "plan":
        prescription = dose.gy
    course = assemble_course(
        path,
        options,
        dose_gy=prescription,
        sources={"prescription": f"the export's 'Prescribed dose' of plan '{chosen_plan}'"},
        structures=structures,
        earlier=problems,
        ptv_high_dmin=ptv_high_dmin,
    )
    return ImportResult(course, notes, warnings)
