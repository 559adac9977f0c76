"""Linear-quadratic conversions, the interval between courses and step repair schedules."""

from __future__ import annotations

import math
from datetime import date

__all__ = [
    "DAYS_PER_MONTH",
    "MONTH_CONVENTIONS",
    "bed",
    "bed_to_eqd2",
    "calendar_months",
    "eqd2",
    "eqd2_to_bed",
    "interval_months",
    "max_dose_for_bed",
    "max_dose_for_eqd2",
]

DAYS_PER_MONTH = 30.4375
"""A month is 365.25 / 12 days: every interval in the project is counted in these months."""


def _check(total_dose: float, fractions: int, alpha_beta: float) -> None:
    if fractions < 1:
        raise ValueError(f"fractions must be a whole number ≥ 1, got {fractions}")
    if total_dose < 0:
        raise ValueError(f"dose must be ≥ 0 Gy, got {total_dose}")
    if alpha_beta <= 0:
        raise ValueError(f"α/β must be > 0 Gy, got {alpha_beta}")


def bed(total_dose: float, fractions: int, alpha_beta: float) -> float:
    """Biologically effective dose: D · (1 + d / (α/β)), with d = D / n the dose per fraction."""
    _check(total_dose, fractions, alpha_beta)
    return total_dose * (1.0 + (total_dose / fractions) / alpha_beta)


def eqd2(total_dose: float, fractions: int, alpha_beta: float) -> float:
    """Equivalent dose in 2 Gy fractions: D · (d + α/β) / (2 + α/β)."""
    _check(total_dose, fractions, alpha_beta)
    return total_dose * ((total_dose / fractions) + alpha_beta) / (2.0 + alpha_beta)


def bed_to_eqd2(bed_value: float, alpha_beta: float) -> float:
    return bed_value / (1.0 + 2.0 / alpha_beta)


def eqd2_to_bed(eqd2_value: float, alpha_beta: float) -> float:
    return eqd2_value * (1.0 + 2.0 / alpha_beta)


def max_dose_for_bed(bed_budget: float, fractions: int, alpha_beta: float) -> float:
    """Largest total physical dose in ``fractions`` fractions whose BED stays within ``bed_budget``.

    Solves n·d·(1 + d/(α/β)) = B for d: d = (α/β / 2)·(−1 + √(1 + 4B / (n·α/β))). A budget ≤ 0 allows 0 Gy.
    """
    _check(0.0, fractions, alpha_beta)
    if bed_budget <= 0:
        return 0.0
    d = (alpha_beta / 2.0) * (-1.0 + math.sqrt(1.0 + 4.0 * bed_budget / (fractions * alpha_beta)))
    return fractions * d


def max_dose_for_eqd2(eqd2_budget: float, fractions: int, alpha_beta: float) -> float:
    """Largest total physical dose in ``fractions`` fractions whose EQD2 stays within ``eqd2_budget``."""
    return max_dose_for_bed(eqd2_to_bed(eqd2_budget, alpha_beta), fractions, alpha_beta)


def interval_months(prior_end: date, planned_start: date) -> float:
    """Months from the end of a prior course to the start of the new one: days / 30.4375."""
    return (planned_start - prior_end).days / DAYS_PER_MONTH


def _add_months(day: date, months: int) -> date:
    """The same day of the month ``months`` later (the month's last day when it is shorter)."""
    year, month = divmod(day.month - 1 + months, 12)
    year += day.year
    month += 1
    last = (date(year + month // 12, month % 12 + 1, 1) - date.resolution).day
    return date(year, month, min(day.day, last))


def calendar_months(prior_end: date, planned_start: date) -> float:
    """Months by the calendar: whole months whose same day has been reached, plus the share of the next month.

    2015-01-01 → 2015-06-01 is exactly 5.0; → 2015-05-31 is 4 + 30/31. A reading of "months" the sources allow
    beside days / 30.4375 (docs/decisions.md)."""
    if planned_start < prior_end:
        return -calendar_months(planned_start, prior_end)
    whole = (planned_start.year - prior_end.year) * 12 + planned_start.month - prior_end.month
    while whole > 0 and _add_months(prior_end, whole) > planned_start:
        whole -= 1
    reached, following = _add_months(prior_end, whole), _add_months(prior_end, whole + 1)
    return whole + (planned_start - reached).days / (following - reached).days


MONTH_CONVENTIONS = {"days/30.4375": interval_months, "calendar": calendar_months}
"""How an interval in months is counted; a rule's ``quantity.parameters.months`` names one (default the first)."""
