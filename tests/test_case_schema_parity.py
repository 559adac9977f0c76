"""schemas/case.schema.json and the pydantic model reirrad.case.Case accept and reject the same documents.

The two are twins: the schema is the published contract (and gives the messages), the model is what
the engine reads. A document one accepts and the other refuses is a bug in one of them. They are
compared over every gallery file that parses as YAML, the valid example, a few thousand synthetic cases
(reirrad.testing.synth) and deterministic mutations of those (keys dropped or added, types swapped, numbers
pushed out of range, booleans for numbers, numbers for text, field names for aliases, nulls, empty
containers, near-miss text).

Only the structural layer is compared. The semantic checks in reirrad.case (cGy typed as Gy, DVH order,
dates in order) compare fields with each other, which a JSON Schema cannot express; they run after both
and are a separate layer on purpose, so a mutation that only breaks them counts as "accepted" here.

The domain is JSON documents: numbers are finite. NaN and infinity have no JSON form, so the schema
cannot speak of them; the YAML loader refuses them before either layer runs, and the model refuses them
too (last test).
"""

from __future__ import annotations

import copy
import random
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError
from reirrad.case import Case
from reirrad.errors import InputError
from reirrad.load.validation import validator_for
from reirrad.load.yamlio import load_yaml_file, load_yaml_text
from reirrad.testing.synth import synth_cases

ROOT = Path(__file__).parents[1]
EXAMPLE = ROOT / "docs" / "examples" / "t1-chondrosarcoma.yaml"
GALLERY = Path(__file__).parent / "gallery" / "cases"

Path_ = tuple[str | int, ...]


def schema_accepts(doc: Any) -> bool:
    return bool(validator_for("case.schema.json").is_valid(doc))


def model_accepts(doc: Any) -> bool:
    try:
        Case.model_validate(doc)
    except ValidationError:
        return False
    return True


def verdicts(doc: Any) -> tuple[bool, bool]:
    return schema_accepts(doc), model_accepts(doc)


# --- a small deterministic mutator -------------------------------------------------------------------------


def walk(doc: Any, path: Path_ = ()) -> Iterator[tuple[Path_, Any]]:
    yield path, doc
    if isinstance(doc, dict):
        for key, value in doc.items():
            yield from walk(value, (*path, key))
    elif isinstance(doc, list):
        for i, value in enumerate(doc):
            yield from walk(value, (*path, i))


def get(doc: Any, path: Path_) -> Any:
    for part in path:
        doc = doc[part]
    return doc


def put(doc: Any, path: Path_, value: Any) -> Any:
    if not path:
        return value
    get(doc, path[:-1])[path[-1]] = value
    return doc


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


OTHER_TYPES: list[Any] = [
    None,
    True,
    False,
    0,
    1,
    -1,
    2.5,
    10.0,
    "",
    "x",
    "10",
    "T1",
    [],
    {},
    ["T1"],
    {"Dmax": 1},
]
OUT_OF_RANGE: list[Any] = [-1, -0.001, 0, 0.0, 0.5, 4, 5, 18, 19, 120, 121, 10**9, 10**20, 1e308, -(10**9)]
TEXT_EDITS: list[Callable[[str], str]] = [
    lambda s: s + "\n",
    lambda s: s + " ",
    lambda s: " " + s,
    lambda s: "",
    lambda s: s.lower(),
    lambda s: s.upper(),
    lambda s: s + "x",
    lambda s: s[:-1],
    lambda s: s.replace("-", "/"),
    lambda s: "x" * 70,
    lambda s: "2015-02-30",
    lambda s: "2015-1-5",
    lambda s: "2015-01-05T00:00:00",
    lambda s: "é" + s,
]
EXTRA_KEYS = [
    "name",
    "extra",
    "Dmax ",
    "D0_03cc",
    "D2cc",
    "schema_",
    "SpinalCord",
    "Cord",
    "dosimetry",
    "end",
    "ptv_high_dmin",
    "unit",
    "patient",
]
ALIASES = {"D0.03cc": "D0_03cc", "D0.1cc": "D0_1cc", "schema": "schema_"}


def mutate(doc: dict[str, Any], rng: random.Random) -> tuple[str, dict[str, Any]]:
    """One mutation of a copy of ``doc``; returns a label (for failure messages) and the new document."""
    doc = copy.deepcopy(doc)
    nodes = list(walk(doc))
    mappings = [(p, v) for p, v in nodes if isinstance(v, dict)]
    leaves = [(p, v) for p, v in nodes if p and not isinstance(v, dict | list)]
    kind = rng.choice(
        [
            "drop",
            "add",
            "alias",
            "swap",
            "range",
            "bool",
            "int-for-text",
            "integral-float",
            "text",
            "null",
            "empty",
            "wrap",
            "unwrap",
            "dosimetry",
        ]
    )
    if kind == "drop" and (keyed := [(p, v) for p, v in mappings if v]):
        path, mapping = rng.choice(keyed)
        key = rng.choice(sorted(mapping))
        del mapping[key]
        return f"drop {(*path, key)}", doc
    if kind == "add":
        path, mapping = rng.choice(mappings)
        key = rng.choice(EXTRA_KEYS)
        mapping[key] = rng.choice([*OTHER_TYPES, "unavailable", "2015-01-01", {"dose": 1, "fractions": 1}])
        return f"add {(*path, key)}", doc
    if kind == "alias" and (aliased := [(p, v) for p, v in mappings if set(v) & set(ALIASES)]):
        path, mapping = rng.choice(aliased)
        key = rng.choice(sorted(set(mapping) & set(ALIASES)))
        mapping[ALIASES[key]] = mapping.pop(key)
        return f"alias {(*path, key)}", doc
    if kind == "swap":
        path, _ = rng.choice([n for n in nodes if n[0]])
        value = copy.deepcopy(rng.choice(OTHER_TYPES))
        return f"swap {path} -> {value!r}", put(doc, path, value)
    numbers = [(p, v) for p, v in leaves if is_number(v)]
    texts = [(p, v) for p, v in leaves if isinstance(v, str)]
    if kind == "range" and numbers:
        path, _ = rng.choice(numbers)
        value = rng.choice(OUT_OF_RANGE)
        return f"range {path} -> {value!r}", put(doc, path, value)
    if kind == "bool" and numbers:
        path, _ = rng.choice(numbers)
        return f"bool {path}", put(doc, path, rng.choice([True, False]))
    if kind == "int-for-text" and texts:
        path, _ = rng.choice(texts)
        value = rng.choice([0, 1, 2, 3, 1.0, 2.5])
        return f"int-for-text {path} -> {value!r}", put(doc, path, value)
    if kind == "integral-float" and numbers:
        path, value = rng.choice(numbers)
        new = float(value) if isinstance(value, int) else float(round(value)) + rng.choice([0.0, 0.5])
        return f"integral-float {path} -> {new!r}", put(doc, path, new)
    if kind == "text" and texts:
        path, value = rng.choice(texts)
        new = rng.choice(TEXT_EDITS)(value)
        return f"text {path} -> {new!r}", put(doc, path, new)
    if kind == "null":
        path, _ = rng.choice([n for n in nodes if n[0]])
        return f"null {path}", put(doc, path, None)
    if kind == "empty":
        containers = [(p, v) for p, v in nodes if p and isinstance(v, dict | list)]
        path, value = rng.choice(containers)
        return f"empty {path}", put(doc, path, type(value)())
    if kind == "wrap":
        path, value = rng.choice([n for n in nodes if n[0]])
        return f"wrap {path}", put(doc, path, [value])
    if kind == "unwrap" and (lists := [(p, v) for p, v in nodes if p and isinstance(v, list) and v]):
        path, value = rng.choice(lists)
        return f"unwrap {path}", put(doc, path, value[0])
    priors = doc.get("prior_courses")
    dicts = [c for c in priors if isinstance(c, dict)] if isinstance(priors, list) else []
    if kind == "dosimetry" and dicts:
        prior = rng.choice(dicts)
        prior["dosimetry"] = rng.choice(["unavailable", "available"])
        if rng.random() < 0.5:
            prior.pop("structures", None)
        return f"dosimetry {prior.get('dosimetry')} structures={'structures' in prior}", doc
    return "unchanged", doc


def mutants(n: int, seed: int, per_case: int) -> list[tuple[str, dict[str, Any]]]:
    rng = random.Random(seed)
    out = []
    for i, case in enumerate(synth_cases(n, seed)):
        for j in range(per_case):
            label, doc = mutate(case, rng)
            if j % 3 == 2:  # every third mutant carries a second mutation
                second, doc = mutate(doc, rng)
                label = f"{label}; {second}"
            out.append((f"case {i} mutant {j}: {label}", doc))
    return out


# --- the comparisons ---------------------------------------------------------------------------------------


def disagreements(docs: list[tuple[str, Any]]) -> list[str]:
    out = []
    for label, doc in docs:
        schema, model = verdicts(doc)
        if schema != model:
            said = {True: "accepts", False: "rejects"}
            out.append(f"{label}: schema {said[schema]}, model {said[model]}")
    return out


def test_the_valid_example_is_accepted_by_both() -> None:
    data, _ = load_yaml_file(EXAMPLE)
    assert verdicts(data) == (True, True)


def test_gallery_files_that_parse_get_the_same_verdict() -> None:
    docs = []
    for path in sorted(GALLERY.glob("*.yaml")):
        if path.name == "expected.yaml":
            continue
        try:
            data, _ = load_yaml_file(path)
        except InputError:
            continue  # not YAML (or refused by the loader): neither layer ever sees it
        docs.append((path.name, data))
    assert len(docs) >= 40
    assert disagreements(docs) == []
    # the structural problems of the gallery are refused by both, the semantic ones accepted by both
    assert verdicts(dict(docs)["ecog-7.yaml"]) == (False, False)
    assert verdicts(dict(docs)["dmax-below-d003.yaml"]) == (True, True)


def test_synthetic_cases_are_accepted_by_both() -> None:
    docs = [(f"synthetic {i}", case) for i, case in enumerate(synth_cases(1000, seed=20250806))]
    assert disagreements(docs) == []
    assert all(schema_accepts(doc) for _, doc in docs[:50])


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_mutated_cases_get_the_same_verdict(seed: int) -> None:
    docs = mutants(150, seed, per_case=8)
    assert len(docs) == 1200
    found = disagreements(docs)
    assert found == [], f"{len(found)} disagreements, e.g.\n" + "\n".join(found[:15])
    # the mutator must exercise both sides: most mutants are refused, a fair number survive
    accepted = sum(schema_accepts(doc) for _, doc in docs)
    assert 0.05 * len(docs) < accepted < 0.6 * len(docs)


def test_the_mutator_is_deterministic() -> None:
    assert mutants(5, 7, per_case=4) == mutants(5, 7, per_case=4)
    assert mutants(5, 7, per_case=4) != mutants(5, 8, per_case=4)


def _example() -> dict[str, Any]:
    data, _ = load_yaml_file(EXAMPLE)
    assert isinstance(data, dict)
    return data


# Documents on which the two used to disagree (and the fix), plus a few near neighbours.
REGRESSIONS: list[tuple[str, Callable[[dict[str, Any]], Any], bool]] = [
    # JSON Schema counts 10.0 as an integer; the model used StrictInt and refused it -> model reads it as 10
    ("ecog 1.0", lambda d: d["patient"].__setitem__("ecog", 1.0), True),
    ("fractions 10.0", lambda d: d["prior_courses"][0]["prescription"].__setitem__("fractions", 10.0), True),
    ("fractions 10.5", lambda d: d["prior_courses"][0]["prescription"].__setitem__("fractions", 10.5), False),
    # Python's re lets "$" match before a final newline; the schema's patterns are ECMA-262 -> validator fixed
    ("case_id with newline", lambda d: d.__setitem__("case_id", "abc\n"), False),
    # the model read an explicit null as "not given"; the schema refuses null -> model refuses it too
    ("patient null", lambda d: d.__setitem__("patient", None), False),
    ("sins null", lambda d: d["lesion"].__setitem__("sins", None), False),
    (
        "Dmax null beside D1cc",
        lambda d: d["prior_courses"][0]["structures"]["SpinalCord"].update({"Dmax": None, "D1cc": 20.0}),
        False,
    ),
    ("prior structures null", lambda d: d["prior_courses"][0].__setitem__("structures", None), False),
    # populate_by_name let the model read Python field names the schema does not know -> aliases only
    (
        "D0_03cc for D0.03cc",
        lambda d: d["planned_course"]["structures"]["SpinalCord"].__setitem__(
            "D0_03cc", d["planned_course"]["structures"]["SpinalCord"].pop("D0.03cc")
        ),
        False,
    ),
    ("schema_ for schema", lambda d: d.__setitem__("schema_", d.pop("schema")), False),
    # both accepted an empty structures mapping (a planned course with no organ doses) -> both refuse it now
    ("planned structures empty", lambda d: d["planned_course"].__setitem__("structures", {}), False),
    ("prior structures empty", lambda d: d["prior_courses"][0].__setitem__("structures", {}), False),
    ("prior structures left out", lambda d: d["prior_courses"][0].pop("structures"), True),
]


@pytest.mark.parametrize(("label", "change", "accepted"), REGRESSIONS, ids=[r[0] for r in REGRESSIONS])
def test_former_disagreements(label: str, change: Callable[[dict[str, Any]], Any], accepted: bool) -> None:
    doc = _example()
    change(doc)
    assert verdicts(doc) == (accepted, accepted), label


@pytest.mark.parametrize("text", [".inf", "-.inf", ".nan", ".NaN"])
def test_non_finite_numbers_are_refused_before_either_layer(text: str) -> None:
    with pytest.raises(InputError, match="not a finite number"):
        load_yaml_text(f"ptv_high_dmin: {text}\n", "f.yaml")
    doc = _example()
    doc["planned_course"]["ptv_high_dmin"] = float(text.lower().lstrip("-").replace(".", "")) * (
        -1 if text.startswith("-") else 1
    )
    assert model_accepts(doc) is False


_COMPONENTS = {"location": 1, "pain": 3, "bone_lesion": 2, "alignment": 0, "collapse": 1, "posterolateral": 0}


@pytest.mark.parametrize(
    ("section", "key", "value", "accepted"),
    [
        ("lesion", "sins_components", {**_COMPONENTS, "location": True}, False),
        ("lesion", "sins_components", {**_COMPONENTS, "location": 1.0}, True),
        ("lesion", "sins_components", {**_COMPONENTS, "pain": 2}, False),
        ("lesion", "sins_components", {**_COMPONENTS, "pain": "3"}, False),
        ("lesion", "sins_components", {k: v for k, v in _COMPONENTS.items() if k != "collapse"}, False),
        ("lesion", "hardware", {"present": True, "failure": 1}, False),
        ("lesion", "hardware", {"failure": True}, False),
        ("lesion", "extent", "systemic", False),
        ("lesion", "neurologic_deficit", 1, False),
        ("patient", "systemic_disease", {"status": "unknown"}, False),
        ("patient", "systemic_disease", {"brain_metastases": 0}, False),
        ("patient", "kps", 105, False),
        ("patient", "kps", 70.0, True),
    ],
)
def test_assessment_fields_agree(section: str, key: str, value: object, accepted: bool) -> None:
    """The optional assessment fields (issue 3): schema and model give the same verdict, the expected one."""
    doc, _ = load_yaml_file(EXAMPLE)
    doc[section][key] = value
    assert (schema_accepts(doc), model_accepts(doc)) == (accepted, accepted)


def test_every_schema_is_a_valid_2020_12_schema() -> None:
    """The meta-schema check the commands no longer run at start-up (reirrad.load.validation.validator_for)."""
    import json

    import jsonschema
    from jsonschema import Draft202012Validator

    schemas = sorted((Path(__file__).resolve().parents[1] / "schemas").glob("*.json"))
    assert len(schemas) >= 4
    for path in schemas:
        Draft202012Validator.check_schema(json.loads(path.read_text(encoding="utf-8")))
    broken = {"$schema": "https://json-schema.org/draft/2020-12/schema", "type": "objekt"}
    with pytest.raises(jsonschema.SchemaError):
        Draft202012Validator.check_schema(broken)
