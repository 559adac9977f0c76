"""Near-maximum doses of a contoured structure in a dose grid, without histogram bins.

Method (stated in docs/importing.md):

* Structure model: each contour plane stands for a slab of the ROI's plane spacing ``t`` centred on it
  (the usual TPS model); polygons on one plane combine by the even-odd rule, so holes work.
* Sampling (stratified, jittered): each slab's bounding box is cut into cells ``h`` × ``h`` ×
  ``t/ceil(t/h)`` (``h`` = 0.5 mm by default, coarsened only when a structure would need more than
  ``MAX_SAMPLES`` cells) and one point is drawn uniformly inside each cell (numpy PCG64, fixed seed: the
  result is reproducible). A regular lattice would cut a dose gradient along x, y or z into steps of
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

__all__ = ["MAX_SAMPLES", "DoseGrid", "StructureSamples", "metrics_from_samples", "sample_structure"]

FloatArray = npt.NDArray[np.float64]
MAX_SAMPLES = 4_000_000
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
    """Even-odd (crossing number) test of many points against one closed polygon."""
    inside = np.zeros(px.shape, dtype=bool)
    xs, ys = polygon[:, 0], polygon[:, 1]
    for xa, ya, xb, yb in zip(xs, ys, np.roll(xs, -1), np.roll(ys, -1), strict=True):
        if ya == yb:
            continue
        crosses = (ya > py) != (yb > py)
        x_at = xa + (py - ya) * (xb - xa) / (yb - ya)
        inside ^= crosses & (px < x_at)
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


def sample_structure(
    planes: Sequence[tuple[float, Sequence[FloatArray]]], resolution_mm: float = 0.5
) -> StructureSamples:
    """Sample a structure given as (z, [polygon (n, 2) in mm, ...]) per plane; at least two planes."""
    t = plane_spacing([z for z, _ in planes])
    approx = sum(abs(_area(p)) for _, polys in planes for p in polys) * t
    h = max(resolution_mm, (approx / MAX_SAMPLES) ** (1 / 3)) if approx > 0 else resolution_mm
    n_sub = max(1, math.ceil(t / h - 1e-9))
    sub = t * ((np.arange(n_sub) + 0.5) / n_sub - 0.5)
    cell = np.array([h, h, t / n_sub])
    rng = np.random.default_rng(SEED)
    points, volumes, surface = [], [], []
    for z, polygons in planes:
        xy = np.concatenate(polygons)
        lo = np.array([xy[:, 0].min(), xy[:, 1].min(), z - t / 2])
        counts = [
            max(1, math.ceil((xy[:, 0].max() - lo[0]) / h)),
            max(1, math.ceil((xy[:, 1].max() - lo[1]) / h)),
            n_sub,
        ]
        corners = np.stack(np.meshgrid(*[np.arange(c) for c in counts], indexing="ij"), axis=-1).reshape(
            -1, 3
        )
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
