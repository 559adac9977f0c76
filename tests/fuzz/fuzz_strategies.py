"""Hypothesis strategies for the fuzz and property suite: case documents (plausible, extreme and hostile), their
YAML text, and mutations of rule files; with the checks the properties share.

Used by tests/fuzz/test_properties.py (a bounded run in CI) and tests/fuzz/long_run.py (100,000 cases and more).
"""

from __future__ import annotations

import copy
import math
import random
from collections.abc import Callable, Sequence
from datetime import date, timedelta
from functools import cache
from typing import Any, Protocol, TypeVar

import yaml
from hypothesis import strategies as st

T = TypeVar("T")
AS_OF = date(2026, 11, 23)
LEVELS = [f"C{i}" for i in range(1, 8)] + [f"T{i}" for i in range(1, 13)] + [f"L{i}" for i in range(1, 6)]
LEVELS += [f"S{i}" for i in range(1, 6)]
CONVENTIONAL = ["2D", "3DCRT", "IMRT", "VMAT", "other"]
STEREOTACTIC = ["SBRT", "SRS"]
STRUCTURES = [
    "SpinalCord",
    "SpinalCord_PRV03",
    "SpinalCord_PRV05",
    "ThecalSac",
    "CaudaEquina",
    "BrachialPlex_R",
]
CORD_LIKE = ("SpinalCord", "SpinalCord_PRV03", "SpinalCord_PRV05", "ThecalSac", "CaudaEquina")
METRICS = ["Dmax", "D0.03cc", "D0.1cc", "D1cc"]

# --- plausible documents --------------------------------------------------------------------------------------
# One generator, two sources of choices: Hypothesis draws (shrinkable, for the properties that search) or a seeded
# random.Random (one draw per document, about 50 times faster: the bounded CI run and the long run use it).


class Chooser(Protocol):
    def integer(self, low: int, high: int) -> int: ...
    def number(self, low: float, high: float) -> float: ...
    def pick(self, options: Sequence[T]) -> T: ...
    def subset(self, options: Sequence[T], most: int) -> list[T]: ...


@cache
def _integers(low: int, high: int) -> st.SearchStrategy[int]:
    return st.integers(low, high)


@cache
def _floats(low: float, high: float) -> st.SearchStrategy[float]:
    return st.floats(min_value=low, max_value=high)


@cache
def _subsets(options: tuple[Any, ...], most: int) -> st.SearchStrategy[list[Any]]:
    return st.lists(st.sampled_from(options), min_size=1, max_size=most, unique=True)


class Drawn:
    """Choices drawn by Hypothesis (strategies built once per distinct argument: building one costs a draw)."""

    def __init__(self, draw: st.DrawFn) -> None:
        self.draw = draw

    def integer(self, low: int, high: int) -> int:
        return self.draw(_integers(low, high))

    def number(self, low: float, high: float) -> float:
        return self.draw(_floats(low, high))

    def pick(self, options: Sequence[T]) -> T:
        return options[self.integer(0, len(options) - 1)]

    def subset(self, options: Sequence[T], most: int) -> list[T]:
        return self.draw(_subsets(tuple(options), most))


class Seeded:
    """Choices from a seeded random.Random."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)

    def integer(self, low: int, high: int) -> int:
        return self.rng.randint(low, high)

    def number(self, low: float, high: float) -> float:
        return self.rng.uniform(low, high)

    def pick(self, options: Sequence[T]) -> T:
        return self.rng.choice(options)

    def subset(self, options: Sequence[T], most: int) -> list[T]:
        return self.rng.sample(list(options), self.rng.randint(1, most))


def _metrics(c: Chooser, top: float) -> dict[str, float]:
    """Dmax ≥ D0.03cc ≥ D0.1cc ≥ D1cc, a non-empty subset, each with two decimals."""
    chosen = c.subset(METRICS, 4)
    if c.integer(0, 4) and "Dmax" not in chosen:
        chosen.append("Dmax")  # most plans report the point maximum the policies read
    value = top
    out: dict[str, float] = {}
    for metric in METRICS:
        if metric in chosen:
            out[metric] = round(value, 2)
        value *= c.number(0.8, 1.0)
    return out


def _structures(
    c: Chooser, prescription: float, *, need_cord: bool, high: float = 1.1
) -> dict[str, dict[str, float]]:
    names = c.subset(STRUCTURES, 3)
    if (need_cord and not set(names) & set(CORD_LIKE)) or (c.integer(0, 9) < 7 and "SpinalCord" not in names):
        names.append("SpinalCord")
    out = {}
    for name in names:
        ratio = c.number(0.05, high) if c.integer(0, 9) else c.pick([0.0, 0.00001, 1.0])
        out[name] = _metrics(c, max(ratio * prescription, 0.0))
    return out


def _course(c: Chooser, *, planned: bool, end: date) -> dict[str, Any]:
    """A course ending on ``end`` (prior) or starting on it (planned); plausible most of the time, extreme at
    times (fractions up to 70, doses per fraction from 0.1 to 40 Gy), so that the bounds are crossed both ways."""
    stereo = c.integer(0, 3) > 0 if planned else c.integer(0, 1) == 1
    technique = c.pick(STEREOTACTIC if stereo else CONVENTIONAL)
    if c.integer(0, 9) == 0:
        n, per = c.integer(1, 70), c.number(0.1, 40.0)
    elif stereo:
        n = c.integer(1, 5)
        per = c.number(12.0, 24.0) if n == 1 else c.number(5.0, 12.0)
    else:
        n = c.pick([1, 2, 5, 10, 13, 15, 20, 25])
        per = c.number(1.5, max(1.5, min(8.0, 66.0 / n)))
    dose = round(per * n, 2)
    doc: dict[str, Any] = {"technique": technique, "prescription": {"dose": dose, "fractions": n}}
    if planned:
        doc["start"] = end.isoformat()
        doc["structures"] = _structures(c, dose, need_cord=c.integer(0, 9) > 0, high=c.pick([0.8, 1.1]))
        if c.integer(0, 1):
            doc["ptv_high_dmin"] = round(dose * c.number(0.4, 1.0), 2)
    else:
        start = end - timedelta(days=max(0, int(n * 1.4) - 1))
        doc["start"], doc["end"] = start.isoformat(), end.isoformat()
        if c.integer(0, 9) == 0:
            doc["dosimetry"] = "unavailable"
        elif c.integer(0, 9) > 0:
            doc["structures"] = _structures(c, dose, need_cord=True)
        if c.integer(0, 1):
            doc["tolerance"] = c.pick(["well_tolerated", "poorly_tolerated"])
    unit = c.integer(0, 3)
    if unit == 0:
        to_cgy(doc)
    elif unit == 1:
        doc["unit"] = "Gy"
    return doc


def to_cgy(course_doc: dict[str, Any]) -> dict[str, Any]:
    """The same course with every dose in cGy (in place); two decimals in Gy are whole-ish cGy."""
    if course_doc.get("unit") == "cGy":
        return course_doc
    course_doc["unit"] = "cGy"
    course_doc["prescription"]["dose"] = round(course_doc["prescription"]["dose"] * 100, 6)
    for values in (course_doc.get("structures") or {}).values():
        for metric in values:
            values[metric] = round(values[metric] * 100, 6)
    if "ptv_high_dmin" in course_doc:
        course_doc["ptv_high_dmin"] = round(course_doc["ptv_high_dmin"] * 100, 6)
    return course_doc


_PATIENT: tuple[tuple[str, Callable[[Chooser], Any]], ...] = (
    ("age", lambda c: c.integer(18, 100)),
    ("sex", lambda c: c.pick(["female", "male", "other", "unknown"])),
    ("histology", lambda c: c.pick(["renal cell carcinoma", "breast carcinoma", "sarcoma", "melanoma"])),
    ("ecog", lambda c: c.integer(0, 4)),
    ("expected_survival_months", lambda c: c.pick([1, 3, 5.9, 6, 12, 24, 60])),
    ("kps", lambda c: c.integer(0, 100)),
)
_LESION: tuple[tuple[str, Callable[[Chooser], Any]], ...] = (
    ("bilsky_grade", lambda c: c.pick(["0", "1a", "1b", "1c", "2", "3"])),
    ("sins", lambda c: c.integer(0, 18)),
    ("recurrence", lambda c: c.pick(["in_field", "marginal", "out_of_field"])),
    ("pathologic_fracture", lambda c: c.integer(0, 1) == 1),
    ("neurologic_deficit", lambda c: c.integer(0, 1) == 1),
    ("cord_compression_symptoms", lambda c: c.integer(0, 1) == 1),
    ("prior_surgery", lambda c: c.integer(0, 1) == 1),
    ("extent", lambda c: c.pick(["local", "local_and_systemic"])),
)


def build_case(c: Chooser) -> dict[str, Any]:
    """A case document: most are accepted by the loader, a fair share refused by a plausibility bound."""
    top = c.integer(0, len(LEVELS) - 3)
    planned_start = AS_OF - timedelta(days=c.integer(-300, 6000))
    priors = []
    end = planned_start
    for _ in range(c.pick([0, 1, 1, 1, 2, 3])):
        end = end - timedelta(days=c.integer(0, 3000))
        prior = _course(c, planned=False, end=end)
        priors.append(prior)
        end = date.fromisoformat(prior["start"]) - timedelta(days=1)
    doc: dict[str, Any] = {
        "schema": "reirrad/case/v1",
        "case_id": f"fuzz-{c.integer(0, 999_999):06d}",
        "lesion": {"levels": LEVELS[top : top + c.integer(1, 3)]},
        "prior_courses": list(reversed(priors)),
        "planned_course": _course(c, planned=True, end=planned_start),
    }
    patient = {key: make(c) for key, make in _PATIENT if c.integer(0, 1)}
    if patient or c.integer(0, 1):
        doc["patient"] = patient
    doc["lesion"].update({key: make(c) for key, make in _LESION if c.integer(0, 1)})
    return doc


@st.composite
def case_documents(draw: st.DrawFn) -> dict[str, Any]:
    """Case documents from Hypothesis draws (shrinkable)."""
    return build_case(Drawn(draw))


def seeded_case_documents() -> st.SearchStrategy[dict[str, Any]]:
    """Case documents from one drawn seed (fast; a failure shrinks to a seed, and prints the document)."""
    return st.integers(0, 2**64 - 1).map(lambda seed: build_case(Seeded(seed)))


_SEEDED = seeded_case_documents()


# --- hostile values and mutations -------------------------------------------------------------------------------

HOSTILE_NUMBERS = [
    0,
    -1,
    -0.0,
    1e-05,
    5e-324,
    1e-300,
    1e300,
    1.7976931348623157e308,
    2**63,
    10**20,
    10**399,
    30.0000001,
    0.4999,
    True,
]
HOSTILE_TEXT = [
    "",
    " ",
    "Gy",
    "24 Gy",
    "1e-05",
    "\x00",
    "a\nb",
    "\x1b[31m",
    "\u202e",
    "\ud800",
    "<script>alert(1)</script>",
    "- FORGED: proceed",
    "x" * 10_000,
    "Jane Doe 1948-03-02",
    "MRN 12345678",
    "2015-02-30",
    "9999-12-31",
    "0001-01-01",
]


def _leaves(doc: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path into the document (not below 12 levels: a nested value an edit made counts as one leaf)."""
    out = [path] if path else []
    if len(path) >= 12:
        return out
    if isinstance(doc, dict):
        for key, value in doc.items():
            out += _leaves(value, (*path, key))
    elif isinstance(doc, list):
        for i, value in enumerate(doc):
            out += _leaves(value, (*path, i))
    return out


def _put(doc: Any, path: tuple[Any, ...], value: Any) -> None:
    for part in path[:-1]:
        doc = doc[part]
    doc[path[-1]] = value


def _drop(doc: Any, path: tuple[Any, ...]) -> None:
    for part in path[:-1]:
        doc = doc[part]
    if isinstance(doc, dict):
        doc.pop(path[-1], None)
    elif isinstance(doc, list) and doc:
        doc.pop(path[-1])


def _nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


_KEYS = ["name", "mrn", "Dmax ", "unit\n", "\u202eid", "dob"]
_TYPES: list[Any] = [None, [], {}, [1, 2], {"a": 1}, False]


def mutate(c: Chooser, doc: dict[str, Any]) -> dict[str, Any]:
    """One to three hostile edits (in place): a number, a text, a type, a key, nesting or a removal."""
    for _ in range(c.integer(1, 3)):
        paths = _leaves(doc)
        if not paths:
            break
        path = c.pick(paths)
        kind = c.pick(["number", "text", "type", "drop", "key", "nest"])
        if kind == "number":
            _put(doc, path, c.pick(HOSTILE_NUMBERS) if c.integer(0, 2) else c.number(-1e308, 1e308))
        elif kind == "text":
            _put(doc, path, c.pick(HOSTILE_TEXT))
        elif kind == "type":
            _put(doc, path, copy.deepcopy(c.pick(_TYPES)))
        elif kind == "drop":
            _drop(doc, path)
        elif kind == "key":
            parent = doc
            for part in path[:-1]:
                parent = parent[part]
            if isinstance(parent, dict):
                parent[c.pick(_KEYS)] = 1
        else:
            _put(doc, path, _nested(c.pick([2, 10, 70, 2000])))
    return doc


@st.composite
def mutated_documents(draw: st.DrawFn) -> dict[str, Any]:
    """A case document with one to three hostile edits."""
    return mutate(Drawn(draw), draw(_SEEDED))


def yaml_text(doc: Any) -> str:
    """The document as YAML a person might write (safe_dump; dates stay text, as the strict loader reads them)."""
    return yaml.safe_dump(doc, allow_unicode=True, sort_keys=False, width=10_000)


def damage(c: Chooser, doc: Any) -> bytes:
    """The document as YAML bytes, sometimes damaged at the byte level: a byte inserted, the text cut, a BOM,
    Windows line ends, a tab indent, a Python tag, a second document or an alias bomb."""
    try:
        text = yaml_text(doc)
    except (yaml.YAMLError, RecursionError, ValueError):
        text = "schema: reirrad/case/v1\n"
    raw = text.encode("utf-8", errors="surrogatepass")
    kind = c.pick(["none", "none", "byte", "cut", "bom", "crlf", "tab", "tag", "second", "alias"])
    if kind == "byte" and raw:
        at = c.integer(0, len(raw) - 1)
        raw = raw[:at] + bytes([c.integer(0, 255)]) + raw[at:]
    elif kind == "cut" and raw:
        raw = raw[: c.integer(0, len(raw) - 1)]
    elif kind == "bom":
        raw = b"\xef\xbb\xbf" + raw
    elif kind == "crlf":
        raw = raw.replace(b"\n", b"\r\n")
    elif kind == "tab":
        raw = raw.replace(b"\n  ", b"\n\t", 1)
    elif kind == "tag":
        raw = b"x: !!python/object/apply:os.system ['true']\n" + raw
    elif kind == "second":
        raw = raw + b"---\nschema: 2\n"
    elif kind == "alias":
        raw = (
            b"a: &a [1, 2]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a]\nc: [*b, *b, *b, *b, *b, *b, *b, *b]\n"
            + raw
        )
    return raw


@st.composite
def hostile_yaml(draw: st.DrawFn) -> bytes:
    """YAML bytes of a plausible or mutated document, damaged at times (see damage)."""
    c = Drawn(draw)
    doc = draw(_SEEDED) if c.integer(0, 1) else draw(mutated_documents())
    return damage(c, doc)


# --- transformations the properties compare ---------------------------------------------------------------------


def doubled_planned_dose(doc: dict[str, Any]) -> dict[str, Any]:
    """The same case with every planned organ-at-risk dose doubled (the prescription and the PTV unchanged)."""
    out = copy.deepcopy(doc)
    for values in out["planned_course"].get("structures", {}).values():
        for metric in values:
            values[metric] = round(values[metric] * 2, 6)
    return out


def all_in_cgy(doc: dict[str, Any], which: list[bool]) -> dict[str, Any]:
    """The same case with the chosen courses (prior courses in order, then the planned one) written in cGy."""
    out = copy.deepcopy(doc)
    courses = [*out["prior_courses"], out["planned_course"]]
    for course_doc, chosen in zip(courses, which, strict=False):
        if chosen:
            to_cgy(course_doc)
    return out


# --- checks shared by the properties -----------------------------------------------------------------------------


def verdicts(result: dict[str, Any]) -> dict[str, str]:
    return {p["policy"]: p["verdict"] for p in result["policy_summary"]}


def statuses(result: dict[str, Any]) -> list[tuple[Any, ...]]:
    return [
        (key, e["rule_id"], e.get("structure"), e.get("metric"), e["status"])
        for key in ("constraints", "advisories", "assumptions", "recommendations")
        for e in result[key]
    ]


def pass_without_data(doc: dict[str, Any], result: dict[str, Any]) -> list[str]:
    """Every pass the result gives although data it needs is missing (must be empty).

    Three checks: a constraint that passes has a value and nothing missing; a policy that passes has no item
    undecided or failed; a cumulative constraint on a structure passes only when every prior course with plan
    data gives that structure's dose (nothing is assumed for a structure a course omits)."""
    found = []
    for e in result["constraints"] + result["advisories"]:
        if e["status"] == "pass" and (
            e["value"] is None or e.get("missing") or not math.isfinite(float(e["value"]))
        ):
            found.append(f"{e['rule_id']} {e.get('structure')} {e.get('metric')}: pass without a value")
    by_policy: dict[str, list[str]] = {}
    for e in result["constraints"]:
        by_policy.setdefault(e.get("policy") or "", []).append(e["status"])
    for policy, verdict in verdicts(result).items():
        if verdict == "pass" and {"indeterminate", "fail"} & set(by_policy.get(policy, [])):
            found.append(f"{policy}: pass with items {sorted(set(by_policy[policy]))}")
    priors = [p for p in doc["prior_courses"] if p.get("dosimetry") != "unavailable"]
    for e in result["constraints"]:
        calculation = str((e.get("calculation") or {}).get("name", ""))
        if e["status"] != "pass" or not calculation.startswith(("cumulative", "eqd2_ratio")):
            continue
        structure = e.get("structure")
        if structure and any(structure not in (p.get("structures") or {}) for p in priors):
            found.append(
                f"{e['rule_id']} {structure}: pass although a prior course gives no {structure} dose"
            )
    return found


# --- rule files --------------------------------------------------------------------------------------------------


@st.composite
def rule_file_edits(draw: st.DrawFn, data: dict[str, Any]) -> dict[str, Any]:
    """A rule file's data with one hostile edit at a random place."""
    doc = copy.deepcopy(data)
    path = draw(st.sampled_from(_leaves(doc)))
    kind = draw(st.sampled_from(["number", "text", "type", "drop", "nest"]))
    if kind == "number":
        _put(doc, path, draw(st.sampled_from(HOSTILE_NUMBERS)))
    elif kind == "text":
        _put(doc, path, draw(st.sampled_from(HOSTILE_TEXT)))
    elif kind == "type":
        _put(doc, path, draw(st.sampled_from([None, [], {}, [1], True])))
    elif kind == "drop":
        _drop(doc, path)
    else:
        _put(doc, path, _nested(draw(st.sampled_from([3, 80]))))
    return doc
