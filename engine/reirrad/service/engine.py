"""The engine as the service holds it: the rule pack loaded once, one evaluator per date, cases parsed as the CLI does."""

from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from reirrad.case import Case, case_problems, case_problems_fast
from reirrad.errors import InputError, Problem
from reirrad.evaluate import Evaluator
from reirrad.knowledge.rulepack import Rule, RulePack, load_pack
from reirrad.load.yamlio import load_yaml_text

__all__ = ["PackInfo", "ServiceEngine", "case_hash", "case_to_data"]

MAX_EVALUATORS = 4
"""Evaluators kept compiled at once (one per as-of date: today and a few dates looked back at)."""


@dataclass(frozen=True)
class PackInfo:
    """What every page and response names: the rule pack and its content hash."""

    name: str
    version: str
    content_sha256: str
    released: str

    @property
    def header(self) -> str:
        return f"{self.name} {self.version} sha256:{self.content_sha256}"


def case_to_data(case: Case) -> dict[str, Any]:
    """The case as the case format writes it (aliases, no unset fields)."""
    data: dict[str, Any] = case.model_dump(by_alias=True, mode="json", exclude_none=True, warnings=False)
    for course in [*data.get("prior_courses", []), data.get("planned_course", {})]:
        if course.get("unit") == "Gy":
            course.pop("unit")
    return data


def case_hash(case: Case) -> str:
    """A SHA-256 of the case's canonical JSON: the only trace of a case the feedback store keeps."""
    text = json.dumps(case_to_data(case), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


class ServiceEngine:
    """The rule pack, loaded once per process, and evaluators compiled on demand per as-of date."""

    def __init__(self, rules: Path | None = None) -> None:
        self.pack: RulePack = load_pack(rules) if rules else load_pack()
        self.info = PackInfo(
            self.pack.name, self.pack.version, self.pack.content_sha256, self.pack.released.isoformat()
        )
        self._evaluators: OrderedDict[date, tuple[Evaluator, ThreadPoolExecutor]] = OrderedDict()
        self._lock = threading.Lock()
        self._table: Any = None
        self._table_loaded = False

    def _evaluator(self, as_of: date | None) -> tuple[Evaluator, ThreadPoolExecutor]:
        """The evaluator of that date and the one thread that runs it (an evaluator holds one engine session)."""
        day = as_of or date.today()
        with self._lock:
            found = self._evaluators.get(day)
            if found is not None:
                self._evaluators.move_to_end(day)
                return found
            found = (
                Evaluator(self.pack, as_of=day),
                ThreadPoolExecutor(1, thread_name_prefix="reirrad-eval"),
            )
            self._evaluators[day] = found
            while len(self._evaluators) > MAX_EVALUATORS:
                # not shut down: a request that took it just before may still submit to it; its thread ends when
                # the last such request lets go of it (ThreadPoolExecutor stops its idle threads once collected)
                self._evaluators.popitem(last=False)
            return found

    def warm(self) -> None:
        """Compile today's evaluator before the first request."""
        self._evaluator(None)

    def evaluate(self, case: Case, as_of: date | None = None) -> dict[str, Any]:
        """The case's result, evaluated in the order the requests came: the evaluator's thread takes them from a
        queue, where a lock would let a waiting request be overtaken again and again (the tail latency under load)."""
        evaluator, thread = self._evaluator(as_of)
        result: dict[str, Any] = thread.submit(evaluator.evaluate, case).result()
        return result

    def rules_in_force(self, as_of: date | None = None) -> RulePack:
        return self._evaluator(as_of)[0].pack

    def rule(self, rule_id: str, as_of: date | None = None) -> Rule | None:
        for rule in self.rules_in_force(as_of).rules:
            if rule.id == rule_id:
                return rule
        return None

    def limits(self, case: Case, as_of: date | None = None) -> dict[str, Any]:
        from reirrad.dose.limits import derive_limits

        pack = self.rules_in_force(as_of)
        data: dict[str, Any] = derive_limits(case, pack, table=self.table()).as_dict()
        return data

    def table(self) -> Any:
        if not self._table_loaded:
            from reirrad.knowledge.data import TABLE_FILE, load_table

            self._table = load_table(self.pack.root) if (self.pack.root / TABLE_FILE).is_file() else None
            self._table_loaded = True
        return self._table


def parse_case_data(data: Any, file: str) -> Case:
    """A case given as parsed JSON (an API body): the model first, the schema's messages when it is refused."""
    case, problems = case_problems_fast(data, {}, file)
    if problems or case is None:
        raise InputError.of(problems)
    return case


def parse_case_yaml(text: str, file: str) -> Case:
    """A case given as YAML text (pasted on the page), with line numbers in its problems."""
    data, lines = load_yaml_text(text, file)
    case, problems = case_problems(data, lines, file)
    if problems or case is None:
        raise InputError.of(problems)
    return case


def parse_case_dict(data: dict[str, Any], file: str) -> tuple[Case | None, list[Problem]]:
    """A case built from the page's form: every problem at once, as the CLI words them."""
    return case_problems(data, {}, file)
