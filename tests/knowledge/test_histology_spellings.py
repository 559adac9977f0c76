"""Radioresistant histology matching on real-world spellings, abbreviations and negations (rules/lists/).

Each row is a spelling as it appears in clinical records, with the entries of the two source lists it must match
(Lucido 2025 names renal cell, hepatocellular, adrenocortical carcinoma, cholangiocarcinoma, melanoma and sarcoma;
Myrehaug 2017 sarcoma, renal cell carcinoma, non-small cell lung carcinoma, melanoma and gastrointestinal tract
tumours). Nothing the sources do not name may match, and a negated histology never does.
"""

from __future__ import annotations

import pytest
from reirrad.knowledge.data import match_radioresistant

L, M = "lucido-2025", "myrehaug-2017"
RCC = [(L, "renal-cell-carcinoma"), (M, "renal-cell-carcinoma")]
MELANOMA = [(L, "melanoma"), (M, "melanoma")]
SARCOMA = [(L, "sarcoma"), (M, "sarcoma")]
NSCLC = [(M, "non-small-cell-lung-carcinoma")]
GI = [(M, "gastrointestinal-tract")]
HCC = [(L, "hepatocellular-carcinoma")]

SPELLINGS: list[tuple[str, list[tuple[str, str]]]] = [
    # lung: non-small cell only, with the lung named
    ("lung adenocarcinoma", NSCLC),
    ("adenocarcinoma of lung", NSCLC),
    ("Adenocarcinoma of the lung", NSCLC),
    ("NSCLC", NSCLC),
    ("non-small cell lung cancer", NSCLC),
    ("Non small-cell lung carcinoma, adenocarcinoma subtype", NSCLC),
    ("squamous cell carcinoma of the lung", NSCLC),
    ("squamous cell carcinoma of lung", NSCLC),
    ("lung squamous cell carcinoma", NSCLC),
    ("pulmonary adenocarcinoma", NSCLC),
    ("large cell carcinoma of the lung", NSCLC),
    ("EGFR-mutant lung adenocarcinoma", NSCLC),
    ("lung adenocarcinoma, not otherwise specified", NSCLC),
    ("small cell lung cancer", []),
    # kidney
    ("renal cell", RCC),
    ("renal cell carcinoma", RCC),
    ("clear cell RCC", RCC),
    ("clear-cell renal cell carcinoma", RCC),
    ("papillary renal cell carcinoma", RCC),
    ("metastatic ccRCC", RCC),
    ("sarcomatoid renal cell carcinoma", RCC),
    ("renal carcinoma", []),
    ("kidney cancer", []),
    # liver, adrenal, bile ducts (Lucido 2025 only)
    ("hepatocellular", HCC),
    ("hepatocellular carcinoma", HCC),
    ("HCC", HCC),
    ("adrenocortical carcinoma", [(L, "adrenocortical-carcinoma")]),
    ("intrahepatic cholangiocarcinoma", [(L, "cholangiocarcinoma")]),
    # melanoma
    ("melanoma of skin", MELANOMA),
    ("cutaneous melanoma", MELANOMA),
    ("metastatic malignant melanoma", MELANOMA),
    ("uveal melanoma", MELANOMA),
    ("history of melanoma", MELANOMA),
    ("melanoma, no evidence of brain metastases", MELANOMA),
    ("multiple myeloma", []),
    ("non-melanoma skin cancer", []),
    # sarcoma
    ("chondrosarcoma", SARCOMA),
    ("leiomyosarcoma of the uterus", SARCOMA),
    ("Ewing sarcoma", SARCOMA),
    ("osteosarcoma", SARCOMA),
    ("undifferentiated pleomorphic sarcoma", SARCOMA),
    # gastrointestinal tract (Myrehaug 2017 only); GIST as a tumour of the tract (the pack's decision)
    ("GIST", GI),
    ("gastrointestinal stromal tumour", GI),
    ("colorectal adenocarcinoma", GI),
    ("adenocarcinoma of the rectum", GI),
    ("oesophageal squamous cell carcinoma", GI),
    ("gastric cancer", GI),
    # not radioresistant in either source, or no primary named
    ("breast carcinoma", []),
    ("prostate adenocarcinoma", []),
    ("adenocarcinoma", []),
    ("squamous cell carcinoma", []),
    ("carcinoma of unknown primary", []),
    # negations
    ("no evidence of melanoma", []),
    ("history of melanoma excluded", []),
    ("melanoma was ruled out; breast carcinoma", []),
    ("negative for renal cell carcinoma", []),
    ("breast cancer; melanoma excluded on biopsy", []),
    ("not melanoma", []),
    ("without evidence of sarcoma", []),
    ("RCC has been ruled out", []),
    ("renal cell carcinoma; no evidence of melanoma", RCC),
    ("melanoma excluded, renal cell carcinoma confirmed", RCC),
]


def test_the_table_has_forty_real_world_spellings() -> None:
    assert len(SPELLINGS) >= 40
    assert len({text.lower() for text, _ in SPELLINGS}) == len(SPELLINGS)


@pytest.mark.parametrize(("histology", "expected"), SPELLINGS)
def test_spelling(histology: str, expected: list[tuple[str, str]]) -> None:
    assert [(list_id, e.id) for list_id, e in match_radioresistant(histology)] == expected


def test_gist_is_not_on_the_lucido_list() -> None:
    """No source names GIST; it matches only as a gastrointestinal tract tumour (Myrehaug 2017), not as a sarcoma."""
    assert [list_id for list_id, _ in match_radioresistant("GIST of the stomach")] == [M]


def _ids(histology: str) -> list[tuple[str, str]]:
    return [(list_id, e.id) for list_id, e in match_radioresistant(histology)]


def test_a_negation_does_not_reach_across_clauses_or_beyond_its_window() -> None:
    assert _ids("no bone lesion. Melanoma") == MELANOMA
    assert _ids("no prior radiotherapy to the spine for this metastatic melanoma") == MELANOMA  # 8 words on
    assert _ids("no prior spine radiotherapy; melanoma") == MELANOMA
    assert _ids("no melanoma, sarcoma or RCC") == []  # one cue negates a list within its window
