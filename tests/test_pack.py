"""Sanity over the whole rule pack: identity, citations, evidence, coverage by test cases, own words."""

import json
import re
from collections import defaultdict
from pathlib import Path

import pytest
from reirrad.knowledge.data import load_assessment, load_evidence, load_histology_lists, load_table
from reirrad.knowledge.rulepack import load_pack, rule_id_for_path
from reirrad.logic.facts import CONTEXT_FACTS
from reirrad.testing.casetests import discover, load_bases, load_case_tests

ROOT = Path(__file__).resolve().parent.parent
RULES = ROOT / "rules"
SOURCES = ROOT.parent / "shared" / "sources"


@pytest.fixture(scope="module")
def pack():  # type: ignore[no-untyped-def]
    return load_pack(RULES)


def test_ids_are_unique_and_match_paths(pack) -> None:  # type: ignore[no-untyped-def]
    seen = defaultdict(list)
    for rule in pack.rules:
        seen[(rule.id, rule.version)].append(rule.source)
        assert rule.id == rule_id_for_path(Path(rule.source).relative_to(RULES))
    assert all(len(v) == 1 for v in seen.values()), seen


def test_every_citation_resolves_and_every_reference_is_used(pack) -> None:  # type: ignore[no-untyped-def]
    used = {c.ref for rule in pack.rules for c in rule.citations} | {
        c.ref for r in pack.repairs.values() for c in r.citations
    }
    # the knowledge data beside the rules cites references too (each loader has checked that its refs resolve)
    table = load_table(RULES)
    used |= load_evidence(RULES).cited_refs()
    used |= (
        {table.ref}
        | {p.ref for _, p in table.footnotes}
        | {c.provenance.ref for row in table.rows for c in row.cells}
    )
    used |= {load_assessment(RULES).source.ref}
    used |= {lst.source.ref for lst in load_histology_lists(RULES).lists}
    assert used <= set(pack.references)
    assert set(pack.references) - used == set(), "references nobody cites"
    for ref in pack.references.values():
        if ref.source_file is not None:
            assert ref.source_file[:3].isdigit() and ref.source_file.endswith(".txt")


def test_every_reference_is_complete_or_says_what_could_not_be_verified(pack) -> None:  # type: ignore[no-untyped-def]
    """Journal, year, volume and pages, with a DOI or PubMed id; what is missing is named in the entry's note."""
    for key, ref in pack.references.items():
        assert ref.title and ref.kind, key
        complete = ref.journal and ref.year and ref.volume and (ref.doi or ref.pmid)
        if not complete:
            assert ref.note and ("not" in ref.note or "neither" in ref.note), f"{key}: say what is unverified"
        if ref.source_file is None:  # encoded from a published record, not a stored copy
            assert ref.journal and ref.year and ref.volume and ref.note, key
    nieder = pack.references["nieder-2006"]
    assert (nieder.journal, nieder.year, nieder.volume, nieder.pmid) == (
        "Int J Radiat Oncol Biol Phys",
        2006,
        "66(5):1446-1449",
        "17084560",
    )


def test_evidence_is_graded_only_where_a_source_grades_it(pack) -> None:  # type: ignore[no-untyped-def]
    for rule in pack.rules:
        ev = rule.evidence
        if ev.quality_of_evidence == "not graded":
            assert ev.scale is None, rule.id
        else:
            assert ev.scale, f"{rule.id}: a level needs the scale that defines it"


def test_one_alpha_beta_per_rule(pack) -> None:  # type: ignore[no-untyped-def]
    for rule in pack.rules:
        if rule.quantity and "alpha_beta" in rule.quantity.parameters:
            assert isinstance(rule.quantity.parameters["alpha_beta"], int | float)
            assert re.findall(r"α/β = (\d+) Gy", rule.statement) in (
                [],
                [str(int(rule.quantity.alpha_beta))],
            ), rule.id


# Present whenever the case has a prior course, so a condition that also asks for a prior course never leaves
# them unknown.
_KNOWN_WITH_A_PRIOR = {"interval_months", "most_recent_prior_stereotactic"}


def _may_be_undecided(rule, pack) -> bool:  # type: ignore[no-untyped-def]
    """Whether the rule reads a case fact the case may leave out, or the outcome of a dose rule (whose doses the
    case may leave out). The interval is known whenever there is a prior course."""
    raw = json.dumps(rule.applies_when)
    optional = {name for name, spec in CONTEXT_FACTS.items() if not spec.always} - _KNOWN_WITH_A_PRIOR
    dose_rules = {
        r.id for r in pack.rules if r.quantity is not None and r.quantity.calculation != "interval_months"
    }
    return any(f'"{name}"' in raw for name in optional | dose_rules)


def test_every_rule_is_tested_on_both_sides(pack) -> None:  # type: ignore[no-untyped-def]
    bases = load_bases(RULES)
    statuses: dict[str, set[str]] = defaultdict(set)
    for path in discover(RULES):
        for test in load_case_tests(path, bases):
            for e in test.expect:
                statuses[e.rule].add(e.status)
    for rule in pack.rules:
        want = {"assumption": {"applied", "not_applicable"}, "recommendation": {"made", "not_made"}}.get(
            rule.kind, {"pass", "fail", "not_applicable"}
        )
        if rule.kind == "recommendation" and _may_be_undecided(rule, pack):
            want.add("indeterminate")
        assert want <= statuses[rule.id], f"{rule.id} lacks test cases for {sorted(want - statuses[rule.id])}"


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.lower())


@pytest.mark.skipif(
    not SOURCES.is_dir(), reason="the source documents (../shared/sources) are not beside this checkout"
)
def test_no_source_sentence_is_copied_into_the_pack() -> None:
    """Rule text is in the project's own words: no run of 10 words may appear verbatim in a source."""
    source_grams: set[tuple[str, ...]] = set()
    for path in SOURCES.glob("*.txt"):
        words = _words(path.read_text(encoding="utf-8"))
        source_grams.update(tuple(words[i : i + 10]) for i in range(len(words) - 9))
    for path in RULES.rglob("*"):
        if (
            path.suffix not in (".yaml", ".md")
            or path.name.endswith(".cases.yaml")
            or path.name == "references.yaml"
        ):
            continue
        words = _words(path.read_text(encoding="utf-8"))
        copied = [
            " ".join(words[i : i + 10])
            for i in range(len(words) - 9)
            if tuple(words[i : i + 10]) in source_grams
        ]
        assert not copied, f"{path.relative_to(ROOT)} repeats a source verbatim: {copied[0]!r}"


def test_a_recommendation_citing_an_unknown_study_is_refused_with_its_file_and_line(tmp_path: Path) -> None:
    import shutil

    from reirrad.errors import InputError

    pack = tmp_path / "rules"
    shutil.copytree(RULES, pack)
    rule = pack / "recommendations" / "isrs-2017" / "sbrt-after-sbrt.yaml"
    rule.write_text(
        rule.read_text(encoding="utf-8").replace(
            "supported_by: [thibault-2015]", "supported_by: [thibault-2051]"
        ),
        encoding="utf-8",
    )
    with pytest.raises(InputError) as refused:
        load_pack(pack)
    [problem] = refused.value.problems
    assert (problem.file, problem.path, problem.code) == (str(rule), ("supported_by", 0), "pack.supported-by")
    assert problem.message == "unknown study 'thibault-2051'"
    assert problem.line is not None and "thibault-2015" in problem.accepted


def test_no_rule_file_points_outside_the_project() -> None:
    """Rule files, test cases and knowledge data cite references.yaml entries, never files beside the checkout."""
    outside = re.compile(r"DOMAIN\.md|STYLE\.md|\.\./|/work/|shared/sources")
    found = [
        f"{p.relative_to(RULES)}:{i}"
        for p in sorted(RULES.rglob("*.yaml"))
        for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
        if outside.search(line)
    ]
    assert found == []
