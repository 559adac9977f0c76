"""pytest plugin: collects a rule pack's YAML test cases (``**/*.cases.yaml``) as test items.

Enabled with ``-p reirrad.pytest_plugin``. Each test case runs on durable-rules and on the oracle.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from reirrad.knowledge.rulepack import CASES_SUFFIX, load_pack
from reirrad.testing.casetests import BASES_FILE, CaseTest, EvaluatorCache, check, load_bases, load_case_tests

_caches: dict[Path, tuple[EvaluatorCache, dict[str, Any]]] = {}


def _pack_root(path: Path) -> Path | None:
    for parent in path.parents:
        if (parent / "pack.yaml").is_file():
            return parent
    return None


def _cache_for(root: Path) -> tuple[EvaluatorCache, dict[str, Any]]:
    if root not in _caches:
        _caches[root] = (EvaluatorCache(load_pack(root)), load_bases(root))
    return _caches[root]


def pytest_collect_file(parent: pytest.Collector, file_path: Path) -> pytest.Collector | None:
    if file_path.name.endswith(CASES_SUFFIX) and file_path.name != BASES_FILE and _pack_root(file_path):
        return RuleCasesFile.from_parent(parent, path=file_path)
    return None


class RuleCasesFile(pytest.File):
    def collect(self) -> Any:
        root = _pack_root(self.path)
        assert root is not None
        cache, bases = _cache_for(root)
        for test in load_case_tests(self.path, bases, cache.pack):
            for engine in test.engines:
                yield RuleCaseItem.from_parent(
                    self, name=f"{test.name} [{engine}]", test=test, engine=engine, cache=cache
                )


class RuleCaseFailure(Exception):
    def __init__(self, failures: list[str]) -> None:
        super().__init__("\n".join(failures))
        self.failures = failures


class RuleCaseItem(pytest.Item):
    def __init__(self, *, test: CaseTest, engine: str, cache: EvaluatorCache, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.test = test
        self.engine = engine
        self.cache = cache

    def runtest(self) -> None:
        failures = check(
            self.test,
            self.cache.get(self.test.as_of, self.engine, self.test.include_drafts, self.test.reading),
        )
        if failures:
            raise RuleCaseFailure(failures)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if isinstance(excinfo.value, RuleCaseFailure):
            head = [f"{self.test.file}:{self.test.line}: {self.test.name}", f"source: {self.test.source}"]
            return "\n".join(head + [f"  - {f}" for f in excinfo.value.failures])
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, self.test.line, self.name
