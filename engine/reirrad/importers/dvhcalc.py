"""Near-maximum doses of a contoured structure in a dose grid, without histogram bins.

Method (stated in docs/importing.md):

* Structure model: each contour plane stands for a slab of the ROI's plane spacing ``t`` centred on it
  (the usual TPS model); polygons on one plane combine by the even-odd rule, so holes work.
* Sampling (stratified, jittered): each slab's bounding box is cut into cells ``h`` × ``h`` ×
  ``t/ceil(t/h)`` (``h`` as asked; the work is counted first and bounded by ``MAX_CELLS``,
  ``MAX_SURFACE_POINTS`` and ``MAX_EDGE_VISITS``) and one point is drawn uniformly inside each cell (numpy
  PCG64, fixed seed: the result is reproducible). A regular lattice would cut a dose gradient along x, y or z into steps of
  gradient × h; jittered points do not, and the thin slivers that hold the hottest 0.03 cm³ of a cord
  get their share of points. Points inside the contours are kept; each stands for its cell's volume.
* Dose at each point: trilinear interpolation in the dose grid; a dose voxel covers half a spacing on
  each side of its centre, points beyond that are "not covered" and refused.
* D_v: the point doses sorted from hottest, each placed at the midpoint of its share of cumulative
  volume; D_v is the linear interpolation of that curve at volume v. No 1 cGy (or any) bins are
  involved.
* Dmax: the largest dose among the interior points and points on the structure's surface (every contour,
  its edges sampled every ``h``, at ``ceil(t/h)`` levels through the slab and at the slab faces), so a
  maximum on the boundary is not missed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from reirrad.importers.common import METRIC_VOLUMES_CC

__all__ = [
    "MAX_CELLS",
    "MAX_EDGE_VISITS",
    "MAX_SURFACE_POINTS",
    "DoseGrid",
    "SamplingCost",
    "SamplingTooLarge",
    "StructureSamples",
    "finest_resolution",
    "metrics_from_samples",
    "sample_structure",
    "sampling_cost",
]

FloatArray = npt.NDArray[np.float64]
MAX_CELLS = 4_000_000
"""Sampling cells per structure (one jittered point each): 500 cm³ of bounding box at 0.5 mm; about 200 MB."""
MAX_SURFACE_POINTS = 2_000_000
"""Points on a structure's contour edges over all slab levels (the Dmax search)."""
MAX_EDGE_VISITS = 500_000
"""Contour edges visited one by one (per plane and chunk of cells): the even-odd test's and the surface's loop."""
CHUNK_CELLS = 1_000_000
"""Cells drawn and tested at a time within one plane: bounds the transient memory (~80 MB)."""
SEED = 20150105


@dataclass(frozen=True)
class DoseGrid:
    """Dose in Gy on a rectilinear grid; axes ascending, in patient millimetres; ``values[z, y, x]``."""

    x: FloatArray
    y: FloatArray
    z: FloatArray
    values: FloatArray

    def extent(self) -> list[tuple[float, float]]:
        """Per axis (x, y, z), the region the voxels cover: half a spacing beyond the outer centres."""
        out = []
        for a in (self.x, self.y, self.z):
            out.append((float(a[0] - (a[1] - a[0]) / 2), float(a[-1] + (a[-1] - a[-2]) / 2)))
        return out

    def outside(self, points: FloatArray, tolerance_mm: float = 1e-6) -> npt.NDArray[np.bool_]:
        """Which points lie beyond the grid's extent by more than the tolerance."""
        mask = np.zeros(len(points), dtype=bool)
        for k, (lo, hi) in enumerate(self.extent()):
            mask |= (points[:, k] < lo - tolerance_mm) | (points[:, k] > hi + tolerance_mm)
        return mask

    def sample(self, points: FloatArray) -> FloatArray:
        """Trilinear interpolation; within half a voxel beyond the outer centres the edge value holds."""
        idx, frac = [], []
        for k, a in enumerate((self.x, self.y, self.z)):
            p = points[:, k]
            i = np.clip(np.searchsorted(a, p, side="right") - 1, 0, len(a) - 2)
            t = np.clip((p - a[i]) / (a[i + 1] - a[i]), 0.0, 1.0)
            idx.append(i)
            frac.append(t)
        (ix, iy, iz), (tx, ty, tz) = idx, frac
        v = self.values
        out = np.zeros(len(points))
        for dz, wz in ((0, 1 - tz), (1, tz)):
            for dy, wy in ((0, 1 - ty), (1, ty)):
                for dx, wx in ((0, 1 - tx), (1, tx)):
                    out += wz * wy * wx * v[iz + dz, iy + dy, ix + dx]
        return out


@dataclass(frozen=True)
class StructureSamples:
    """Interior points with their volumes (cm³), surface points, and the sampling actually used."""

    points: FloatArray
    volumes_cc: FloatArray
    surface: FloatArray
    thickness_mm: float
    resolution_mm: float

    @property
    def volume_cc(self) -> float:
        return float(self.volumes_cc.sum())


def _inside(px: FloatArray, py: FloatArray, polygon: FloatArray) -> npt.NDArray[np.bool_]:
    """Even-odd (crossing number) test of many points against one closed polygon.

    An edge from ya to yb can only be crossed by points with min(ya, yb) ≤ y < max(ya, yb): with the points
    sorted by y once, each edge tests only that band (the same arithmetic as testing all, much less of it).
    """
    order = np.argsort(py, kind="stable")
    sx, sy = px[order], py[order]
    hit = np.zeros(px.shape, dtype=bool)
    xs, ys = polygon[:, 0], polygon[:, 1]
    for xa, ya, xb, yb in zip(xs, ys, np.roll(xs, -1), np.roll(ys, -1), strict=True):
        if ya == yb:
            continue
        a, b = np.searchsorted(sy, (min(ya, yb), max(ya, yb)), side="left")
        if a == b:
            continue
        x_at = xa + (sy[a:b] - ya) * (xb - xa) / (yb - ya)
        hit[a:b] ^= sx[a:b] < x_at
    inside = np.empty_like(hit)
    inside[order] = hit
    return inside


def _edge_points(polygon: FloatArray, step: float) -> FloatArray:
    """The polygon's vertices and points along its edges at most ``step`` apart."""
    a = polygon
    b = np.roll(polygon, -1, axis=0)
    out = []
    for pa, pb in zip(a, b, strict=True):
        n = max(1, math.ceil(float(np.hypot(*(pb - pa))) / step))
        t = np.arange(n)[:, None] / n
        out.append(pa + t * (pb - pa))
    return np.concatenate(out)


def plane_spacing(zs: Sequence[float]) -> float:
    """The ROI's slab thickness: the median spacing of its distinct contour planes."""
    return float(np.median(np.diff(np.sort(np.asarray(zs, dtype=float)))))


@dataclass(frozen=True)
class SamplingCost:
    """What sampling a structure at one resolution would take, counted before anything is allocated."""

    resolution_mm: float
    cells: int
    """Jittered cells over the slabs' bounding boxes (memory and time of the point-in-polygon tests)."""
    surface_points: int
    """Points on the contours' edges at every sub-level of the slabs (memory of the Dmax search)."""
    edge_visits: int
    """Contour edges visited one at a time: per chunk of cells of their plane, and once for the surface."""

    def over_limits(self) -> list[str]:
        """The limits this sampling would exceed, as readable phrases (empty when within them)."""
        out = []
        if self.cells > MAX_CELLS:
            out.append(f"{self.cells / 1e6:.3g} million sample cells (limit {MAX_CELLS / 1e6:g} million)")
        if self.surface_points > MAX_SURFACE_POINTS:
            out.append(
                f"{self.surface_points / 1e6:.3g} million surface points (limit {MAX_SURFACE_POINTS / 1e6:g} million)"
            )
        if self.edge_visits > MAX_EDGE_VISITS:
            out.append(
                f"{self.edge_visits / 1e6:.3g} million contour edge visits (limit {MAX_EDGE_VISITS / 1e6:g} million)"
            )
        return out


def sampling_cost(planes: Sequence[tuple[float, Sequence[FloatArray]]], resolution_mm: float) -> SamplingCost:
    """The cost of ``sample_structure(planes, resolution_mm)``, from bounding boxes and perimeters only."""
    h = resolution_mm
    t = plane_spacing([z for z, _ in planes])
    n_sub = _sublevels(t, h)
    cells = surface = visits = 0
    for _, polygons in planes:
        xy = np.concatenate(polygons)
        span = xy.max(axis=0) - xy.min(axis=0)
        plane_cells = max(1, math.ceil(span[0] / h)) * max(1, math.ceil(span[1] / h)) * n_sub
        cells += plane_cells
        visits += sum(len(q) for q in polygons) * (math.ceil(plane_cells / CHUNK_CELLS) + 1)
        perimeter = sum(float(np.hypot(*np.diff(np.vstack([q, q[:1]]), axis=0).T).sum()) for q in polygons)
        surface += (math.ceil(perimeter / h) + sum(len(q) for q in polygons)) * (n_sub + 2)
    return SamplingCost(h, cells, surface, visits)


def finest_resolution(
    planes: Sequence[tuple[float, Sequence[FloatArray]]], requested_mm: float, coarsest_mm: float
) -> float | None:
    """The finest resolution ≥ ``requested_mm`` (to 0.01 mm) whose sampling stays within the limits, or None
    when even ``coarsest_mm`` would not."""
    if not sampling_cost(planes, requested_mm).over_limits():
        return requested_mm
    if sampling_cost(planes, coarsest_mm).over_limits():
        return None
    lo, hi = requested_mm, coarsest_mm
    while hi - lo > 0.005:
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if sampling_cost(planes, mid).over_limits() else (lo, mid)
    return math.ceil(hi * 100) / 100


class SamplingTooLarge(ValueError):
    """Sampling at the asked resolution would exceed the work limits; nothing was allocated."""

    def __init__(self, cost: SamplingCost) -> None:
        self.cost = cost
        super().__init__("; ".join(cost.over_limits()))


def _sublevels(t: float, h: float) -> int:
    return max(1, math.ceil(t / h - 1e-9))


def sample_structure(
    planes: Sequence[tuple[float, Sequence[FloatArray]]], resolution_mm: float = 0.5
) -> StructureSamples:
    """Sample a structure given as (z, [polygon (n, 2) in mm, ...]) per plane; at least two planes.

    The resolution is used as given; when the sampling would exceed the work limits (``sampling_cost``),
    SamplingTooLarge is raised before anything large is allocated.
    """
    h = resolution_mm
    cost = sampling_cost(planes, h)
    if cost.over_limits():
        raise SamplingTooLarge(cost)
    t = plane_spacing([z for z, _ in planes])
    n_sub = _sublevels(t, h)
    sub = t * ((np.arange(n_sub) + 0.5) / n_sub - 0.5)
    cell = np.array([h, h, t / n_sub])
    rng = np.random.default_rng(SEED)
    points, volumes, surface = [], [], []
    for z, polygons in planes:
        xy = np.concatenate(polygons)
        lo = np.array([xy[:, 0].min(), xy[:, 1].min(), z - t / 2])
        counts = (
            max(1, math.ceil((xy[:, 0].max() - lo[0]) / h)),
            max(1, math.ceil((xy[:, 1].max() - lo[1]) / h)),
            n_sub,
        )
        total = counts[0] * counts[1] * counts[2]
        for first in range(0, total, CHUNK_CELLS):
            flat = np.arange(first, min(total, first + CHUNK_CELLS))
            corners = np.column_stack(np.unravel_index(flat, counts))
            p = lo + (corners + rng.random(corners.shape)) * cell
            inside = np.zeros(len(p), dtype=bool)
            for polygon in polygons:
                inside ^= _inside(p[:, 0], p[:, 1], polygon)
            points.append(p[inside])
            volumes.append(np.full(int(inside.sum()), float(np.prod(cell)) / 1000.0))
        edge = np.concatenate([_edge_points(q, h) for q in polygons])
        for dz in np.concatenate([sub, [-t / 2, t / 2]]):
            surface.append(np.column_stack([edge, np.full(len(edge), z + dz)]))
    return StructureSamples(np.concatenate(points), np.concatenate(volumes), np.concatenate(surface), t, h)


def _area(polygon: FloatArray) -> float:
    x, y = polygon[:, 0], polygon[:, 1]
    return float(0.5 * (np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))


def metrics_from_samples(
    doses: FloatArray,
    volumes_cc: FloatArray,
    surface_doses: FloatArray | None = None,
) -> dict[str, float | None]:
    """Dmax and D_v (v in METRIC_VOLUMES_CC) from point doses; D_v of a structure smaller than v is None."""
    order = np.argsort(-doses, kind="stable")
    d = doses[order]
    cumulative = np.cumsum(volumes_cc[order])
    midpoints = cumulative - volumes_cc[order] / 2
    total = float(cumulative[-1])
    out: dict[str, float | None] = {}
    top = float(d[0])
    if surface_doses is not None and len(surface_doses):
        top = max(top, float(surface_doses.max()))
    out["Dmax"] = top
    for metric, v in METRIC_VOLUMES_CC.items():
        out[metric] = float(np.interp(v, midpoints, d)) if v <= total * (1 + 1e-9) else None
    return out
