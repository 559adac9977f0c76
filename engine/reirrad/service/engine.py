"""The engine as the service holds it: the rule pack loaded once, one evaluator per date, cases parsed as the CLI does."""

from __future__ import annotations

import asyncio
import hashlib
import json
import threading
import weakref
from collections import OrderedDict
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
    """The rule pack, loaded once per process, and evaluators compiled on demand per as-of date.

    In the service, evaluations run on the event loop itself, one at a time and in the order the requests came
    (``evaluate_in_turn``). An evaluation is pure CPU work under the GIL: handing it to a thread only added thread
    switches and GIL hand-overs (about 1-2.5 ms of CPU a request, measured in docs/performance.md) and let the loop's
    reads and writes wait behind it in 5 ms slices. Between two evaluations the loop runs once, so the answer just
    computed is sent and newly arrived requests are read before the next evaluation starts."""

    def __init__(self, rules: Path | None = None) -> None:
        self.pack: RulePack = load_pack(rules) if rules else load_pack()
        self.info = PackInfo(
            self.pack.name, self.pack.version, self.pack.content_sha256, self.pack.released.isoformat()
        )
        self._evaluators: OrderedDict[date, Evaluator] = OrderedDict()
        self._lock = threading.Lock()
        # an evaluator holds one engine session: whoever evaluates holds this (uncontended on the loop, where the
        # turns already come one at a time; it guards direct calls from other threads)
        self._running = threading.Lock()
        self._turns: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
            weakref.WeakKeyDictionary()
        )
        self._table: Any = None
        self._table_loaded = False

    def _evaluator(self, as_of: date | None) -> Evaluator:
        """The evaluator of that date, compiled on first use (at most MAX_EVALUATORS kept)."""
        day = as_of or date.today()
        with self._lock:
            found = self._evaluators.get(day)
            if found is not None:
                self._evaluators.move_to_end(day)
                return found
            found = Evaluator(self.pack, as_of=day)
            self._evaluators[day] = found
            while len(self._evaluators) > MAX_EVALUATORS:
                self._evaluators.popitem(last=False)
            return found

    def warm(self) -> None:
        """Compile today's evaluator before the first request."""
        self._evaluator(None)

    def evaluate(self, case: Case, as_of: date | None = None) -> dict[str, Any]:
        """The case's result. Called from a worker thread of the running service (anyio's), the evaluation takes
        its turn on the event loop like every other; called with no service loop (a script, a test), it runs
        here."""
        import anyio.from_thread
        from anyio import NoEventLoopError

        try:
            result: dict[str, Any] = anyio.from_thread.run(self.evaluate_in_turn, case, as_of)
            return result
        except NoEventLoopError:
            return self._evaluate_now(case, as_of)

    async def evaluate_in_turn(
        self, case: Case, as_of: date | None = None, timeout_s: float | None = None
    ) -> dict[str, Any]:
        """The case's result, evaluated on the running loop after the requests that came before it.

        ``timeout_s`` bounds the wait for the turn: a request still waiting then raises ``TimeoutError`` and is
        never evaluated. An evaluation once started runs to its end (it cannot be interrupted; one takes a few
        milliseconds)."""
        loop = asyncio.get_running_loop()
        turn = self._turns.get(loop)
        if turn is None:
            turn = self._turns[loop] = asyncio.Lock()
        deadline = None if timeout_s is None else loop.time() + timeout_s
        async with asyncio.timeout_at(deadline):
            await turn.acquire()
        try:
            if deadline is not None and loop.time() >= deadline:
                raise TimeoutError
            result = self._evaluate_now(case, as_of)
            # let the loop run once (send this answer, read new requests) before the next turn begins: without
            # it, the turns queued in this iteration would all run before the loop looks at a socket again
            await asyncio.sleep(0)
        finally:
            turn.release()
        return result

    def _evaluate_now(self, case: Case, as_of: date | None) -> dict[str, Any]:
        evaluator = self._evaluator(as_of)
        with self._running:
            result: dict[str, Any] = evaluator.evaluate(case)
        return result

    def rules_in_force(self, as_of: date | None = None) -> RulePack:
        return self._evaluator(as_of).pack

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
