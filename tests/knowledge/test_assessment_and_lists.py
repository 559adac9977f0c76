"""The NOMS / ACR assessment (rules/assessment) and the radioresistant histology lists (rules/lists)."""

from __future__ import annotations

import pytest
from knowledge_helpers import RULES, SOURCES
from reirrad.knowledge.data import (
    case_field_exists,
    load_assessment,
    load_histology_lists,
    match_radioresistant,
    normalise,
)

ASSESSMENT = load_assessment(RULES)
LISTS = load_histology_lists(RULES)


def test_the_six_domains_of_table_1_in_order_with_their_items() -> None:
    assert [(d.title, len(d.items)) for d in ASSESSMENT.domains] == [
        ("Recurrence factors", 5),
        ("Prior therapy", 5),
        ("Neurologic", 3),
        ("Oncologic", 3),
        ("Mechanical", 5),
        ("Systemic", 7),
    ]
    assert (ASSESSMENT.source.ref, ASSESSMENT.source.locator) == ("kotecha-2020", "Table 1")


def test_items_map_to_case_fields_or_say_they_are_not_captured() -> None:
    uncaptured = [i.id for i in ASSESSMENT.items() if not i.captured]
    assert uncaptured == [
        "recurrence-prior-response",
        "onc-response-durability",
        "sys-comorbidity",
        "sys-goals",
    ]
    by_id = {i.id: i for i in ASSESSMENT.items()}
    assert by_id["mech-sins"].case_fields == ("lesion.sins", "lesion.sins_components")
    assert by_id["sys-brain"].case_fields == ("patient.systemic_disease.brain_metastases",)
    assert by_id["prior-rt-tolerance"].case_fields == ("prior_courses[].tolerance",)
    for item in ASSESSMENT.items():
        assert all(case_field_exists(f) for f in item.case_fields)
        assert item.captured == (item.coverage in ("full", "partial"))
        if item.coverage == "partial":
            assert item.note


def test_case_field_paths() -> None:
    assert case_field_exists("lesion.hardware.failure")
    assert case_field_exists("prior_courses[].prescription")
    assert not case_field_exists("prior_courses.technique")  # a list needs []
    assert not case_field_exists("lesion.levels[].grade")
    assert not case_field_exists("patient.name")


def test_two_lists_because_the_sources_differ() -> None:
    names = {lst.id: [e.name for e in lst.entries] for lst in LISTS.lists}
    assert names == {
        "lucido-2025": [
            "renal cell carcinoma",
            "hepatocellular carcinoma",
            "adrenocortical carcinoma",
            "cholangiocarcinoma",
            "melanoma",
            "sarcoma",
        ],
        "myrehaug-2017": [
            "sarcoma",
            "renal cell carcinoma",
            "non-small cell lung carcinoma",
            "melanoma",
            "gastrointestinal tract tumours",
        ],
    }
    assert [(lst.source.ref, lst.source.locator) for lst in LISTS.lists] == [
        ("lucido-2025", "Methods, Data analysis and statistical methods (radioresistant histology)"),
        ("myrehaug-2017", "Results, Patient Selection"),
    ]


@pytest.mark.skipif(
    not SOURCES.is_dir(), reason="the source documents (../shared/sources) are not beside this checkout"
)
def test_list_names_are_the_sources_words() -> None:
    lucido = normalise((SOURCES / "002_ee80f4e932a9a8c0.txt").read_text(encoding="utf-8"))
    assert (
        "radioresistant histology renal cell carcinoma hepatocellular carcinoma adrenocortical carcinoma "
        "cholangiocarcinoma melanoma or sarcoma"
    ) in lucido
    text = (SOURCES / "001_27c29759c9d85f2f.txt").read_text(encoding="utf-8")
    # the stored copy breaks this sentence with a figure caption after "non–"
    section = normalise(
        text[text.index("Patient Selection") : text.index("Local Control and Overall Survival")]
    )
    assert "radio resistant including sarcoma renal cell carcinoma non" in section
    assert "small cell lung carcinoma melanoma and gastrointestinal tract tumors" in section


@pytest.mark.parametrize(
    ("histology", "expected"),
    [
        ("Chondrosarcoma", [("lucido-2025", "sarcoma"), ("myrehaug-2017", "sarcoma")]),
        ("Ewing's sarcoma", [("lucido-2025", "sarcoma"), ("myrehaug-2017", "sarcoma")]),
        (
            "clear-cell RCC",
            [("lucido-2025", "renal-cell-carcinoma"), ("myrehaug-2017", "renal-cell-carcinoma")],
        ),
        (
            "Renal Cell Carcinoma, papillary",
            [("lucido-2025", "renal-cell-carcinoma"), ("myrehaug-2017", "renal-cell-carcinoma")],
        ),
        (
            "sarcomatoid renal cell carcinoma",
            [("lucido-2025", "renal-cell-carcinoma"), ("myrehaug-2017", "renal-cell-carcinoma")],
        ),
        ("HCC", [("lucido-2025", "hepatocellular-carcinoma")]),
        ("adrenocortical carcinoma", [("lucido-2025", "adrenocortical-carcinoma")]),
        ("intrahepatic cholangiocarcinoma", [("lucido-2025", "cholangiocarcinoma")]),
        ("uveal melanoma", [("lucido-2025", "melanoma"), ("myrehaug-2017", "melanoma")]),
        ("non-melanoma skin cancer", []),
        ("NSCLC, adenocarcinoma", [("myrehaug-2017", "non-small-cell-lung-carcinoma")]),
        ("Non–small cell lung carcinoma", [("myrehaug-2017", "non-small-cell-lung-carcinoma")]),
        ("small cell lung carcinoma", []),
        ("adenocarcinoma", []),
        ("rectal adenocarcinoma", [("myrehaug-2017", "gastrointestinal-tract")]),
        ("breast IDC", []),
        ("prostate adenocarcinoma", []),
        ("", []),
    ],
)
def test_matching(histology: str, expected: list[tuple[str, str]]) -> None:
    assert [(list_id, e.id) for list_id, e in match_radioresistant(histology)] == expected


def test_matching_is_precise_about_words_and_parts() -> None:
    rcc = LISTS.lists[0].entries[0]
    assert rcc.matched_term("RCC") == "rcc"
    assert rcc.matched_term("xrccy") is None  # a word term never matches inside a word
    assert rcc.matched_term("renal   CELL") == "renal cell"  # case and spacing do not matter
    assert rcc.matched_term("renal-cell") == "renal cell"  # punctuation separates words
    sarcoma = LISTS.lists[0].entries[5]
    assert sarcoma.matched_term("leiomyosarcoma") == "sarcoma"  # a part matches inside a word
    assert sarcoma.matched_term("sarcomatoid carcinoma") is None  # the exclusion is blanked out first
    assert normalise("  Non–Small-Cell (NSCLC)! ") == "non small cell nsclc"
