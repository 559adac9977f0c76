"""RT Dose + RT Structure Set (+ RT Plan, + treatment records) → one course of the case format."""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from reirrad.errors import InputError, Problem
from reirrad.importers.common import (
    CourseOptions,
    ImportRefused,
    ImportResult,
    assemble_course,
    check_regular_file,
    listing,
    ordered_metrics,
    plural,
    require,
    target_notes,
)
from reirrad.importers.structure_map import (
    TARGET_NAMES,
    RoiChoice,
    StructureMap,
    load_structure_map,
    resolve_rois,
)

__all__ = ["import_dicom"]

RT_DOSE = "1.2.840.10008.5.1.4.1.1.481.2"
RT_STRUCT = "1.2.840.10008.5.1.4.1.1.481.3"
RT_PLANS = {"1.2.840.10008.5.1.4.1.1.481.5": "RT Plan", "1.2.840.10008.5.1.4.1.1.481.8": "RT Ion Plan"}
RT_BEAMS_RECORDS = {
    "1.2.840.10008.5.1.4.1.1.481.4": "RT Beams Treatment Record",
    "1.2.840.10008.5.1.4.1.1.481.9": "RT Ion Beams Treatment Record",
}
RT_SUMMARY_RECORD = "1.2.840.10008.5.1.4.1.1.481.7"
_NAMES = {
    RT_DOSE: "RT Dose",
    RT_STRUCT: "RT Structure Set",
    **RT_PLANS,
    **RT_BEAMS_RECORDS,
    RT_SUMMARY_RECORD: "RT Treatment Summary Record",
}
DEFAULT_RESOLUTION_MM = 0.5
"""Sampling resolution when --resolution is not given (docs/importing.md states the tolerance at it)."""
COARSEST_RESOLUTION_MM = 2.0
"""The coarsest resolution used without being asked for; a structure needing more is refused."""
COVERAGE_TOLERANCE_MM = 0.05
"""A structure may reach this far past the dose grid's edge (rounding of coordinates in the files): the edge
voxel's dose holds there, as it does within the edge half-voxel."""
_AXIAL = {(1, 0, 0, 0, 1, 0), (-1, 0, 0, 0, 1, 0), (1, 0, 0, 0, -1, 0), (-1, 0, 0, 0, -1, 0)}


@dataclass
class _Context:
    """Problems and warnings gathered across all files, so the user sees every problem at once."""

    problems: list[Problem]
    warnings: list[str]

    def bad(
        self, file: str, path: tuple[str | int, ...], message: str, accepted: str = "", code: str = "dicom"
    ) -> None:
        self.problems.append(Problem(file, path, message, accepted, code=code))


def _read(path: str, expected: Mapping[str, str], flag: str, ctx: _Context) -> Any:
    """Read one DICOM file and check its SOP class."""
    pydicom = require("pydicom", "dicom")
    from pydicom.errors import InvalidDicomError

    check_regular_file(path)
    try:
        try:
            ds = pydicom.dcmread(path)
        except InvalidDicomError:
            ds = pydicom.dcmread(path, force=True)
    except Exception as exc:  # pydicom raises many types for damaged files
        raise InputError.of(
            [
                Problem(
                    path,
                    (),
                    f"not a readable DICOM file ({type(exc).__name__}: {exc})",
                    accepted=f"a DICOM {' or '.join(expected.values())} file",
                    code="dicom.read",
                )
            ]
        ) from None
    sop = str(ds.get("SOPClassUID", ""))
    if sop not in expected:
        what = _NAMES.get(sop, f"SOP class {sop}" if sop else "not a DICOM object (no SOP Class UID)")
        raise InputError.of(
            [
                Problem(
                    path,
                    (),
                    f"given as {flag} but is {what}",
                    accepted=f"a DICOM {' or '.join(expected.values())} file",
                    code="dicom.class",
                )
            ]
        )
    return ds


def _numbers(
    ds: Any,
    keyword: str,
    file: str,
    path: tuple[str | int, ...],
    ctx: _Context,
    *,
    count: int | None = None,
    integer: bool = False,
    required: bool = True,
) -> list[float] | None:
    """A numeric attribute as finite floats, or None with a problem naming file, path and what is wrong.

    pydicom converts decimal and integer strings when an attribute is first read, so text where DICOM wants a
    number surfaces here as a ValueError; the value itself is not quoted.
    """
    where = (*path, keyword)
    try:
        raw = ds.get(keyword)
        items = [] if raw is None or raw == "" else list(raw) if _multi(raw) else [raw]
        values = [float(v) for v in items]
    except (ValueError, TypeError, OverflowError):
        ctx.bad(file, where, "holds text where DICOM wants numbers", "decimal numbers", "dicom.value")
        return None
    if not values:
        if required:
            ctx.bad(file, where, "missing", "the attribute, as the DICOM standard requires it", "dicom.value")
        return None
    if not all(math.isfinite(v) for v in values):
        ctx.bad(file, where, "holds a value that is not a finite number", "finite numbers", "dicom.value")
        return None
    if count is not None and len(values) != count:
        ctx.bad(
            file,
            where,
            f"{plural(len(values), 'value')} where {count} are expected",
            f"{count} numbers",
            "dicom.value",
        )
        return None
    if integer and any(v != int(v) for v in values):
        ctx.bad(file, where, "is not a whole number", "an integer", "dicom.value")
        return None
    return values


def _multi(value: Any) -> bool:
    from pydicom.multival import MultiValue

    return isinstance(value, list | tuple | MultiValue)


def _integer(
    ds: Any, keyword: str, file: str, path: tuple[str | int, ...], ctx: _Context, **kw: Any
) -> int | None:
    values = _numbers(ds, keyword, file, path, ctx, count=1, integer=True, **kw)
    return None if values is None else int(values[0])


def _dose_grid(ds: Any, file: str, ctx: _Context, fractions: int | None) -> tuple[Any, str, int | None]:
    """The dose grid in Gy (course total), what was done to it, and the fractions it was multiplied by."""
    import numpy as np

    from reirrad.importers.dvhcalc import DoseGrid

    before = len(ctx.problems)
    units = str(ds.get("DoseUnits", "")).upper()
    if units == "RELATIVE":
        ctx.bad(
            file,
            ("DoseUnits",),
            "relative dose (DoseUnits RELATIVE) cannot give doses in Gy",
            "DoseUnits GY: export the absolute dose from the TPS",
            "dicom.units",
        )
    elif units != "GY":
        ctx.bad(file, ("DoseUnits",), f"DoseUnits '{units}' is not supported", "GY", "dicom.units")
    dose_type = str(ds.get("DoseType", "")).upper()
    if dose_type not in ("PHYSICAL", "EFFECTIVE"):
        ctx.bad(
            file,
            ("DoseType",),
            f"DoseType '{dose_type}' is not a dose distribution",
            "PHYSICAL (or EFFECTIVE, RBE-weighted)",
            "dicom.dosetype",
        )
    elif dose_type == "EFFECTIVE":
        ctx.warnings.append(f"{file}: DoseType EFFECTIVE: doses are RBE-weighted, written as Gy")
    summation = str(ds.get("DoseSummationType", "")).upper()
    if summation not in ("PLAN", "MULTI_PLAN", "FRACTION"):
        ctx.bad(
            file,
            ("DoseSummationType",),
            f"DoseSummationType '{summation}' is not the dose of a whole course",
            "PLAN, MULTI_PLAN (plan sum), or FRACTION (multiplied by the number of fractions)",
            "dicom.summation",
        )
    elif summation == "FRACTION" and fractions is None:
        ctx.bad(
            file,
            ("DoseSummationType",),
            "the dose is of one fraction and the number of fractions is unknown",
            "an --rtplan with NumberOfFractionsPlanned, or --fractions N",
            "dicom.summation",
        )
    scale = _numbers(ds, "DoseGridScaling", file, (), ctx, count=1)
    if scale is not None and not scale[0] > 0:
        ctx.bad(file, ("DoseGridScaling",), "not positive", "DoseGridScaling > 0", "dicom.scaling")
    iop = _numbers(ds, "ImageOrientationPatient", file, (), ctx, count=6)
    orientation = tuple(round(v) if abs(abs(v) - round(abs(v))) < 1e-4 else v for v in iop or [])
    if iop is not None and orientation not in _AXIAL:
        ctx.bad(
            file,
            ("ImageOrientationPatient",),
            f"orientation {list(orientation)} is not an axial grid",
            "rows along ±x and columns along ±y ([1,0,0,0,1,0] and its flips)",
            "dicom.orientation",
        )
    frames = _integer(ds, "NumberOfFrames", file, (), ctx, required=False) or 1
    rows = _integer(ds, "Rows", file, (), ctx)
    columns = _integer(ds, "Columns", file, (), ctx)
    ipp = _numbers(ds, "ImagePositionPatient", file, (), ctx, count=3)
    spacing = _numbers(ds, "PixelSpacing", file, (), ctx, count=2)
    offsets = _numbers(ds, "GridFrameOffsetVector", file, (), ctx)
    if offsets is not None and (frames < 2 or len(offsets) != frames):
        ctx.bad(
            file,
            ("GridFrameOffsetVector",),
            f"{plural(frames, 'dose plane')} with {plural(len(offsets), 'offset')}: not a 3-D dose grid",
            "at least two planes, one offset each",
            "dicom.grid",
        )
    if spacing is not None and not all(v > 0 for v in spacing):
        ctx.bad(file, ("PixelSpacing",), "not positive", "spacings > 0 mm", "dicom.grid")
    if rows is not None and columns is not None and (rows < 2 or columns < 2):
        ctx.bad(
            file,
            ("Rows",),
            f"a grid of {rows} × {columns} voxels",
            "at least 2 × 2 voxels per plane",
            "dicom.grid",
        )
    if (
        len(ctx.problems) > before
        or scale is None
        or ipp is None
        or spacing is None
        or offsets is None
        or rows is None
        or columns is None
    ):
        return None, "", None
    try:
        pixels = np.asarray(ds.pixel_array, dtype=float)
    except Exception as exc:  # pydicom and its pixel handlers raise many types for damaged pixel data
        reason = str(exc).split(" - ")[0].strip() or type(exc).__name__
        ctx.bad(
            file,
            ("PixelData",),
            f"the dose values cannot be read: {reason}",
            "complete pixel data of Rows × Columns × NumberOfFrames values",
            "dicom.pixels",
        )
        return None, "", None
    if pixels.size != frames * rows * columns:
        ctx.bad(
            file,
            ("PixelData",),
            f"{pixels.size} dose values for a grid of {frames} × {rows} × {columns}",
            "one value per voxel",
            "dicom.pixels",
        )
        return None, "", None
    values = pixels.reshape(frames, rows, columns) * scale[0]
    row_step, col_step = spacing
    z0 = 0.0 if offsets[0] == ipp[2] and offsets[0] != 0 else ipp[2]
    x = ipp[0] + orientation[0] * col_step * np.arange(columns)
    y = ipp[1] + orientation[4] * row_step * np.arange(rows)
    z = z0 + np.asarray(offsets)
    axes: dict[str, Any] = {}
    for axis, coords, name in ((2, x, "x"), (1, y, "y"), (0, z, "z")):
        ascending = coords
        if coords[1] < coords[0]:
            values = np.flip(values, axis=axis)
            ascending = coords[::-1].copy()
        if not np.all(np.diff(ascending) > 0):
            ctx.bad(
                file,
                ("GridFrameOffsetVector" if name == "z" else "PixelSpacing",),
                f"the dose grid's {name} coordinates are not strictly monotonic",
                "a regular dose grid",
                "dicom.grid",
            )
            return None, "", None
        axes[name] = ascending
    how = f"RTDOSE DoseSummationType {summation}"
    used = None
    if summation == "FRACTION" and fractions is not None:
        values = values * fractions
        used = fractions
        how += f": the dose of one fraction, multiplied by {fractions} fractions"
    return DoseGrid(axes["x"], axes["y"], axes["z"], values), how, used


Contours = list[tuple[tuple[str | int, ...], Any]]
"""Contour items of one ROI, each with its path in the structure set (for messages)."""


def _structure_set(
    ds: Any, file: str, ctx: _Context
) -> tuple[dict[str, int], dict[int, str], dict[int, Contours], str]:
    """ROI name → number, number → referenced frame of reference, number → contour items; the set's FoR."""
    names: dict[str, int] = {}
    frames: dict[int, str] = {}
    for i, item in enumerate(ds.get("StructureSetROISequence", [])):
        number = _integer(item, "ROINumber", file, ("StructureSetROISequence", i), ctx)
        if number is None:
            continue
        names.setdefault(str(item.get("ROIName", "")).strip(), number)
        frames[number] = str(item.get("ReferencedFrameOfReferenceUID", ""))
    contours: dict[int, Contours] = {}
    for i, item in enumerate(ds.get("ROIContourSequence", [])):
        number = _integer(item, "ReferencedROINumber", file, ("ROIContourSequence", i), ctx)
        if number is None:
            continue
        contours[number] = [
            (("ROIContourSequence", i, "ContourSequence", j), c)
            for j, c in enumerate(item.get("ContourSequence", []))
        ]
    refs = ds.get("ReferencedFrameOfReferenceSequence", [])
    set_for = str(refs[0].get("FrameOfReferenceUID", "")) if refs else ""
    return names, frames, contours, set_for


def _roi_names_in_order(ds: Any) -> list[str]:
    return [str(item.get("ROIName", "")).strip() for item in ds.get("StructureSetROISequence", [])]


def _planes(items: Contours, file: str, ctx: _Context) -> list[tuple[float, list[Any]]]:
    """Closed contours grouped by plane (z to 0.01 mm), each plane at the mean z its contours give."""
    import numpy as np

    by_z: dict[float, list[Any]] = {}
    exact: dict[float, list[float]] = {}
    for path, item in items:
        if str(item.get("ContourGeometricType", "")).upper() != "CLOSED_PLANAR":
            continue
        numbers = _numbers(item, "ContourData", file, path, ctx)
        if numbers is None:
            continue
        if len(numbers) % 3:
            ctx.bad(
                file,
                (*path, "ContourData"),
                f"{plural(len(numbers), 'number')}: not (x, y, z) triples",
                "x, y, z of each contour point",
                "dicom.contours",
            )
            continue
        data = np.asarray(numbers).reshape(-1, 3)
        if len(data) < 3:
            continue
        key = round(float(data[0, 2]), 2)
        by_z.setdefault(key, []).append(data[:, :2])
        exact.setdefault(key, []).append(float(data[0, 2]))
    return [(float(np.mean(exact[key])), by_z[key]) for key in sorted(by_z)]


def _decimals(excess: float) -> int:
    """Enough decimals to show a coverage shortfall of this size (0.0007 mm needs 4)."""
    if excess <= 0:
        return 1
    return min(4, max(1, 1 - math.floor(math.log10(float(f"{excess:.2g}")))))


def _coverage_message(roi: str, tg: str, lo: Any, hi: Any, extent: list[tuple[float, float]]) -> str:
    """Where the ROI's slab model leaves the dose grid, axis by axis, with numbers precise enough to differ."""
    parts = []
    for k, axis in enumerate("xyz"):
        g_lo, g_hi = extent[k]
        for value, edge, side in ((float(lo[k]), g_lo, "below"), (float(hi[k]), g_hi, "above")):
            excess = edge - value if side == "below" else value - edge
            if excess > COVERAGE_TOLERANCE_MM:
                d = _decimals(excess)
                parts.append(
                    f"{axis} {value:.{d}f} mm, {excess:.{d}f} mm {side} the grid's edge at {edge:.{d}f} mm"
                )
    where = "; ".join(parts)
    return (
        f"the dose grid does not cover ROI '{roi}' ({tg}): its contours, each standing for a slab as thick as "
        f"the plane spacing, reach {where} (a dose grid covers half a voxel beyond its outer voxel centres)"
    )


def _plan(ds: Any, file: str, ctx: _Context) -> tuple[float | None, int | None, list[float]]:
    """Total target prescription (Gy) and planned fractions; all distinct target doses."""
    groups = list(ds.get("FractionGroupSequence", []))
    fractions = None
    if len(groups) > 1:
        ctx.bad(
            file,
            ("FractionGroupSequence",),
            f"{len(groups)} fraction groups: a course has one fractionation",
            "a plan with one fraction group (import each plan separately)",
            "dicom.plan",
        )
    elif groups:
        fractions = _integer(
            groups[0], "NumberOfFractionsPlanned", file, ("FractionGroupSequence", 0), ctx, required=False
        )
    found: set[float] = set()
    for i, item in enumerate(ds.get("DoseReferenceSequence", [])):
        if str(item.get("DoseReferenceType", "")).upper() != "TARGET":
            continue
        dose = _numbers(
            item, "TargetPrescriptionDose", file, ("DoseReferenceSequence", i), ctx, count=1, required=False
        )
        if dose is not None:
            found.add(round(dose[0], 4))
    targets = sorted(found)
    return (targets[0] if len(targets) == 1 else None), fractions, targets


def _date(value: Any) -> str | None:
    text = str(value or "").strip()
    if len(text) != 8 or not text.isdigit():
        return None
    try:
        return date(int(text[:4]), int(text[4:6]), int(text[6:])).isoformat()
    except ValueError:
        return None


def _records(
    paths: Sequence[str], plan_uid: str | None, ctx: _Context
) -> tuple[str | None, str | None, int | None]:
    """First and last treatment dates and the fractions delivered, from treatment records."""
    dates: list[str] = []
    delivered: list[int] = []
    accepted = {**RT_BEAMS_RECORDS, RT_SUMMARY_RECORD: _NAMES[RT_SUMMARY_RECORD]}
    for path in paths:
        ds = _read(path, accepted, "--record", ctx)
        refs = ds.get("ReferencedRTPlanSequence", [])
        ref_uid = str(refs[0].get("ReferencedSOPInstanceUID", "")) if refs else ""
        if plan_uid and ref_uid and ref_uid != plan_uid:
            ctx.bad(
                path,
                ("ReferencedRTPlanSequence",),
                "the record belongs to another plan than --rtplan",
                "the treatment record of the same RT Plan",
                "dicom.record",
            )
        if str(ds.SOPClassUID) == RT_SUMMARY_RECORD:
            found = [
                d
                for d in (_date(ds.get("FirstTreatmentDate")), _date(ds.get("MostRecentTreatmentDate")))
                if d
            ]
            for i, group in enumerate(ds.get("FractionGroupSummarySequence", [])):
                n = _integer(
                    group,
                    "NumberOfFractionsDelivered",
                    path,
                    ("FractionGroupSummarySequence", i),
                    ctx,
                    required=False,
                )
                if n is not None:
                    delivered.append(n)
        else:
            found = [d for d in [_date(ds.get("TreatmentDate"))] if d]
            for i, beam in enumerate(ds.get("TreatmentSessionBeamSequence", [])):
                n = _integer(
                    beam,
                    "CurrentFractionNumber",
                    path,
                    ("TreatmentSessionBeamSequence", i),
                    ctx,
                    required=False,
                )
                if n is not None:
                    delivered.append(n)
        if not found:
            ctx.bad(
                path,
                ("TreatmentDate",),
                "the record gives no treatment date",
                "TreatmentDate (beams record) or First/MostRecentTreatmentDate (summary record), YYYYMMDD",
                "dicom.record",
            )
        dates += found
    if not dates:
        return None, None, None
    return min(dates), max(dates), (max(delivered) if delivered else None)


def _sample_roi(
    roi: str,
    tg: str,
    planes: list[tuple[float, list[Any]]],
    grid: Any,
    resolution_mm: float | None,
    rtdose: str,
    rtstruct: str,
    ctx: _Context,
) -> tuple[dict[str, float | None], Any] | None:
    """Dmax and D_v of one ROI, or None with a problem: not covered by the grid (checked on the contours'
    bounding box before sampling), or too large to sample at the asked resolution (checked before allocating).

    A resolution given by the user is used as given or refused; without one, a structure too large for the
    default is sampled at the finest resolution within the limits, with a warning.
    """
    import numpy as np

    from reirrad.importers.dvhcalc import (
        SamplingTooLarge,
        finest_resolution,
        metrics_from_samples,
        plane_spacing,
        sample_structure,
    )

    t = plane_spacing([z for z, _ in planes])
    xy = np.concatenate([q for _, polygons in planes for q in polygons])
    lo = [float(xy[:, 0].min()), float(xy[:, 1].min()), planes[0][0] - t / 2]
    hi = [float(xy[:, 0].max()), float(xy[:, 1].max()), planes[-1][0] + t / 2]
    extent = grid.extent()
    if any(
        lo[k] < extent[k][0] - COVERAGE_TOLERANCE_MM or hi[k] > extent[k][1] + COVERAGE_TOLERANCE_MM
        for k in range(3)
    ):
        ctx.bad(
            rtdose,
            ("ROI", roi),
            _coverage_message(roi, tg, lo, hi, extent),
            "a dose grid computed over the whole structure (enlarge the calculation volume)",
            "dicom.coverage",
        )
        return None
    h = resolution_mm if resolution_mm is not None else DEFAULT_RESOLUTION_MM
    try:
        samples = sample_structure(planes, h)
    except SamplingTooLarge as exc:
        coarsest = max(h, COARSEST_RESOLUTION_MM)
        finest = finest_resolution(planes, h, coarsest)
        span = ", ".join(f"{a} {hi[k] - lo[k]:.0f} mm" for k, a in enumerate("xyz"))
        if resolution_mm is not None or finest is None:
            ctx.bad(
                rtstruct,
                ("ROI", roi),
                f"ROI '{roi}' ({tg}), spanning {span}, would need {exc} at {h:g} mm",
                f"--resolution {finest:g} or coarser"
                if finest is not None
                else f"a structure that can be sampled at {coarsest:g} mm (check its contours)",
                "dicom.sampling",
            )
            return None
        ctx.warnings.append(
            f"{rtstruct}: ROI '{roi}' ({tg}), spanning {span}, would need {exc} at {h:g} mm: sampled at "
            f"{finest:g} mm, the finest within the limits (the tolerance grows in proportion; see "
            "docs/importing.md)"
        )
        samples = sample_structure(planes, finest)
    inner, surface = grid.sample(samples.points), grid.sample(samples.surface)
    values = metrics_from_samples(inner, samples.volumes_cc, surface)
    values["Dmin"] = float(min(inner.min(), surface.min()))
    return values, samples


def import_dicom(
    rtdose: str,
    rtstruct: str,
    rtplan: str | None = None,
    records: Sequence[str] = (),
    options: CourseOptions | None = None,
    structure_map: StructureMap | None = None,
    explicit_rois: Mapping[str, str] | None = None,
    resolution_mm: float | None = None,
) -> ImportResult:
    """Compute a course from DICOM RT objects; every problem found is raised together as an InputError.

    pydicom's warnings about non-conforming values (raised when a value is first read) are counted and
    reported without their text, which may quote patient data.
    """
    ctx = _Context([], [])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        refusal: InputError | None = None
        try:
            result = _import_dicom(
                rtdose, rtstruct, rtplan, records, options, structure_map, explicit_rois, resolution_mm, ctx
            )
        except InputError as exc:
            refusal = exc
    if caught:
        ctx.warnings.append(
            f"pydicom reported {len(caught)} warning(s) about non-conforming values "
            "(not shown: they may quote patient data)"
        )
    if refusal is not None:
        raise ImportRefused.gathered(refusal.problems, ctx.warnings)
    return result


def _import_dicom(
    rtdose: str,
    rtstruct: str,
    rtplan: str | None = None,
    records: Sequence[str] = (),
    options: CourseOptions | None = None,
    structure_map: StructureMap | None = None,
    explicit_rois: Mapping[str, str] | None = None,
    resolution_mm: float | None = None,
    ctx: _Context | None = None,
) -> ImportResult:
    """The import itself; see import_dicom."""
    require("numpy", "dicom")
    options = options or CourseOptions()
    smap = structure_map or load_structure_map()
    ctx = ctx or _Context([], [])
    notes: list[str] = []
    unreadable: list[Problem] = []
    for p in [rtdose, rtstruct, *([rtplan] if rtplan else []), *records]:
        try:
            check_regular_file(p)
        except InputError as exc:
            unreadable += exc.problems
    if unreadable:
        raise InputError.of(unreadable)
    dose_ds = _read(rtdose, {RT_DOSE: "RT Dose"}, "--rtdose", ctx)
    struct_ds = _read(rtstruct, {RT_STRUCT: "RT Structure Set"}, "--rtstruct", ctx)
    plan_ds = _read(rtplan, RT_PLANS, "--rtplan", ctx) if rtplan else None
    dose_for = str(dose_ds.get("FrameOfReferenceUID", ""))

    prescription: float | None = None
    fractions: int | None = None
    targets: list[float] = []
    plan_uid = None
    if plan_ds is not None:
        plan_file = rtplan or ""
        prescription, fractions, targets = _plan(plan_ds, plan_file, ctx)
        plan_uid = str(plan_ds.get("SOPInstanceUID", ""))
        listed = ", ".join(f"{t:g}" for t in targets)
        if len(targets) > 1 and options.prescription is None:
            ctx.bad(
                plan_file,
                ("DoseReferenceSequence",),
                f"the plan prescribes {len(targets)} different target doses ({listed} Gy)",
                "--prescription GY to say which is the course's",
                "dicom.prescription",
            )
        elif (
            len(targets) > 1
            and options.prescription is not None
            and not any(abs(t - options.prescription) <= 0.005 for t in targets)
        ):
            ctx.bad(
                plan_file,
                ("DoseReferenceSequence",),
                f"--prescription {options.prescription:g} is none of the plan's target doses ({listed} Gy)",
                "--prescription with one of the plan's target doses",
                "dicom.prescription",
            )
        refs = dose_ds.get("ReferencedRTPlanSequence", [])
        ref_uid = str(refs[0].get("ReferencedSOPInstanceUID", "")) if refs else ""
        if ref_uid and plan_uid and ref_uid != plan_uid:
            ctx.bad(
                rtdose,
                ("ReferencedRTPlanSequence",),
                "the dose was computed for another plan than --rtplan",
                "the RT Dose and RT Plan of the same plan",
                "dicom.plan",
            )
        plan_for = str(plan_ds.get("FrameOfReferenceUID", ""))
        if plan_for and dose_for and plan_for != dose_for:
            ctx.bad(
                plan_file,
                ("FrameOfReferenceUID",),
                "the plan's frame of reference differs from the dose's",
                "files of one plan, sharing a FrameOfReferenceUID",
                "dicom.frame",
            )
    fractions_for_dose = fractions if fractions is not None else options.fractions
    grid, how, _ = _dose_grid(dose_ds, rtdose, ctx, fractions_for_dose)
    if how:
        notes.append(how + ".")

    start = end = None
    delivered = None
    if records:
        start, end, delivered = _records(records, plan_uid, ctx)
        if start:
            notes.append(
                f"Dates from {plural(len(records), 'treatment record')}: first and last treatment date."
            )

    names, roi_frames, contours, set_for = _structure_set(struct_ds, rtstruct, ctx)
    try:
        choice = resolve_rois(_roi_names_in_order(struct_ds), smap, explicit_rois or {}, rtstruct)
    except InputError as exc:
        ctx.problems += exc.problems
        choice = RoiChoice({}, [])
    if choice.unused:
        ctx.warnings.append(
            f"{rtstruct}: {plural(len(choice.unused), 'ROI')} not used: {listing(choice.unused)}"
        )

    structures: dict[str, dict[str, float]] = {}
    resolutions = set()
    ptv_high_dmin = None
    target_rois = [roi for tg, roi in choice.chosen.items() if tg in TARGET_NAMES]
    target_notes(options, target_rois, rtstruct, notes, ctx.warnings)
    for tg, roi in choice.chosen.items():
        if tg in TARGET_NAMES and not options.planned:
            continue
        if roi not in names:
            continue  # its ROINumber was refused above
        number = names[roi]
        roi_for = roi_frames.get(number) or set_for
        if dose_for and roi_for and roi_for != dose_for:
            ctx.bad(
                rtstruct,
                ("ROI", roi),
                "the structure set's frame of reference differs from the dose's "
                "(FrameOfReferenceUID mismatch)",
                "RT Structure Set and RT Dose on the same planning CT",
                "dicom.frame",
            )
            continue
        before = len(ctx.problems)
        planes = _planes(contours.get(number, []), rtstruct, ctx)
        if len(ctx.problems) > before:
            continue
        if len(planes) < 2:
            ctx.bad(
                rtstruct,
                ("ROI", roi),
                f"ROI '{roi}' ({tg}) has closed contours on {plural(len(planes), 'plane')}",
                "an ROI contoured on at least two planes",
                "dicom.contours",
            )
            continue
        if grid is None:
            continue
        sampled = _sample_roi(roi, tg, planes, grid, resolution_mm, rtdose, rtstruct, ctx)
        if sampled is None:
            continue
        values, samples = sampled
        resolutions.add(round(samples.resolution_mm, 3))
        if tg in TARGET_NAMES:
            ptv_high_dmin = values["Dmin"]
            notes.append(
                f"{choice.describe(tg)}: ptv_high_dmin is its minimum dose, the lowest of the sampled "
                "interior and surface point doses."
            )
            continue
        for metric, v in (("D0.03cc", 0.03), ("D0.1cc", 0.1), ("D1cc", 1.0)):
            if values[metric] is None:
                ctx.warnings.append(
                    f"{rtstruct}: ROI '{roi}' is {samples.volume_cc:.3f} cm³, smaller than {v} cm³: "
                    f"{metric} left out"
                )
        structures[tg] = ordered_metrics(values)
        notes.append(f"{choice.describe(tg)}.")
    if structures:
        notes.append(
            "Near-max doses by jittered supersampling of the contours ("
            + ", ".join(f"{r:g}" for r in sorted(resolutions))
            + " mm cells) with trilinear dose interpolation; D_v interpolated on the sorted point doses, "
            "no histogram bins (docs/importing.md)."
        )
    plan_fx = fractions
    if delivered is not None and plan_fx is not None and delivered < plan_fx:
        ctx.warnings.append(
            f"the treatment records show {delivered} of {plan_fx} planned fractions delivered; the "
            "doses are those of the full plan: if the course stopped early, correct them"
        )
    record = (
        records[0] if len(records) == 1 else f"{records[0]} (and the other records)" if records else rtdose
    )
    course = assemble_course(
        rtdose,
        options,
        start=start,
        end=end,
        dose_gy=prescription,
        fractions=fractions,
        sources={
            "start": "the treatment records",
            "end": "the treatment records",
            "prescription": "the RT Plan",
            "fractions": "the RT Plan",
        },
        files={
            "start": record,
            "end": record,
            "prescription": rtplan or rtdose,
            "fractions": rtplan or rtdose,
        },
        structures=structures,
        earlier=ctx.problems,
        ptv_high_dmin=ptv_high_dmin,
    )
    if plan_ds is not None and prescription is not None:
        notes.append("Prescription: the RT Plan's target prescription dose and planned fractions.")
    if targets and len(targets) > 1:
        notes.append(
            f"The RT Plan prescribes several target doses; --prescription {options.prescription:g} chosen."
        )
    return ImportResult(course, notes, ctx.warnings)
