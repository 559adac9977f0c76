"""Seeded synthetic re-irradiation cases, clearly labelled, for demos, benchmarks and differential tests.

Distributions loosely follow Lucido 2025 Table 2 (doi:10.1016/j.prro.2025.08.006): time to re-SBRT median about
12 months (IQR 4-21); prior courses mostly conventional (72 %) with the rest SBRT; re-SBRT in 1 (30 %), 3 (68 %)
or 5 (2 %) fractions; cord point maxima around the published medians. They are not a model of any population.
"""

from __future__ import annotations

import random
from datetime import date, timedelta
from typing import Any

from .calculations import LEVEL_ORDER

__all__ = ["SYNTHETIC_PREFIX", "synth_case", "synth_cases"]

SYNTHETIC_PREFIX = "synthetic-"

_CONVENTIONAL = [(8, 1), (20, 5), (30, 10), (37.5, 15), (40, 20), (45, 25), (50, 25)]
_CONVENTIONAL_W = [10, 25, 40, 10, 5, 5, 5]
_SBRT = [(16, 1), (18, 1), (24, 2), (24, 3), (27, 3), (30, 4), (30, 5)]
_HISTOLOGY = ["adenocarcinoma", "renal cell carcinoma", "breast carcinoma", "prostate adenocarcinoma", "sarcoma",
              "melanoma", "hepatocellular carcinoma", "squamous cell carcinoma"]


def _course_dates(rng: random.Random, end: date, fractions: int) -> tuple[date, date]:
    length = max(0, int(fractions * 1.4) - 1)
    return end - timedelta(days=length), end


def _prior(rng: random.Random, end: date, *, lost_dosimetry_rate: float) -> dict[str, Any]:
    sbrt = rng.random() < 0.25
    dose, n = rng.choice(_SBRT) if sbrt else rng.choices(_CONVENTIONAL, _CONVENTIONAL_W)[0]
    start, end = _course_dates(rng, end, n)
    course: dict[str, Any] = {
        "start": start.isoformat(), "end": end.isoformat(),
        "technique": rng.choice(["SBRT", "SRS"]) if sbrt else rng.choice(["2D", "3DCRT", "3DCRT", "IMRT", "VMAT"]),
        "prescription": {"dose": dose, "fractions": n},
    }
    if not sbrt and rng.random() < lost_dosimetry_rate:
        course["dosimetry"] = "unavailable"
        return course
    ratio = rng.uniform(0.55, 0.85) if sbrt else rng.uniform(0.85, 1.08)
    dmax = round(dose * ratio, 2)
    metrics: dict[str, float] = {"Dmax": dmax}
    if rng.random() < 0.5:
        metrics["D0.03cc"] = round(dmax * rng.uniform(0.88, 0.99), 2)
    structure = rng.choice(["SpinalCord", "SpinalCord", "ThecalSac"])
    course["structures"] = {structure: metrics}
    if structure == "ThecalSac" and rng.random() < 0.5:
        course["structures"]["SpinalCord"] = {"Dmax": round(dmax * rng.uniform(0.85, 0.98), 2)}
    return course


def synth_case(rng: random.Random, index: int, *, de_novo_rate: float = 0.1,
               lost_dosimetry_rate: float = 0.08) -> dict[str, Any]:
    """One plausible case document (format reirrad/case/v1) with a pseudonymous synthetic id."""
    top = rng.choices(range(len(LEVEL_ORDER) - 5), k=1)[0]
    levels = LEVEL_ORDER[top: top + rng.choice([1, 1, 1, 2, 3])]
    planned_start = date(2012, 1, 1) + timedelta(days=rng.randrange(0, 13 * 365))
    n_prior = 0 if rng.random() < de_novo_rate else rng.choices([1, 2], [90, 10])[0]
    priors = []
    end = planned_start
    for _ in range(n_prior):
        gap = max(1, int(rng.lognormvariate(2.3, 0.9) * 30.4375))  # median ≈ 10 months
        end = end - timedelta(days=gap)
        priors.append(_prior(rng, end, lost_dosimetry_rate=lost_dosimetry_rate))
        end = date.fromisoformat(priors[-1]["start"]) - timedelta(days=1)
    n = rng.choices([1, 2, 3, 5], [30, 5, 63, 2])[0]
    dose = {1: rng.choice([16, 18, 20, 24]), 2: 24, 3: rng.choice([24, 27, 30]), 5: rng.choice([30, 35, 40])}[n]
    dmax = round(rng.uniform(0.35, 0.75) * dose, 2)
    structures: dict[str, dict[str, float]] = {"SpinalCord": {"Dmax": dmax}}
    if rng.random() < 0.85:
        structures["SpinalCord"]["D0.03cc"] = round(dmax * rng.uniform(0.8, 0.97), 2)
    if rng.random() < 0.3:
        structures["ThecalSac"] = {"Dmax": round(dmax * rng.uniform(1.02, 1.2), 2)}
    if levels[-1].startswith("L") and rng.random() < 0.5:
        structures["CaudaEquina"] = {"Dmax": round(dmax * rng.uniform(0.9, 1.1), 2)}
    planned: dict[str, Any] = {"start": planned_start.isoformat(), "technique": rng.choice(["SBRT", "SBRT", "SRS"]),
                               "prescription": {"dose": dose, "fractions": n}, "structures": structures}
    if rng.random() < 0.8:
        planned["ptv_high_dmin"] = round(dose * rng.uniform(0.5, 0.9), 2)
    case: dict[str, Any] = {
        "schema": "reirrad/case/v1",
        "case_id": f"{SYNTHETIC_PREFIX}{index:07d}",
        "patient": {"age": rng.randint(35, 88), "sex": rng.choice(["female", "male"]),
                    "histology": rng.choice(_HISTOLOGY), "ecog": rng.choice([0, 1, 1, 2, 3]),
                    "expected_survival_months": rng.choice([3, 6, 9, 12, 18, 24, 36])},
        "lesion": {"levels": levels, "bilsky_grade": rng.choice(["0", "1a", "1b", "1c", "2", "3"]),
                   "sins": rng.randint(0, 14), "recurrence": rng.choice(["in_field", "marginal", "out_of_field"])},
        "prior_courses": list(reversed(priors)),
        "planned_course": planned,
    }
    return case


def synth_cases(n: int, seed: int, **kwargs: Any) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    return [synth_case(rng, i, **kwargs) for i in range(n)]
