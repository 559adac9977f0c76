"""Build small DICOM RT objects in code (no binaries committed): doses, structures, plans, records."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence as DicomSequence
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

FOR_UID = "1.2.826.0.1.3680043.8.498.1"
OTHER_FOR_UID = "1.2.826.0.1.3680043.8.498.2"
PLAN_UID = "1.2.826.0.1.3680043.8.498.3"
PATIENT_NAME = "Doe^Jane^Phantom"
PATIENT_ID = "PHANTOM-MRN-4711"
SOP = {
    "dose": "1.2.840.10008.5.1.4.1.1.481.2",
    "struct": "1.2.840.10008.5.1.4.1.1.481.3",
    "plan": "1.2.840.10008.5.1.4.1.1.481.5",
    "beams": "1.2.840.10008.5.1.4.1.1.481.4",
    "summary": "1.2.840.10008.5.1.4.1.1.481.7",
}
MODALITY = {
    "dose": "RTDOSE",
    "struct": "RTSTRUCT",
    "plan": "RTPLAN",
    "beams": "RTRECORD",
    "summary": "RTRECORD",
}

DoseFunction = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]


def _base(kind: str, sop_uid: str | None = None) -> Dataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SOP[kind]
    meta.MediaStorageSOPInstanceUID = sop_uid or generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = SOP[kind]
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality = MODALITY[kind]
    ds.PatientName = PATIENT_NAME
    ds.PatientID = PATIENT_ID
    ds.StudyInstanceUID = "1.2.826.0.1.3680043.8.498.10"
    ds.SeriesInstanceUID = generate_uid()
    return ds


def _save(ds: Dataset, path: Path) -> Path:
    ds.save_as(path, enforce_file_format=True)
    return path


def circle(radius: float, cx: float = 0.0, cy: float = 0.0, n: int = 360) -> np.ndarray:
    """A closed polygon of n vertices on a circle; vertex 0 at angle 0 (the +x extreme)."""
    a = 2 * math.pi * np.arange(n) / n
    return np.column_stack([cx + radius * np.cos(a), cy + radius * np.sin(a)])


def cylinder(
    radius: float, z_planes: Sequence[float], cx: float = 0.0, cy: float = 0.0
) -> list[tuple[float, np.ndarray]]:
    return [(z, circle(radius, cx, cy)) for z in z_planes]


def write_rtdose(
    path: Path,
    dose: DoseFunction,
    *,
    x: np.ndarray,
    y: np.ndarray,
    z: np.ndarray,
    units: str = "GY",
    summation: str = "PLAN",
    scaling: float = 1e-5,
    for_uid: str = FOR_UID,
    plan_uid: str | None = PLAN_UID,
    dose_type: str = "PHYSICAL",
) -> Path:
    """An RT Dose whose voxel centres are x, y (ascending) and z; dose(x, y, z) in Gy at each centre."""
    zz, yy, xx = np.meshgrid(z, y, x, indexing="ij")
    values = dose(xx, yy, zz)
    ds = _base("dose")
    ds.FrameOfReferenceUID = for_uid
    ds.DoseUnits = units
    ds.DoseType = dose_type
    ds.DoseSummationType = summation
    ds.DoseGridScaling = f"{scaling:.6e}"
    ds.ImagePositionPatient = [float(x[0]), float(y[0]), float(z[0])]
    ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    ds.PixelSpacing = [float(y[1] - y[0]), float(x[1] - x[0])]
    ds.GridFrameOffsetVector = [float(v - z[0]) for v in z]
    ds.NumberOfFrames = len(z)
    ds.Rows, ds.Columns = len(y), len(x)
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = ds.BitsStored = 32
    ds.HighBit = 31
    ds.PixelRepresentation = 0
    ds.FrameIncrementPointer = 0x3004000C
    ds.PixelData = np.round(values / scaling).astype("<u4").tobytes()
    if plan_uid:
        ref = Dataset()
        ref.ReferencedSOPClassUID = SOP["plan"]
        ref.ReferencedSOPInstanceUID = plan_uid
        ds.ReferencedRTPlanSequence = DicomSequence([ref])
    return _save(ds, path)


def write_rtstruct(
    path: Path,
    rois: dict[str, list[tuple[float, np.ndarray]]],
    *,
    for_uid: str = FOR_UID,
    digits: int = 6,
) -> Path:
    """An RT Structure Set with one CLOSED_PLANAR contour per (z, polygon) for each named ROI."""
    ds = _base("struct")
    ref_for = Dataset()
    ref_for.FrameOfReferenceUID = for_uid
    ds.ReferencedFrameOfReferenceSequence = DicomSequence([ref_for])
    ds.StructureSetLabel = "phantom"
    roi_items, contour_items = [], []
    for number, (name, contours) in enumerate(rois.items(), start=1):
        roi = Dataset()
        roi.ROINumber = number
        roi.ROIName = name
        roi.ReferencedFrameOfReferenceUID = for_uid
        roi.ROIGenerationAlgorithm = "MANUAL"
        roi_items.append(roi)
        rc = Dataset()
        rc.ReferencedROINumber = number
        items = []
        for z, polygon in contours:
            c = Dataset()
            c.ContourGeometricType = "CLOSED_PLANAR"
            c.NumberOfContourPoints = len(polygon)
            c.ContourData = [f"{v:.{digits}g}" for p in polygon for v in (p[0], p[1], z)]
            items.append(c)
        rc.ContourSequence = DicomSequence(items)
        contour_items.append(rc)
    ds.StructureSetROISequence = DicomSequence(roi_items)
    ds.ROIContourSequence = DicomSequence(contour_items)
    return _save(ds, path)


def write_rtplan(
    path: Path,
    *,
    fractions: int | None,
    target_doses: Sequence[float] = (),
    fraction_groups: int = 1,
    sop_uid: str = PLAN_UID,
    for_uid: str | None = FOR_UID,
) -> Path:
    """An RT Plan with fraction group(s) and TARGET dose references carrying TargetPrescriptionDose (Gy)."""
    ds = _base("plan", sop_uid)
    if for_uid:
        ds.FrameOfReferenceUID = for_uid
    ds.RTPlanLabel = "phantom"
    groups = []
    for g in range(fraction_groups):
        fg = Dataset()
        fg.FractionGroupNumber = g + 1
        if fractions is not None:
            fg.NumberOfFractionsPlanned = fractions
        fg.NumberOfBeams = 0
        fg.NumberOfBrachyApplicationSetups = 0
        groups.append(fg)
    ds.FractionGroupSequence = DicomSequence(groups)
    refs = []
    for i, dose in enumerate(target_doses, start=1):
        r = Dataset()
        r.DoseReferenceNumber = i
        r.DoseReferenceStructureType = "SITE"
        r.DoseReferenceType = "TARGET"
        r.TargetPrescriptionDose = f"{dose:g}"
        refs.append(r)
    oar = Dataset()
    oar.DoseReferenceNumber = len(refs) + 1
    oar.DoseReferenceStructureType = "SITE"
    oar.DoseReferenceType = "ORGAN_AT_RISK"
    oar.OrganAtRiskMaximumDose = "45"
    ds.DoseReferenceSequence = DicomSequence([*refs, oar])
    return _save(ds, path)


def _plan_ref(ds: Dataset, plan_uid: str) -> None:
    ref = Dataset()
    ref.ReferencedSOPClassUID = SOP["plan"]
    ref.ReferencedSOPInstanceUID = plan_uid
    ds.ReferencedRTPlanSequence = DicomSequence([ref])


def write_beams_record(
    path: Path, *, treatment_date: str | None, fraction: int, plan_uid: str = PLAN_UID
) -> Path:
    """An RT Beams Treatment Record of one session: TreatmentDate (YYYYMMDD) and CurrentFractionNumber."""
    ds = _base("beams")
    if treatment_date:
        ds.TreatmentDate = treatment_date
    beam = Dataset()
    beam.CurrentFractionNumber = fraction
    beam.ReferencedBeamNumber = 1
    ds.TreatmentSessionBeamSequence = DicomSequence([beam])
    _plan_ref(ds, plan_uid)
    return _save(ds, path)


def write_summary_record(
    path: Path, *, first: str, last: str, delivered: int, plan_uid: str = PLAN_UID
) -> Path:
    """An RT Treatment Summary Record: first and most recent treatment dates, fractions delivered."""
    ds = _base("summary")
    ds.FirstTreatmentDate = first
    ds.MostRecentTreatmentDate = last
    group = Dataset()
    group.ReferencedFractionGroupNumber = 1
    group.NumberOfFractionsPlanned = delivered
    group.NumberOfFractionsDelivered = delivered
    ds.FractionGroupSummarySequence = DicomSequence([group])
    _plan_ref(ds, plan_uid)
    return _save(ds, path)


def axis(lo: float, hi: float, step: float) -> np.ndarray:
    n = round((hi - lo) / step)
    return lo + step * np.arange(n + 1)
