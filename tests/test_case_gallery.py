"""The gallery of bad case files: each is refused with every problem named, placed and explained.

Every file in tests/gallery/cases/ is the valid example docs/examples/t1-chondrosarcoma.yaml with one thing
broken; tests/gallery/cases/expected.yaml lists, per file, exactly the problems load_case must report.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from reirrad.case import load_case
from reirrad.cli.main import main
from reirrad.errors import InputError, Problem, format_path
from reirrad.load.yamlio import load_yaml_file

GALLERY = Path(__file__).parent / "gallery" / "cases"
EXPECTED_FILE = GALLERY / "expected.yaml"
EXAMPLE = Path(__file__).parents[1] / "docs" / "examples" / "t1-chondrosarcoma.yaml"

Expectation = dict[str, Any]


def gallery_files(folder: Path = GALLERY) -> list[Path]:
    return sorted(p for p in folder.glob("*.yaml") if p.name != EXPECTED_FILE.name)


def load_expected(path: Path = EXPECTED_FILE) -> dict[str, list[Expectation]]:
    data, _ = load_yaml_file(path)
    assert isinstance(data, dict), f"{path} must map file names to lists of problems"
    return data


def gallery_mismatch(files: list[Path], expected: dict[str, list[Expectation]]) -> list[str]:
    """Why the gallery and its expectations are out of step (empty when they agree)."""
    names = {p.name for p in files}
    out = [f"{n}: in the gallery but not in expected.yaml" for n in sorted(names - set(expected))]
    out += [f"{n}: in expected.yaml but not in the gallery" for n in sorted(set(expected) - names)]
    out += [f"{n}: expects no problem at all" for n in sorted(set(expected) & names) if not expected[n]]
    return out


def matches(problem: Problem, want: Expectation) -> bool:
    return (
        format_path(problem.path) == str(want["path"])
        and problem.line == want["line"]
        and str(want["message"]) in problem.message
        and str(want["accepted"]) in problem.accepted
    )


def unmatched(problems: list[Problem], wanted: list[Expectation]) -> tuple[list[Expectation], list[Problem]]:
    """Pair problems with expectations one to one; return what is left over on each side."""
    left = list(problems)
    missing = []
    for want in wanted:
        hit = next((p for p in left if matches(p, want)), None)
        if hit is None:
            missing.append(want)
        else:
            left.remove(hit)
    return missing, left


EXPECTED = load_expected()
FILES = gallery_files()


def test_gallery_and_expectations_are_in_step() -> None:
    assert len(FILES) >= 40
    assert gallery_mismatch(FILES, EXPECTED) == []


def test_a_file_missing_from_expected_yaml_fails_the_suite(tmp_path: Path) -> None:
    """The check above catches a new gallery file nobody wrote expectations for, and a stale expectation."""
    for path in FILES[:3]:
        (tmp_path / path.name).write_bytes(path.read_bytes())
    (tmp_path / "brand-new-problem.yaml").write_text("schema: 1\n", encoding="utf-8")
    partial = {p.name: EXPECTED[p.name] for p in FILES[:3]}
    assert gallery_mismatch(gallery_files(tmp_path), partial) == [
        "brand-new-problem.yaml: in the gallery but not in expected.yaml"
    ]
    stale = {**partial, "gone.yaml": [{"path": "x", "line": 1, "message": "m", "accepted": "a"}]}
    (tmp_path / "brand-new-problem.yaml").unlink()
    assert gallery_mismatch(gallery_files(tmp_path), stale) == [
        "gone.yaml: in expected.yaml but not in the gallery"
    ]


def test_the_matcher_refuses_a_wrong_line_path_message_or_accepted() -> None:
    problem = Problem("f.yaml", ("lesion", "sins"), "19 is out of range", "a whole number from 0 to 18", 6)
    want = {"path": "lesion.sins", "line": 6, "message": "out of range", "accepted": "0 to 18"}
    assert matches(problem, want)
    for key, wrong in (("path", "lesion.ecog"), ("line", 7), ("message", "missing"), ("accepted", "0 to 4")):
        assert not matches(problem, {**want, key: wrong})
    assert unmatched([problem, problem], [want]) == ([], [problem])


def test_the_gallery_files_are_copies_of_the_example() -> None:
    """A gallery file keeps the example's shape: the broken thing is the only reason it fails."""
    example_keys = [
        line.split(":")[0]
        for line in EXAMPLE.read_text(encoding="utf-8").splitlines()
        if line and not line.startswith((" ", "#"))
    ]
    copies = [p for p in FILES if p.read_bytes().startswith(b"# gallery:") and b"\nschema:" in p.read_bytes()]
    assert len(copies) >= 40
    load_case(EXAMPLE)  # the original is valid
    for path in copies:
        head = [
            line.split(":")[0]
            for line in path.read_text(encoding="utf-8", errors="replace").splitlines()
            if line and not line.startswith((" ", "#", "\t", "-"))
        ]
        assert set(head) <= set(example_keys), path.name


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_load_case_reports_exactly_the_expected_problems(path: Path) -> None:
    with pytest.raises(InputError) as caught:
        load_case(path)
    problems = caught.value.problems
    assert problems, "an InputError must carry its problems"
    missing, extra = unmatched(problems, EXPECTED[path.name])
    assert (missing, [p.render() for p in extra]) == ([], [])
    for problem in problems:
        assert problem.file == str(path)
        assert problem.message and problem.accepted, problem.render()
        assert "\n" not in problem.render()


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_the_cli_prints_one_error_line_per_problem(path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["evaluate", str(path)])
    out, err = capsys.readouterr()
    assert code == 2
    assert out == ""
    assert "Traceback" not in err
    lines = err.splitlines()
    assert len(lines) == len(EXPECTED[path.name])
    for line in lines:
        assert line.startswith(f"error: {path}")
        assert "(accepted: " in line
