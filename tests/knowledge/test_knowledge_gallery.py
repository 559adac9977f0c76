"""The gallery of bad knowledge files: each is refused with every problem named, placed and explained.

Each file in tests/gallery/knowledge/ is loaded, by the loader its name starts with, from a pack folder holding only
the real references.yaml and that file; tests/gallery/knowledge/expected.yaml lists exactly the problems to report.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from knowledge_helpers import RULES
from reirrad.errors import InputError, Problem, format_path
from reirrad.knowledge.data import (
    ASSESSMENT_FILE,
    EVIDENCE_FILE,
    LISTS_FILE,
    TABLE_FILE,
    load_assessment,
    load_evidence,
    load_histology_lists,
    load_table,
)
from reirrad.load.yamlio import load_yaml_file

GALLERY = Path(__file__).parents[1] / "gallery" / "knowledge"
EXPECTED_FILE = GALLERY / "expected.yaml"
LOADERS: dict[str, tuple[Path, Callable[[Path], Any]]] = {
    "evidence": (EVIDENCE_FILE, load_evidence),
    "table": (TABLE_FILE, load_table),
    "assessment": (ASSESSMENT_FILE, load_assessment),
    "lists": (LISTS_FILE, load_histology_lists),
}
FILES = sorted(p for p in GALLERY.glob("*.yaml") if p != EXPECTED_FILE)


def problems_of(path: Path, tmp: Path) -> list[Problem]:
    relative, loader = LOADERS[path.name.split("-")[0]]
    root = tmp / "rules"
    (root / relative).parent.mkdir(parents=True)
    shutil.copy(RULES / "references.yaml", root / "references.yaml")
    shutil.copy(path, root / relative)
    with pytest.raises(InputError) as exc:
        loader(root)
    return exc.value.problems


def expected() -> dict[str, list[dict[str, Any]]]:
    data, _ = load_yaml_file(EXPECTED_FILE)
    return dict(data)


def test_gallery_and_expectations_are_in_step() -> None:
    names = {p.name for p in FILES}
    assert names == set(expected())
    assert all(expected()[n] for n in names)
    assert {n.split("-")[0] for n in names} == set(LOADERS)


def _matches(problem: Problem, want: dict[str, Any]) -> bool:
    return (
        format_path(problem.path) == str(want["path"])
        and problem.line == want["line"]
        and str(want["message"]) in problem.message
        and str(want["accepted"]) in problem.accepted
    )


@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_each_bad_file_gives_exactly_the_expected_problems(path: Path, tmp_path: Path) -> None:
    problems = problems_of(path, tmp_path)
    left = list(problems)
    missing = []
    for want in expected()[path.name]:
        hit = next((p for p in left if _matches(p, want)), None)
        if hit is None:
            missing.append(want)
        else:
            left.remove(hit)
    assert not missing and not left, (
        f"expected but not reported: {missing}\nreported but not expected: {[p.render() for p in left]}"
    )
    relative = LOADERS[path.name.split("-")[0]][0]
    assert all(Path(p.file).as_posix().endswith(relative.as_posix()) for p in problems)
