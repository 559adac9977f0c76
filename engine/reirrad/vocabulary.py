"""The one place for the project's terms: statuses, operators, structures, levels, metrics, techniques, rule kinds.

Every other module and the JSON Schemas take these names from here (a test checks the schemas' enums against it).
The enums are ``StrEnum`` s, so a member is its own spelling in JSON and compares equal to it.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from enum import StrEnum
from typing import Any

__all__ = [
    "CONUS_LOWEST_LEVEL_AT_RISK",
    "LEVELS",
    "METRICS",
    "NEURAL_STRUCTURES",
    "STEREOTACTIC_TECHNIQUES",
    "STRUCTURE_NAMES",
    "TECHNIQUES",
    "AssessmentStatus",
    "Kind",
    "Level",
    "Metric",
    "Op",
    "Status",
    "Structure",
    "Technique",
    "conus_position",
    "highest_region",
    "reaches_below_conus",
    "region_of",
]


class Status(StrEnum):
    """What one rule says about one item of a case."""

    PASS = "pass"
    FAIL = "fail"
    INDETERMINATE = "indeterminate"
    NOT_APPLICABLE = "not_applicable"
    APPLIED = "applied"
    """An assumption was used for this case."""
    MADE = "made"
    NOT_MADE = "not_made"


class Kind(StrEnum):
    """The kinds of rule, each with the statuses it can take (``statuses``)."""

    CONSTRAINT = "constraint"
    ADVISORY = "advisory"
    ASSUMPTION = "assumption"
    RECOMMENDATION = "recommendation"

    @property
    def statuses(self) -> tuple[Status, ...]:
        return _KIND_STATUSES[self]

    @property
    def is_dose_check(self) -> bool:
        """Constraints and advisories compare a computed quantity with a limit."""
        return self in (Kind.CONSTRAINT, Kind.ADVISORY)


_KIND_STATUSES = {
    Kind.CONSTRAINT: (Status.PASS, Status.FAIL, Status.INDETERMINATE, Status.NOT_APPLICABLE),
    Kind.ADVISORY: (Status.PASS, Status.FAIL, Status.INDETERMINATE, Status.NOT_APPLICABLE),
    Kind.ASSUMPTION: (Status.APPLIED, Status.INDETERMINATE, Status.NOT_APPLICABLE),
    Kind.RECOMMENDATION: (Status.MADE, Status.NOT_MADE, Status.INDETERMINATE),
}


class AssessmentStatus(StrEnum):
    """What the case says of one NOMS/ACR assessment item."""

    PRESENT = "present"
    ABSENT = "absent"
    RECORDED = "recorded"
    NOT_PROVIDED = "not_provided"
    NOT_CAPTURED = "not_captured"


class Op(StrEnum):
    """A comparison, named as in a rule condition (``{fact: x, le: 3}``)."""

    EQ = "eq"
    NE = "ne"
    LT = "lt"
    LE = "le"
    GT = "gt"
    GE = "ge"

    @classmethod
    def from_symbol(cls, symbol: str) -> Op:
        """The operator of a rule's ``limit.operator`` (``<``, ``<=``, ``>``, ``>=``)."""
        return _BY_SYMBOL[symbol]

    @property
    def symbol(self) -> str:
        """ASCII, as a rule file writes a limit's operator: ``<=``."""
        return _SYMBOL[self]

    @property
    def sign(self) -> str:
        """As a reader expects it: ``≤``."""
        return _SIGN[self]

    @property
    def negated(self) -> Op:
        return _NEGATED[self]

    @property
    def durable(self) -> str:
        """durable-rules' pattern operator (equality is written as a plain ``{field: value}``)."""
        return _DURABLE[self]

    def holds(self, left: Any, right: Any) -> bool:
        return bool(_PYTHON[self](left, right))


_SYMBOL = {Op.EQ: "==", Op.NE: "!=", Op.LT: "<", Op.LE: "<=", Op.GT: ">", Op.GE: ">="}
_BY_SYMBOL = {symbol: op for op, symbol in _SYMBOL.items()}
_SIGN = {Op.EQ: "=", Op.NE: "≠", Op.LT: "<", Op.LE: "≤", Op.GT: ">", Op.GE: "≥"}
_NEGATED = {Op.EQ: Op.NE, Op.NE: Op.EQ, Op.LT: Op.GE, Op.GE: Op.LT, Op.LE: Op.GT, Op.GT: Op.LE}
_DURABLE = {Op.EQ: "", Op.NE: "$neq", Op.LT: "$lt", Op.LE: "$lte", Op.GT: "$gt", Op.GE: "$gte"}
_PYTHON: dict[Op, Callable[[Any, Any], Any]] = {
    Op.EQ: operator.eq,
    Op.NE: operator.ne,
    Op.LT: operator.lt,
    Op.LE: operator.le,
    Op.GT: operator.gt,
    Op.GE: operator.ge,
}


class Structure(StrEnum):
    """Organs at risk by their TG-263 names."""

    SPINAL_CORD = "SpinalCord"
    SPINAL_CORD_PRV03 = "SpinalCord_PRV03"
    SPINAL_CORD_PRV05 = "SpinalCord_PRV05"
    THECAL_SAC = "ThecalSac"
    SPINAL_CANAL = "SpinalCanal"
    CAUDA_EQUINA = "CaudaEquina"
    BRACHIAL_PLEX_L = "BrachialPlex_L"
    BRACHIAL_PLEX_R = "BrachialPlex_R"
    SACRAL_PLEX = "SacralPlex"
    ESOPHAGUS = "Esophagus"


STRUCTURE_NAMES: tuple[str, ...] = tuple(s.value for s in Structure)
NEURAL_STRUCTURES: tuple[str, ...] = tuple(
    s.value
    for s in (
        Structure.SPINAL_CORD,
        Structure.SPINAL_CORD_PRV03,
        Structure.SPINAL_CORD_PRV05,
        Structure.THECAL_SAC,
        Structure.SPINAL_CANAL,
        Structure.CAUDA_EQUINA,
    )
)
"""The cord and what stands for it (its PRVs, the thecal sac, the canal) and the cauda equina: what the cord dose
policies and their limits are about."""


class Metric(StrEnum):
    """Near-maximum dose metrics, as the case format names them. The ``*_NAMES``-style tuples below hold plain
    strings, for YAML and argparse."""

    DMAX = "Dmax"
    D0_03CC = "D0.03cc"
    D0_1CC = "D0.1cc"
    D1CC = "D1cc"


METRICS: tuple[str, ...] = tuple(m.value for m in Metric)


class Technique(StrEnum):
    TWO_D = "2D"
    THREE_D_CRT = "3DCRT"
    IMRT = "IMRT"
    VMAT = "VMAT"
    SBRT = "SBRT"
    SRS = "SRS"
    OTHER = "other"


TECHNIQUES: tuple[str, ...] = tuple(t.value for t in Technique)
STEREOTACTIC_TECHNIQUES = frozenset({Technique.SBRT, Technique.SRS})

Level = str
"""A vertebral level, C1 … S5 (``LEVELS`` lists them from the top)."""

LEVELS: tuple[Level, ...] = tuple(
    [f"C{i}" for i in range(1, 8)]
    + [f"T{i}" for i in range(1, 13)]
    + [f"L{i}" for i in range(1, 6)]
    + [f"S{i}" for i in range(1, 6)]
)

CONUS_LOWEST_LEVEL_AT_RISK: Level = "L1"
"""The conus medullaris ends at the L1/L2 junction (Lucido 2025, Methods): L1 and above put the cord at risk."""


def conus_position(levels: list[Level]) -> str:
    """'above' if any treated level is L1 or higher (the cord is at risk), else 'below'."""
    limit = LEVELS.index(CONUS_LOWEST_LEVEL_AT_RISK)
    return "above" if any(LEVELS.index(level) <= limit for level in levels) else "below"


def reaches_below_conus(levels: list[Level]) -> bool:
    """True if some treated level is L2 or lower: below the conus, where the cauda equina lies."""
    limit = LEVELS.index(CONUS_LOWEST_LEVEL_AT_RISK)
    return any(LEVELS.index(level) > limit for level in levels)


def region_of(level: Level) -> str:
    """The spinal region of a level: 'cervical', 'thoracic', 'lumbar' or 'sacral'."""
    return {"C": "cervical", "T": "thoracic", "L": "lumbar", "S": "sacral"}[level[0]]


def highest_region(levels: list[Level]) -> str:
    """The region of the highest treated level (C1 is the highest of all)."""
    return region_of(min(levels, key=LEVELS.index))
