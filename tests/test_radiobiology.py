"""The linear-quadratic conversions against the worked values in DOMAIN.md and the sources."""

from datetime import date

import pytest
from reirrad.dose import radiobiology as rb
from reirrad.knowledge.rulepack import RepairSchedule, RepairStep


@pytest.mark.parametrize(
    ("dose", "fractions", "alpha_beta", "expected"),
    [
        (30, 10, 2, 37.5),  # DOMAIN.md; Kotecha 2020 Table 3 row "30 Gy/10 fx (37.5 Gy [2/2])"
        (20, 5, 2, 30.0),  # Kotecha 2020 Table 3 row "20 Gy/5 fx (30 Gy [2/2])"
        (50, 25, 2, 50.0),  # Kotecha 2020 Table 3 row "50 Gy/25 fx (50 Gy [2/2])"
        (8, 1, 3, 17.6),  # DOMAIN.md
        (10, 1, 2, 30.0),  # Lucido 2025 Table 5: re-SBRT cord Dmax 10.0 Gy → 30.0 Gy EQD2,2
    ],
)
def test_eqd2_worked_values(dose: float, fractions: int, alpha_beta: float, expected: float) -> None:
    assert rb.eqd2(dose, fractions, alpha_beta) == pytest.approx(expected, abs=1e-9)


def test_bed_and_eqd2_convert_both_ways() -> None:
    assert rb.eqd2_to_bed(50, 3) == pytest.approx(83.333333, abs=1e-6)  # Nelson: EQD2,3 50 Gy ↔ BED3 83.3 Gy
    assert rb.bed_to_eqd2(83.3, 3) == pytest.approx(49.98, abs=1e-9)
    assert rb.bed(30, 10, 3) == pytest.approx(60.0)
    assert rb.bed_to_eqd2(rb.bed(27, 3, 2), 2) == pytest.approx(rb.eqd2(27, 3, 2))


def test_table_three_row_one_sits_on_one_iso_eqd2_line() -> None:
    """Kotecha 2020 Table 3, no prior RT: 12.4/1, 17.0/2, 20.3/3, 23.0/4, 25.3/5 fx all ≈ 44.6 Gy EQD2 (α/β 2)."""
    values = [rb.eqd2(d, n, 2) for d, n in [(12.4, 1), (17.0, 2), (20.3, 3), (23.0, 4), (25.3, 5)]]
    assert all(44.4 < v < 44.7 for v in values), values
    assert max(values) - min(values) < 0.2
    assert rb.eqd2(14.0, 1, 2) == pytest.approx(56.0)  # the upper end of the 1-fraction range is not on it


@pytest.mark.parametrize(("budget", "fractions"), [(25, 1), (25, 3), (20, 5), (70 - 37.5, 2), (50, 25)])
def test_inverse_gives_the_largest_dose_that_meets_the_budget(budget: float, fractions: int) -> None:
    dose = rb.max_dose_for_eqd2(budget, fractions, 2)
    assert rb.eqd2(dose, fractions, 2) == pytest.approx(budget, abs=1e-9)
    assert rb.eqd2(dose + 0.01, fractions, 2) > budget


def test_inverse_of_a_spent_budget_is_zero() -> None:
    assert rb.max_dose_for_bed(0, 3, 2) == 0.0
    assert rb.max_dose_for_bed(-5, 3, 2) == 0.0


def test_inverse_matches_the_single_fraction_closed_form() -> None:
    assert rb.max_dose_for_eqd2(25, 1, 2) == pytest.approx(-1 + 101**0.5, abs=1e-12)  # D² + 2D = 100


@pytest.mark.parametrize(
    ("dose", "fractions", "alpha_beta"), [(30, 0, 2), (30, -1, 2), (-1, 5, 2), (30, 5, 0)]
)
def test_conversions_refuse_impossible_inputs(dose: float, fractions: int, alpha_beta: float) -> None:
    with pytest.raises(ValueError, match="must be"):
        rb.eqd2(dose, fractions, alpha_beta)


def test_interval_is_counted_in_months_of_30_4375_days() -> None:
    assert rb.interval_months(date(2015, 1, 16), date(2016, 9, 15)) == pytest.approx(608 / 30.4375)
    assert rb.interval_months(date(2015, 1, 1), date(2015, 6, 3)) == pytest.approx(5.0267, abs=1e-4)
    assert rb.interval_months(date(2015, 1, 1), date(2015, 6, 2)) < 5


def test_repair_schedule_is_a_step_function_inclusive_at_each_step() -> None:
    schedule = RepairSchedule("nelson", [RepairStep(6, 0.25), RepairStep(12, 1 / 3), RepairStep(24, 0.5)])
    assert schedule.fraction_at(5.999) == 0.0
    assert schedule.fraction_at(6.0) == 0.25
    assert schedule.fraction_at(11.99) == 0.25
    assert schedule.fraction_at(12.0) == pytest.approx(1 / 3)
    assert schedule.fraction_at(23.99) == pytest.approx(1 / 3)
    assert schedule.fraction_at(24.0) == 0.5
    assert schedule.fraction_at(120) == 0.5
