"""Properties that hold for every input (issue 15), checked on a bounded Hypothesis run in CI (about 3,000
examples, under two minutes on the project's 2-core machines); tests/fuzz/long_run.py runs 100,000 and more.

- no traceback, ever: the CLI (in process) exits 0 or 2 on any bytes, and the library refuses with InputError;
- monotone in planned dose: doubling the planned organ doses never turns a policy's fail into a pass;
- cGy and Gy give the same verdicts;
- durable-rules and the reference engine fire the same rules;
- no pass with missing data.
"""

from __future__ import annotations

import copy
import shutil
import tempfile
from datetime import date
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml
from fuzz_strategies import (
    AS_OF,
    all_in_cgy,
    case_documents,
    doubled_planned_dose,
    hostile_yaml,
    mutated_documents,
    pass_without_data,
    rule_file_edits,
    seeded_case_documents,
    statuses,
    verdicts,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from reirrad.case import Case, case_problems
from reirrad.cli.main import main
from reirrad.errors import InputError
from reirrad.evaluate import Evaluator
from reirrad.knowledge.rulepack import load_pack

ROOT = Path(__file__).resolve().parents[2]
CI = settings(
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.function_scoped_fixture,
        HealthCheck.filter_too_much,
    ],
)
"""Deterministic in CI (the same examples every run; long_run.py explores new ones), no example database."""


def ci(examples: int) -> settings:
    return settings(CI, max_examples=examples)


@cache
def evaluator(engine: str = "durable", as_of: date = AS_OF) -> Evaluator:
    return Evaluator(None, as_of=as_of, engine=engine)


@cache
def default_pack_hash() -> str:
    return load_pack().content_sha256


def accepted(doc: Any) -> Case | None:
    case, problems = case_problems(doc, {}, "fuzz.yaml", AS_OF)
    assert (case is None) == bool(problems)
    return case


# --- no traceback ----------------------------------------------------------------------------------------------


@pytest.fixture
def cached_evaluators(monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI builds an Evaluator per call (about a second: the pack is loaded and compiled); here one per
    (date, engine) is reused, so that the run tries thousands of inputs. Everything else runs as in `reirrad`."""
    import reirrad.evaluate

    real = reirrad.evaluate.Evaluator

    def reuse(pack: Any, as_of: date | None = None, engine: str = "durable", **options: Any) -> Evaluator:
        # The CLI passes the pack it loaded (the project's own; the fuzzed command line has no --reading). The
        # evaluator also builds evaluators of its own (one per alternative reading): those are built as usual.
        if (pack is None or pack.content_sha256 == default_pack_hash()) and not any(options.values()):
            return evaluator(engine, as_of or AS_OF)
        return real(pack, as_of=as_of, engine=engine, **options)

    monkeypatch.setattr(reirrad.evaluate, "Evaluator", reuse)


@ci(600)
@given(raw=hostile_yaml(), fmt=st.sampled_from(["text", "markdown", "json"]))
def test_the_cli_never_shows_a_traceback(
    raw: bytes, fmt: str, cached_evaluators: None, capsys: pytest.CaptureFixture[str]
) -> None:
    with tempfile.TemporaryDirectory(prefix="reirrad-fuzz-") as tmp:
        path = Path(tmp) / "case.yaml"
        path.write_bytes(raw)
        code = main(["evaluate", str(path), "--as-of", AS_OF.isoformat(), "--format", fmt])
    out, err = capsys.readouterr()
    assert code in (0, 2), err
    assert "Traceback" not in err
    if code == 0:
        assert out
        assert err == ""
    else:
        assert out == ""
        assert err
        assert all(line.startswith(f"error: {path}") for line in err.splitlines()), err


@ci(600)
@given(doc=mutated_documents())
def test_the_loader_refuses_with_input_error_only(doc: dict[str, Any]) -> None:
    try:
        case, problems = case_problems(doc, {}, "fuzz.yaml", AS_OF)
    except InputError:  # never raised by case_problems: problems are returned
        pytest.fail("case_problems raised instead of returning its problems")
    if case is not None:
        evaluator().evaluate(case)
    for problem in problems:
        rendered = problem.render()
        assert "\n" not in rendered
        assert problem.message
        assert problem.accepted


# --- verdict properties -------------------------------------------------------------------------------------------


@ci(400)
@given(doc=seeded_case_documents())
def test_doubling_the_planned_dose_never_turns_fail_into_pass(doc: dict[str, Any]) -> None:
    case = accepted(doc)
    if case is None:
        return
    before = verdicts(evaluator().evaluate(case))
    doubled = accepted(doubled_planned_dose(doc))
    if doubled is None:
        return  # a refusal is not a pass
    after = verdicts(evaluator().evaluate(doubled))
    for policy, verdict in before.items():
        if verdict == "fail":
            assert after[policy] != "pass", policy


@ci(400)
@given(doc=seeded_case_documents(), which=st.lists(st.booleans(), min_size=4, max_size=4))
def test_cgy_and_gy_give_the_same_verdicts(doc: dict[str, Any], which: list[bool]) -> None:
    in_cgy = all_in_cgy(doc, which)
    case_gy, case_cgy = accepted(doc), accepted(in_cgy)
    assert (case_gy is None) == (case_cgy is None)
    if case_gy is None or case_cgy is None:
        return
    gy, cgy = evaluator().evaluate(case_gy), evaluator().evaluate(case_cgy)
    assert statuses(gy) == statuses(cgy)
    assert verdicts(gy) == verdicts(cgy)


@ci(400)
@given(doc=seeded_case_documents())
def test_durable_equals_the_reference_engine(doc: dict[str, Any]) -> None:
    _same_rules_fire(doc)


@ci(100)
@given(doc=case_documents())
def test_durable_equals_the_reference_engine_on_drawn_cases(doc: dict[str, Any]) -> None:
    """The same property on documents drawn choice by choice: slower to make, but a failure shrinks to a
    minimal document."""
    _same_rules_fire(doc)


def _same_rules_fire(doc: dict[str, Any]) -> None:
    case = accepted(doc)
    if case is None:
        return
    assert statuses(evaluator("durable").evaluate(case)) == statuses(evaluator("oracle").evaluate(case))


@ci(400)
@given(doc=seeded_case_documents(), drop=st.integers(0, 5))
def test_no_pass_with_missing_data(doc: dict[str, Any], drop: int) -> None:
    doc = copy.deepcopy(doc)
    if drop == 1 and doc["prior_courses"]:
        doc["prior_courses"][0].pop("structures", None)
    elif drop == 2:
        doc.pop("patient", None)
    elif drop == 3:
        planned = doc["planned_course"]["structures"]
        for name in list(planned)[:-1]:
            del planned[name]
    case = accepted(doc)
    if case is None:
        return
    assert pass_without_data(doc, evaluator().evaluate(case)) == []


# --- rule packs ---------------------------------------------------------------------------------------------------

RULE_FILES = sorted((ROOT / "rules" / "policies").rglob("*.yaml"))
RULE_FILES = [p for p in RULE_FILES if not p.name.endswith(".cases.yaml")]


@pytest.fixture(scope="module")
def pack_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("pack") / "rules"
    shutil.copytree(ROOT / "rules", target)
    return target


@ci(10)
@given(index=st.integers(0, len(RULE_FILES) - 1), data=st.data())
def test_a_damaged_rule_file_is_refused_cleanly(index: int, data: st.DataObject, pack_copy: Path) -> None:
    source = RULE_FILES[index]
    rel = source.relative_to(ROOT / "rules")
    original = yaml.safe_load(source.read_text(encoding="utf-8"))
    edited = data.draw(rule_file_edits(original))
    target = pack_copy / rel
    try:
        target.write_text(yaml.safe_dump(edited, allow_unicode=True, sort_keys=False), encoding="utf-8")
    except (yaml.YAMLError, UnicodeEncodeError, RecursionError):
        return
    refused: list[Any] | None = None
    try:
        load_pack(pack_copy)
    except InputError as exc:
        refused = exc.problems
    finally:
        shutil.copyfile(source, target)
    if refused is not None:  # a harmless edit (a title's text) loads
        assert refused
        assert all("\n" not in p.render() for p in refused)
