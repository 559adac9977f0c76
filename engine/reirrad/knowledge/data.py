"""Knowledge data beside the rules: the evidence registry, published limit tables, the structured assessment and
term lists. None of it is a rule (rulepack.RULE_SECTIONS); each file has a schema of its own and is loaded here.

Every loader validates the whole file before building anything and raises InputError listing every problem with
its file, line, field and what is accepted: first the JSON Schema, then the checks a schema cannot express (ids
unique, references known, one table cell per schedule, case fields that exist).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from types import MappingProxyType
from typing import Any

from reirrad.errors import InputError, Problem
from reirrad.knowledge import rulepack
from reirrad.load.paths import default_pack_dir
from reirrad.load.validation import line_of, load_schema, schema_problems
from reirrad.load.yamlio import LineMap, load_yaml_file

__all__ = [
    "ASSESSMENT_FILE",
    "EVIDENCE_FILE",
    "LISTS_FILE",
    "NOT_CAPTURED",
    "STUDY_FIELDS",
    "TABLE_FILE",
    "Assessment",
    "AssessmentItem",
    "Cell",
    "Domain",
    "EvidenceRegistry",
    "HistologyList",
    "HistologyLists",
    "ListEntry",
    "Provenance",
    "Quality",
    "Row",
    "Schedule",
    "Study",
    "Table",
    "load_assessment",
    "load_evidence",
    "load_histology_lists",
    "load_table",
    "match_radioresistant",
    "normalise",
]

EVIDENCE_FILE = Path(rulepack.EVIDENCE_FILE)
TABLE_FILE = Path("tables") / "kotecha-2020-table3.yaml"
ASSESSMENT_FILE = Path("assessment") / "noms-acr.yaml"
LISTS_FILE = Path("lists") / "radioresistant-histologies.yaml"

NOT_CAPTURED = "not captured by the case format"
NOT_GRADED = "not graded"

REQUIRED_STUDY_FIELDS = (
    "design",
    "population",
    "patients",
    "targets",
    "prior_rt",
    "regimen",
    "local_control",
    "survival",
    "pain",
    "vcf",
    "myelopathy",
)
OPTIONAL_STUDY_FIELDS = (
    "follow_up",
    "neurologic_adverse_events",
    "other_grade3_4_toxicity",
    "other_outcomes",
)
STUDY_FIELDS = REQUIRED_STUDY_FIELDS + OPTIONAL_STUDY_FIELDS
"""Descriptive fields of a study; each maps a reference id of the study's sources to what that source reports."""


# --- shared helpers ------------------------------------------------------------------------------------------------


class _Checker:
    """Collects semantic problems of one file, each placed at its line."""

    def __init__(self, file: str, lines: LineMap) -> None:
        self.file = file
        self.lines = lines
        self.problems: list[Problem] = []

    def add(self, path: tuple[str | int, ...], message: str, accepted: str, code: str) -> None:
        self.problems.append(
            Problem(self.file, path, message, accepted, line_of(self.lines, path), code=code)
        )

    def unique(self, ids: Iterable[tuple[tuple[str | int, ...], str]], what: str) -> None:
        seen: dict[str, tuple[str | int, ...]] = {}
        for path, value in ids:
            if value in seen:
                first = line_of(self.lines, seen[value])
                self.add(
                    path,
                    f"duplicate {what} '{value}'" + (f" (first given on line {first})" if first else ""),
                    f"each {what} once",
                    "knowledge.duplicate",
                )
            else:
                seen[value] = path

    def ref(self, path: tuple[str | int, ...], ref: str, known: Mapping[str, Any]) -> None:
        if ref not in known:
            self.add(path, f"unknown reference '{ref}'", ", ".join(sorted(known)), "knowledge.citation")


def _references(root: Path) -> dict[str, Any]:
    data, lines = load_yaml_file(root / "references.yaml")
    problems = schema_problems(data, "references.schema.json", lines, str(root / "references.yaml"))
    if problems:
        raise InputError.of(problems)
    return dict(data)


def _read(root: Path | str | None, relative: Path, schema: str) -> tuple[Path, Any, LineMap, dict[str, Any]]:
    root = Path(root) if root is not None else default_pack_dir()
    path = root / relative
    data, lines = load_yaml_file(path)
    problems = schema_problems(data, schema, lines, str(path))
    if problems:
        raise InputError.of(problems)
    return path, data, lines, _references(root)


def _raise(checker: _Checker) -> None:
    if checker.problems:
        raise InputError.of(checker.problems)


@dataclass(frozen=True)
class Provenance:
    ref: str
    locator: str

    @classmethod
    def of(cls, raw: Mapping[str, Any]) -> Provenance:
        return cls(raw["ref"], raw["locator"])

    def as_dict(self) -> dict[str, str]:
        return {"ref": self.ref, "locator": self.locator}


# --- evidence registry ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Quality:
    grade: str
    scale: str | None = None
    ref: str | None = None
    locator: str | None = None
    source_kind: str | None = None

    def label(self) -> str:
        if self.grade == NOT_GRADED:
            return f"not graded ({self.source_kind})"
        return f"{self.grade} ({self.scale}, {self.ref} {self.locator})"


@dataclass(frozen=True)
class Study:
    id: str
    authors: str
    year: int | str
    sources: tuple[Provenance, ...]
    fields: Mapping[str, Mapping[str, str | float]]
    quality: Quality
    journal: str | None = None
    reference: str | None = None
    reference_list: Provenance | None = None

    @property
    def citation_text(self) -> str:
        return f"{self.authors}, {self.year}"

    def reported(self, name: str) -> Mapping[str, str | float]:
        """What each source reports for a field (reference id → value); empty when no source gives the field."""
        if name not in STUDY_FIELDS:
            raise KeyError(f"unknown study field {name!r}: {', '.join(STUDY_FIELDS)}")
        return self.fields.get(name, MappingProxyType({}))


@dataclass(frozen=True)
class EvidenceRegistry:
    file: str
    studies: tuple[Study, ...]
    _by_id: Mapping[str, Study] = field(default_factory=dict, repr=False, compare=False)

    def study(self, study_id: str) -> Study:
        return self._by_id[study_id]

    def ids(self) -> list[str]:
        return [s.id for s in self.studies]

    def cited_refs(self) -> set[str]:
        """Every reference id the registry cites (sources, quality ratings, reference lists, own entries)."""
        out: set[str] = set()
        for s in self.studies:
            out |= {p.ref for p in s.sources}
            out |= {
                r
                for r in (s.quality.ref, s.reference, s.reference_list.ref if s.reference_list else None)
                if r
            }
        return out


def load_evidence(root: Path | str | None = None) -> EvidenceRegistry:
    """rules/evidence/studies.yaml, validated; raise InputError listing every problem."""
    path, data, lines, refs = _read(root, EVIDENCE_FILE, "evidence.schema.json")
    check = _Checker(str(path), lines)
    check.unique(((("studies", i, "id"), s["id"]) for i, s in enumerate(data["studies"])), "study id")
    studies: list[Study] = []
    for i, raw in enumerate(data["studies"]):
        base: tuple[str | int, ...] = ("studies", i)
        sources = tuple(Provenance.of(p) for p in raw["from"])
        source_refs = [p.ref for p in sources]
        for j, ref in enumerate(source_refs):
            check.ref((*base, "from", j, "ref"), ref, refs)
        check.unique(
            (((*base, "from", j, "ref"), r) for j, r in enumerate(source_refs)), "source of one study"
        )
        for name in STUDY_FIELDS:
            if name not in raw:
                continue
            given = list(raw[name])
            for ref in given:
                if ref not in source_refs:
                    check.add(
                        (*base, name, ref),
                        f"'{ref}' is not among this study's sources (from)",
                        ", ".join(source_refs),
                        "knowledge.evidence-source",
                    )
            if name in REQUIRED_STUDY_FIELDS:
                for ref in source_refs:
                    if ref not in given:
                        check.add(
                            (*base, name),
                            f"says nothing for the source '{ref}'",
                            "a value for every source in 'from' (write \"not reported\" when it gives none)",
                            "knowledge.evidence-source",
                        )
        for key in ("reference",):
            if key in raw:
                check.ref((*base, key), raw[key], refs)
        if "reference_list" in raw:
            check.ref((*base, "reference_list", "ref"), raw["reference_list"]["ref"], refs)
        q = raw["quality"]
        if q["grade"] == NOT_GRADED:
            if "source_kind" not in q:
                check.add(
                    (*base, "quality", "source_kind"),
                    "an ungraded study needs the kind of source",
                    "source_kind: e.g. 'retrospective single-institution series'",
                    "knowledge.quality",
                )
            for extra in ("scale", "ref", "locator"):
                if extra in q:
                    check.add(
                        (*base, "quality", extra),
                        f"'{extra}' is given although the study is not graded",
                        "only grade and source_kind for an ungraded study",
                        "knowledge.quality",
                    )
        else:
            for need in ("scale", "ref", "locator"):
                if need not in q:
                    check.add(
                        (*base, "quality", need),
                        f"a grade needs the {need} it comes from",
                        "scale, ref and locator of the table that grades the study",
                        "knowledge.quality",
                    )
            if "ref" in q:
                check.ref((*base, "quality", "ref"), q["ref"], refs)
        studies.append(
            Study(
                id=raw["id"],
                authors=raw["citation"]["authors"],
                year=raw["citation"]["year"],
                sources=sources,
                fields=MappingProxyType(
                    {n: MappingProxyType(dict(raw[n])) for n in STUDY_FIELDS if n in raw}
                ),
                quality=Quality(
                    q["grade"], q.get("scale"), q.get("ref"), q.get("locator"), q.get("source_kind")
                ),
                journal=raw["citation"].get("journal"),
                reference=raw.get("reference"),
                reference_list=Provenance.of(raw["reference_list"]) if "reference_list" in raw else None,
            )
        )
    _raise(check)
    return EvidenceRegistry(str(path), tuple(studies), MappingProxyType({s.id: s for s in studies}))


# --- published limit table ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Schedule:
    id: str
    label: str
    fractions: int
    dose: float | None = None
    dose_low: float | None = None
    dose_high: float | None = None


@dataclass(frozen=True)
class Cell:
    schedule: str
    available: bool
    provenance: Provenance
    value: float | None = None
    low: float | None = None
    high: float | None = None
    cauda_equina: float | None = None

    @property
    def limit(self) -> float | None:
        """The single figure to compare with: the value, or the lower bound of a range; None when not available."""
        return self.value if self.value is not None else self.low

    def text(self) -> str:
        if not self.available:
            return "not available"
        out = f"{self.value:g} Gy" if self.value is not None else f"{self.low:g}-{self.high:g} Gy"
        if self.cauda_equina is not None:
            out += f" (cauda equina {self.cauda_equina:g} Gy)"
        return out

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"available": self.available}
        if self.value is not None:
            out["value"] = self.value
        if self.low is not None:
            out["range"] = {"low": self.low, "high": self.high}
        if self.cauda_equina is not None:
            out["cauda_equina"] = self.cauda_equina
        out["provenance"] = self.provenance.as_dict()
        return out


@dataclass(frozen=True)
class Row:
    id: str
    label: str
    prior_dose: float | None
    prior_fractions: int | None
    stated_eqd2: float | None
    cells: tuple[Cell, ...]

    @property
    def is_none(self) -> bool:
        """The row for a level never irradiated before."""
        return self.prior_dose is None

    def cell(self, schedule_id: str) -> Cell:
        return next(c for c in self.cells if c.schedule == schedule_id)


@dataclass(frozen=True)
class Table:
    file: str
    id: str
    title: str
    ref: str
    locator: str
    quantity: str
    unit: str
    structures: tuple[str, ...]
    footnotes: tuple[tuple[str, Provenance], ...]
    schedules: tuple[Schedule, ...]
    rows: tuple[Row, ...]
    decisions: tuple[str, ...] = ()

    @property
    def fractions(self) -> list[int]:
        return [s.fractions for s in self.schedules]

    def schedule_for(self, fractions: int) -> Schedule | None:
        return next((s for s in self.schedules if s.fractions == fractions), None)

    def row_for(self, priors: list[tuple[float, int]]) -> Row | None:
        """The row for these earlier courses ((dose Gy, fractions) each): 'None' for no course, a row with the same
        dose and fractions for exactly one course, else None (the table has no row for several courses)."""
        if not priors:
            return next((r for r in self.rows if r.is_none), None)
        if len(priors) != 1:
            return None
        dose, n = priors[0]
        return next(
            (
                r
                for r in self.rows
                if r.prior_fractions == n and r.prior_dose is not None and abs(r.prior_dose - dose) < 1e-9
            ),
            None,
        )


def load_table(root: Path | str | None = None, relative: Path = TABLE_FILE) -> Table:
    """A published limit table (default rules/tables/kotecha-2020-table3.yaml), validated."""
    path, data, lines, refs = _read(root, relative, "table.schema.json")
    check = _Checker(str(path), lines)
    check.ref(("ref",), data["ref"], refs)
    for j, note in enumerate(data["footnotes"]):
        check.ref(("footnotes", j, "provenance", "ref"), note["provenance"]["ref"], refs)
    check.unique(((("schedules", i, "id"), s["id"]) for i, s in enumerate(data["schedules"])), "schedule id")
    check.unique(
        ((("schedules", i, "fractions"), str(s["fractions"])) for i, s in enumerate(data["schedules"])),
        "number of fractions among the schedules",
    )
    schedules = []
    for i, s in enumerate(data["schedules"]):
        dose = s["dose"]
        if not (set(dose) == {"value"} or set(dose) == {"low", "high"}):
            check.add(
                ("schedules", i, "dose"),
                "a dose is either one value or a range",
                "{value: 24} or {low: 18, high: 24}",
                "knowledge.table-dose",
            )
        elif "low" in dose and not dose["low"] < dose["high"]:
            check.add(
                ("schedules", i, "dose"),
                f"the range {dose['low']}-{dose['high']} is empty or reversed",
                "low below high",
                "knowledge.table-dose",
            )
        schedules.append(
            Schedule(
                s["id"], s["label"], s["fractions"], dose.get("value"), dose.get("low"), dose.get("high")
            )
        )
    schedule_ids = [s.id for s in schedules]
    check.unique(((("rows", i, "id"), r["id"]) for i, r in enumerate(data["rows"])), "row id")
    check.unique(
        ((("rows", i, "prior_course"), str(r["prior_course"])) for i, r in enumerate(data["rows"])),
        "earlier course",
    )
    rows = []
    for i, r in enumerate(data["rows"]):
        base: tuple[str | int, ...] = ("rows", i)
        none_row = r["prior_course"] == "none"
        if none_row and "stated_eqd2" in r:
            check.add(
                (*base, "stated_eqd2"),
                "the row without an earlier course cannot state its 2 Gy-equivalent",
                "stated_eqd2 only on a row with an earlier course",
                "knowledge.table-row",
            )
        cells = []
        for j, c in enumerate(r["cells"]):
            at = (*base, "cells", j)
            if c["schedule"] not in schedule_ids:
                check.add(
                    (*at, "schedule"),
                    f"unknown schedule '{c['schedule']}'",
                    ", ".join(schedule_ids),
                    "knowledge.table-cell",
                )
            check.ref((*at, "provenance", "ref"), c["provenance"]["ref"], refs)
            figures = [k for k in ("value", "range") if k in c]
            if c["available"] and len(figures) != 1:
                check.add(
                    at,
                    "an available cell needs exactly one of value or range",
                    "value: 12.2, or range: {low: 12.4, high: 14}",
                    "knowledge.table-cell",
                )
            if not c["available"] and (figures or "cauda_equina" in c):
                check.add(
                    at,
                    "a cell that is not available gives no figure",
                    "available: false with provenance only",
                    "knowledge.table-cell",
                )
            rng = c.get("range")
            if rng is not None and not rng["low"] < rng["high"]:
                check.add(
                    (*at, "range"),
                    f"the range {rng['low']}-{rng['high']} is empty or reversed",
                    "low below high",
                    "knowledge.table-cell",
                )
            cells.append(
                Cell(
                    c["schedule"],
                    c["available"],
                    Provenance.of(c["provenance"]),
                    c.get("value"),
                    rng["low"] if rng else None,
                    rng["high"] if rng else None,
                    c.get("cauda_equina"),
                )
            )
        check.unique(
            (((*base, "cells", j, "schedule"), c.schedule) for j, c in enumerate(cells)),
            "schedule within a row",
        )
        missing = [s for s in schedule_ids if s not in {c.schedule for c in cells}]
        if missing:
            check.add(
                (*base, "cells"),
                f"no cell for the schedule(s) {', '.join(missing)}",
                "one cell per schedule (available: false where the table gives none)",
                "knowledge.table-cell",
            )
        prior = None if none_row else r["prior_course"]
        rows.append(
            Row(
                r["id"],
                r["label"],
                None if prior is None else float(prior["dose"]),
                None if prior is None else int(prior["fractions"]),
                r.get("stated_eqd2"),
                tuple(cells),
            )
        )
    _raise(check)
    return Table(
        str(path),
        data["id"],
        data["title"],
        data["ref"],
        data["locator"],
        data["quantity"],
        data["unit"],
        tuple(data["structures"]),
        tuple((n["text"], Provenance.of(n["provenance"])) for n in data["footnotes"]),
        tuple(schedules),
        tuple(rows),
        tuple(data.get("decisions", ())),
    )


# --- structured assessment ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AssessmentItem:
    id: str
    text: str
    case_fields: tuple[str, ...]
    coverage: str | None = None
    note: str | None = None

    @property
    def captured(self) -> bool:
        return bool(self.case_fields)


@dataclass(frozen=True)
class Domain:
    id: str
    title: str
    items: tuple[AssessmentItem, ...]


@dataclass(frozen=True)
class Assessment:
    file: str
    id: str
    title: str
    source: Provenance
    domains: tuple[Domain, ...]

    def items(self) -> list[AssessmentItem]:
        return [item for d in self.domains for item in d.items]


def _resolve(node: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        target: Any = root
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
    return node


def case_field_exists(path: str) -> bool:
    """Whether a dotted path ('lesion.hardware.failure', 'prior_courses[].technique') names a field of the case
    format (schemas/case.schema.json); '[]' steps into the items of a list."""
    root = load_schema("case.schema.json")
    node = _resolve(root, root)
    for part in path.split("."):
        name, into_list = (part[:-2], True) if part.endswith("[]") else (part, False)
        props = node.get("properties", {})
        if name not in props:
            return False
        node = _resolve(props[name], root)
        if into_list:
            if node.get("type") != "array":
                return False
            node = _resolve(node.get("items", {}), root)
    return True


def load_assessment(root: Path | str | None = None) -> Assessment:
    """rules/assessment/noms-acr.yaml, validated (every case field must exist in the case format)."""
    path, data, lines, refs = _read(root, ASSESSMENT_FILE, "assessment.schema.json")
    check = _Checker(str(path), lines)
    check.ref(("source", "ref"), data["source"]["ref"], refs)
    check.unique(((("domains", i, "id"), d["id"]) for i, d in enumerate(data["domains"])), "domain id")
    check.unique(
        (
            (("domains", i, "items", j, "id"), it["id"])
            for i, d in enumerate(data["domains"])
            for j, it in enumerate(d["items"])
        ),
        "item id",
    )
    domains = []
    for i, d in enumerate(data["domains"]):
        items = []
        for j, it in enumerate(d["items"]):
            at: tuple[str | int, ...] = ("domains", i, "items", j)
            fields = it["case_fields"]
            if fields == NOT_CAPTURED:
                if "coverage" in it:
                    check.add(
                        (*at, "coverage"),
                        "coverage is given for an item the case format does not capture",
                        "no coverage when case_fields is 'not captured by the case format'",
                        "knowledge.assessment",
                    )
                fields = []
            else:
                for k, name in enumerate(fields):
                    if not case_field_exists(name):
                        check.add(
                            (*at, "case_fields", k),
                            f"'{name}' is not a field of the case format",
                            "a path into schemas/case.schema.json, e.g. lesion.bilsky_grade",
                            "knowledge.case-field",
                        )
                if "coverage" not in it:
                    check.add(
                        (*at, "coverage"),
                        "required field is missing when case fields are named",
                        '"full", "partial"',
                        "knowledge.assessment",
                    )
                elif it["coverage"] == "partial" and "note" not in it:
                    check.add(
                        (*at, "note"),
                        "a partial coverage needs a note on what the fields leave out",
                        "note: what the case does not record",
                        "knowledge.assessment",
                    )
            items.append(
                AssessmentItem(it["id"], it["text"], tuple(fields), it.get("coverage"), it.get("note"))
            )
        domains.append(Domain(d["id"], d["title"], tuple(items)))
    _raise(check)
    return Assessment(str(path), data["id"], data["title"], Provenance.of(data["source"]), tuple(domains))


# --- radioresistant histology lists ---------------------------------------------------------------------------------


def normalise(text: str) -> str:
    """Lower-case; every run of characters other than a-z and 0-9 becomes one space; no leading or trailing space."""
    return " ".join(re.findall(r"[a-z0-9]+", text.lower()))


@dataclass(frozen=True)
class Negation:
    """Cues that negate a match: ``before`` a term (up to ``window_before`` words between), ``after`` it (up to
    ``window_after`` words between), within one clause; a ``pseudo`` phrase only looks like a cue."""

    before: tuple[str, ...] = ()
    after: tuple[str, ...] = ()
    pseudo: tuple[str, ...] = ()
    window_before: int = 5
    window_after: int = 2

    def negated(self, words: list[str], start: int, end: int) -> bool:
        """Whether the term at ``words[start:end]`` is reached by a cue of its clause (``words``)."""
        pseudo = _spans(words, self.pseudo)

        def cues(phrases: tuple[str, ...]) -> list[tuple[int, int]]:
            return [
                s for s in _spans(words, phrases) if not any(p[0] <= s[0] and s[1] <= p[1] for p in pseudo)
            ]

        return any(b <= start and start - b <= self.window_before for _, b in cues(self.before)) or any(
            end <= a and a - end <= self.window_after for a, _ in cues(self.after)
        )


def _spans(words: list[str], phrases: tuple[str, ...]) -> list[tuple[int, int]]:
    """Every (start, end) word span where one of the phrases (normalised) occurs as whole words."""
    out = []
    for phrase in phrases:
        target = normalise(phrase).split()
        n = len(target)
        out += [(i, i + n) for i in range(len(words) - n + 1) if n and words[i : i + n] == target]
    return out


_CLAUSE = re.compile(r"[.;:!?\n]+|\bbut\b|\bhowever\b", re.IGNORECASE)
"""Clause boundaries: a negation never reaches across them."""


@dataclass(frozen=True)
class ListEntry:
    id: str
    name: str
    words: tuple[str, ...] = ()
    parts: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()

    def matched_term(self, histology: str, negation: Negation | None = None) -> str | None:
        """The first term (words before parts, in file order) that matches the text and is not negated, or None.

        The text is split into clauses and each normalised; each exclusion is blanked out of a clause wherever it
        occurs; a word term must then occur as whole words, a part term anywhere; an occurrence that a negation
        cue of its clause reaches does not count (see the `matching.rule` of the list file).
        """
        clauses = []
        for raw in _CLAUSE.split(histology):
            text = normalise(raw)
            for term in self.exclude:
                text = text.replace(normalise(term), " ")
            clauses.append(text.split())
        for term in self.words:
            for words in clauses:
                if any(
                    negation is None or not negation.negated(words, a, b) for a, b in _spans(words, (term,))
                ):
                    return term
        for term in self.parts:
            part = normalise(term)
            for words in clauses:
                text = " ".join(words)
                at = [i for i in range(len(text)) if text.startswith(part, i)]
                for i in at:
                    a = text[:i].count(" ")
                    b = a + part.count(" ") + 1
                    if negation is None or not negation.negated(words, a, b):
                        return term
        return None


@dataclass(frozen=True)
class HistologyList:
    id: str
    title: str
    source: Provenance
    entries: tuple[ListEntry, ...]


@dataclass(frozen=True)
class HistologyLists:
    file: str
    rule: str
    decisions: tuple[str, ...]
    lists: tuple[HistologyList, ...]
    negation: Negation = Negation()

    def match(self, histology: str) -> list[tuple[str, ListEntry]]:
        return [
            (lst.id, e)
            for lst in self.lists
            for e in lst.entries
            if e.matched_term(histology, self.negation) is not None
        ]


def load_histology_lists(root: Path | str | None = None) -> HistologyLists:
    """rules/lists/radioresistant-histologies.yaml, validated."""
    path, data, lines, refs = _read(root, LISTS_FILE, "list.schema.json")
    check = _Checker(str(path), lines)
    check.unique(((("lists", i, "id"), lst["id"]) for i, lst in enumerate(data["lists"])), "list id")
    lists = []
    for i, lst in enumerate(data["lists"]):
        check.ref(("lists", i, "source", "ref"), lst["source"]["ref"], refs)
        check.unique(
            ((("lists", i, "entries", j, "id"), e["id"]) for j, e in enumerate(lst["entries"])),
            "entry id within a list",
        )
        entries = []
        for j, e in enumerate(lst["entries"]):
            at: tuple[str | int, ...] = ("lists", i, "entries", j)
            if not e.get("words") and not e.get("parts"):
                check.add(
                    at, "the entry has no term to match", "words: [...] or parts: [...]", "knowledge.list"
                )
            for kind in ("words", "parts", "exclude"):
                for k, term in enumerate(e.get(kind, ())):
                    if not normalise(term):
                        check.add(
                            (*at, kind, k),
                            f"the term {term!r} has no letter or digit and can never match",
                            "a term with letters or digits",
                            "knowledge.list",
                        )
            entries.append(
                ListEntry(
                    e["id"],
                    e["name"],
                    tuple(e.get("words", ())),
                    tuple(e.get("parts", ())),
                    tuple(e.get("exclude", ())),
                )
            )
        lists.append(HistologyList(lst["id"], lst["title"], Provenance.of(lst["source"]), tuple(entries)))
    _raise(check)
    neg = data["matching"].get("negation", {})
    negation = Negation(
        tuple(neg.get("before", ())),
        tuple(neg.get("after", ())),
        tuple(neg.get("pseudo", ())),
        int(neg.get("window_before", Negation.window_before)),
        int(neg.get("window_after", Negation.window_after)),
    )
    return HistologyLists(
        str(path),
        data["matching"]["rule"],
        tuple(data["matching"].get("decisions", ())),
        tuple(lists),
        negation,
    )


@cache
def _default_lists(root: str) -> HistologyLists:
    return load_histology_lists(root)


def match_radioresistant(histology: str, lists: HistologyLists | None = None) -> list[tuple[str, ListEntry]]:
    """(list id, entry) for every entry of every radioresistant list that the free-text histology matches, in the
    order of the file; empty when none does. Uses the bundled lists unless others are given."""
    found = lists if lists is not None else _default_lists(str(default_pack_dir()))
    return found.match(histology)
