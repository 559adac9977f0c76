"""The facts a rule's condition may read: their names, types, and whether every case has them."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ALWAYS_PRESENT", "CONTEXT_FACTS", "FactSpec"]


@dataclass(frozen=True)
class FactSpec:
    type: str
    always: bool
    description: str


CONTEXT_FACTS: dict[str, FactSpec] = {
    "prior_course_count": FactSpec("integer", True, "number of earlier courses over the lesion"),
    "planned_stereotactic": FactSpec("boolean", False, "the planned course is SBRT or SRS"),
    "planned_fractions": FactSpec("integer", False, "fractions of the planned course"),
    "conus_position": FactSpec("text", True, "'above' if any treated level is L1 or higher, else 'below'"),
    "reaches_below_conus": FactSpec(
        "boolean", True, "some treated level is L2 or lower (below the conus, where the cauda equina lies)"
    ),
    "highest_region": FactSpec(
        "text", True, "spinal region of the highest treated level: cervical, thoracic, lumbar or sacral"
    ),
    "interval_months": FactSpec(
        "number", False, "months from the end of the most recent prior course to the planned start"
    ),
    "prior_dosimetry_unavailable_count": FactSpec("integer", True, "prior courses whose plan data is lost"),
    "most_recent_prior_stereotactic": FactSpec("boolean", False, "most recent prior course is SBRT or SRS"),
    "planned_dose_per_fraction": FactSpec("number", False, "planned dose per fraction (Gy)"),
    "expected_survival_months": FactSpec("number", False, "expected survival (months)"),
    "ecog": FactSpec("integer", False, "ECOG performance status"),
    "epidural_high_grade": FactSpec("boolean", False, "high-grade epidural disease (Bilsky 2 or 3)"),
    "cord_compression_symptoms": FactSpec(
        "boolean", False, "symptoms of cord, root or cauda equina compression"
    ),
    "sins_total": FactSpec("integer", False, "SINS total"),
    "pathologic_fracture": FactSpec("boolean", False, "vertebral compression fracture at baseline"),
    "lytic_lesion": FactSpec("boolean", False, "lytic lesion (SINS bone-lesion component 2)"),
    "radioresistant_histology": FactSpec("boolean", False, "radioresistant histology"),
}
"""Facts a rule's condition may read. Those not 'always' present are absent when the case does not provide them,
which makes a condition on them UNKNOWN (Kleene logic), never false."""

ALWAYS_PRESENT = frozenset(name for name, spec in CONTEXT_FACTS.items() if spec.always)
"""Facts every case carries: a condition on them is never unknown. The planned course's facts are absent before
planning (a case with no planned course), so a condition on them is then unknown."""
