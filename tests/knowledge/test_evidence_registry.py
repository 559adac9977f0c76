"""The evidence registry (rules/evidence/studies.yaml): every study of the source tables, figures as published."""

from __future__ import annotations

import re

import pytest
from knowledge_helpers import RULES, SOURCES
from reirrad.knowledge.data import NOT_GRADED, REQUIRED_STUDY_FIELDS, STUDY_FIELDS, load_evidence
from reirrad.load.yamlio import load_yaml_file

MYREHAUG_GRADE = {  # Myrehaug 2017, Table 3, column "Study Quality (GRADE)"
    "sahgal-2009": "Very low",
    "choi-2010": "Very low",
    "garg-2011": "Low",
    "damast-2011": "Very low",
    "mahadevan-2011": "Very low",
    "ahmed-2012": "Low",
    "chang-2012": "Very low",
    "thibault-2014": "Low",
    "thibault-2015": "Low",
}
KOTECHA_TABLE2 = {
    "chow-2014",
    "huisman-2012",
    "rades-2005",
    "garg-2011",
    "thibault-2015",
    "myrehaug-2017",
    "ito-2018",
}
SERIES = {"sbrt-reirradiation-series", "lucido-2025", "milker-zabel-2003"}
POLICY_SOURCES = {"nieder-2006"}
"""Studies behind a policy of the pack rather than one of the source tables (the conventional cord policy)."""

REGISTRY = load_evidence(RULES)


def test_every_study_of_the_source_tables_is_there_once() -> None:
    ids = REGISTRY.ids()
    assert len(ids) == len(set(ids)) == 18
    assert set(ids) == set(MYREHAUG_GRADE) | KOTECHA_TABLE2 | SERIES | POLICY_SOURCES


def test_grade_is_exactly_myrehaug_table_3_and_nothing_else_is_graded() -> None:
    for study in REGISTRY.studies:
        if study.id in MYREHAUG_GRADE:
            assert (study.quality.grade, study.quality.scale, study.quality.ref) == (
                MYREHAUG_GRADE[study.id],
                "GRADE",
                "myrehaug-2017",
            )
        else:
            assert study.quality.grade == NOT_GRADED, study.id
            assert study.quality.source_kind and study.quality.scale is None
            assert study.quality.label().startswith("not graded (")


def test_a_study_in_both_tables_is_one_entry_with_both_locators_and_both_versions() -> None:
    for study_id in ("garg-2011", "thibault-2015"):
        study = REGISTRY.study(study_id)
        assert [p.ref for p in study.sources] == ["myrehaug-2017", "kotecha-2020"]
        assert "Table 2" in study.sources[1].locator and "Tables 3, 4 and 5" in study.sources[0].locator
        for name in REQUIRED_STUDY_FIELDS:
            assert set(study.reported(name)) == {"myrehaug-2017", "kotecha-2020"}, (study_id, name)
    garg = REGISTRY.study("garg-2011")
    assert garg.reported("design") == {
        "myrehaug-2017": "prospective phase I/II",
        "kotecha-2020": "case series",
    }


def test_figures_spot_checked_against_the_tables() -> None:
    assert (
        REGISTRY.study("sahgal-2009").reported("local_control")["myrehaug-2017"].startswith("82% at 1 year")
    )
    assert REGISTRY.study("damast-2011").reported("vcf") == {"myrehaug-2017": "9 fractures"}
    assert REGISTRY.study("chow-2014").reported("patients") == {"kotecha-2020": 237}
    assert REGISTRY.study("thibault-2014").reported("survival") == {"myrehaug-2017": "not reported"}
    assert REGISTRY.study("ito-2018").reported("local_control") == {"kotecha-2020": "70% at 1 year"}
    assert REGISTRY.study("myrehaug-2017").reported("targets") == {
        "kotecha-2020": 447,
        "myrehaug-2017": "411 treated spinal segments",
    }
    assert REGISTRY.study("sahgal-2009").citation_text == "Sahgal et al., 2009"


_SPELLED = {
    "one": "1",
    "two": "2",
    "three": "3",
    "four": "4",
    "five": "5",
    "six": "6",
    "seven": "7",
    "eight": "8",
    "nine": "9",
    "ten": "10",
    "twelve": "12",
    "sixteen": "16",
    "eighteen": "18",
    "nineteen": "19",
}


PUBLISHED_ABSTRACT_NUMBERS: dict[str, set[str]] = {
    "nieder-2006": {
        "38",
        "2005",
        "1",
        "3",
        "25",
        "90",
        "6",
        "98",
        "120",
        "135.5",
        "2",
        "4",
        "50",
        "100",
        "75",
    },
}
"""The figures of sources encoded from their published abstract (no stored copy), read off PubMed 17084560."""


def _numbers(text: str) -> list[str]:
    """The numbers of a text, also those spelled out as words (the Milker-Zabel abstract writes "Eighteen")."""
    words = re.findall(r"[a-z]+", text.lower())
    return re.findall(r"\d+(?:\.\d+)?", text) + [_SPELLED[w] for w in words if w in _SPELLED]


@pytest.mark.skipif(
    not SOURCES.is_dir(), reason="the source documents (../shared/sources) are not beside this checkout"
)
def test_every_number_in_the_registry_occurs_in_the_source_it_is_attributed_to() -> None:
    """No figure is computed or mistyped: each number of a value appears in the text of the source named for it."""
    refs, _ = load_yaml_file(RULES / "references.yaml")
    numbers = {
        ref: set(_numbers((SOURCES / entry["source_file"]).read_text(encoding="utf-8")))
        for ref, entry in refs.items()
        if "source_file" in entry
    }
    numbers |= PUBLISHED_ABSTRACT_NUMBERS
    checked = 0
    for study in REGISTRY.studies:
        for name in STUDY_FIELDS:
            for ref, value in study.reported(name).items():
                for number in _numbers(str(value)):
                    assert number in numbers[ref], (
                        f"{study.id}.{name}[{ref}]: {number} is not in {ref}'s text"
                    )
                    checked += 1
    assert checked > 150


def test_not_reported_is_spelled_one_way() -> None:
    for study in REGISTRY.studies:
        for name in STUDY_FIELDS:
            for value in study.reported(name).values():
                assert str(value).lower() not in ("nr", "n/a", "na", "none reported", ""), (study.id, name)


def test_every_reference_the_registry_cites_exists() -> None:
    refs, _ = load_yaml_file(RULES / "references.yaml")
    assert REGISTRY.cited_refs() <= set(refs)
    assert {"myrehaug-2017", "milker-zabel-2003", "kotecha-2020", "lucido-2025"} <= REGISTRY.cited_refs()


def test_an_unknown_field_name_is_refused() -> None:
    with pytest.raises(KeyError, match="unknown study field"):
        REGISTRY.study("sahgal-2009").reported("toxicity")
