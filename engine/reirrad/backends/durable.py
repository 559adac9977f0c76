"""The one door to durable-rules: compiled rulesets in, the names of the rules that fired out.

durable-rules is used through its data-defined ``Host`` API with ``assert_fact`` (never ``post``, which lets one
event fire one rule only). Three of its defaults are replaced here because they give wrong or slow answers for
synchronous per-case evaluation (see docs/engine.md): the host's background timer threads are not started;
actions run synchronously and an exception inside one propagates instead of being stored in the state; and the
per-action bookkeeping (timers, closures, state re-serialisation) is skipped, since the actions only record
which rule fired and may produce a derived fact. Derived facts (the verdicts chained recommendations read) are
asserted only after the action loop has drained, never while an action is in flight: doing so corrupted durable's
heap here. Each engine keeps one session: after a case every fact it asserted is retracted, newest first, which
leaves the session empty and keeps durable's per-session match state for the next case (rebuilding that state cost
about as much as matching itself); the session is deleted instead whenever anything failed or an action is left
pending, so no case ever sees another case's facts.
"""

from __future__ import annotations

import json
import math
import re
import threading
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import durable_rules_engine as _native
from durable import engine as _durable

from reirrad.errors import EngineError
from reirrad.load.paths import dist_version
from reirrad.logic.compiler import CompiledPack, stage_fact

__all__ = ["ENGINE_NAME", "ENGINE_VERSION", "DurableEngine"]

ENGINE_NAME = "durable-rules"
ENGINE_VERSION = dist_version("durable-rules") or "unknown"
MAX_FACT_PROPERTIES = 252
SENTINEL_FIELD = "reirrad_fact"
SENTINEL_RULE = "reirrad|fact-received"
"""Every fact carries SENTINEL_FIELD and the sentinel rule matches it, so no fact is ever 'not handled': deleting
a session after a fact that matched nothing corrupts durable's heap (measured here: munmap_chunk() aborts)."""
_ALREADY_OBSERVED = 2
_STACK_FULL = 303
"""ERR_MAX_STACK_SIZE: durable walks its alpha network with a stack of 64 nodes; see compiler.GROUP_MARKERS."""
MAX_OPEN_NODES = 48
"""The most alpha nodes a fact may open at the first two levels of the network (see _FanOut). durable pushes every
matching child of a node onto a stack of 64 (MAX_STACK_SIZE in its rete.c); measured here with 2.0.28, 64 flat
patterns matching one fact corrupted the heap ('free(): invalid pointer') and 70 crashed the process after error
303, so a fact that could come near the limit is refused before durable sees it. The margin covers the deeper
levels of one pattern."""

_Test = tuple[Any, ...]


def _test(expr: dict[str, Any]) -> _Test | None:
    """A comparison as a hashable test, or None for an $and / $or (not followed any deeper)."""
    ((key, value),) = expr.items()
    if key in ("$and", "$or"):
        return None
    if key.startswith("$"):
        ((field, operand),) = value.items()
        return (key, field, json.dumps(operand))
    return ("=", key, json.dumps(value))


def _chains(pattern: dict[str, Any]) -> list[list[_Test | None]]:
    """The leading tests of each alpha chain a pattern opens: one chain per alternative of a top-level $or."""
    ((key, value),) = pattern.items()
    if key == "$or":
        return [chain for alternative in value for chain in _chains(alternative)]
    items = value if key == "$and" else [pattern]
    chain = []
    for item in items[:2]:
        test = _test(item)
        chain.append(test)
        if test is None:
            break
    return [chain]


class _FanOut:
    """The first two levels of a compiled pack's alpha network, to count the nodes a fact opens before durable
    walks them. Conservative: a test other than an equality or an absence is counted as matching."""

    def __init__(self, compiled: CompiledPack) -> None:
        self.tree: dict[_Test | None, set[_Test | None]] = {}
        for rule in compiled.rules:
            for pattern in rule.patterns:
                for chain in _chains(pattern):
                    children = self.tree.setdefault(chain[0], set())
                    if len(chain) > 1:
                        children.add(chain[1])
        self.tree.setdefault(("=", SENTINEL_FIELD, "1"), set())

        # the same tree with each equality decoded once: a value equals the test's JSON text when it has the same
        # type and value (facts hold str, int, float, bool or None; json.dumps per test per fact cost ~0.3 ms a case)
        self._levels = [
            (_checker(first), [_checker(t) for t in children]) for first, children in self.tree.items()
        ]

    def widest(self, fact: dict[str, Any]) -> int:
        """Nodes opened at the root plus the most opened under any one of them."""
        opened = 0
        most = 0
        for first, children in self._levels:
            if _holds(first, fact):
                opened += 1
                below = sum(1 for t in children if _holds(t, fact))
                most = max(most, below)
        return opened + most


_Checker = tuple[int, str, Any]
_ANY, _EQUALS, _ABSENT = 0, 1, 2


def _checker(test: _Test | None) -> _Checker:
    if test is None or test[0] not in ("=", "$nex"):
        return (_ANY, "", None)
    if test[0] == "$nex":
        return (_ABSENT, test[1], None)
    value = json.loads(test[2])
    return (_EQUALS, test[1], (type(value), value))


def _holds(check: _Checker, fact: dict[str, Any]) -> bool:
    """Whether a test may match the fact: an equality or an absence exactly, anything else assumed to. An equality
    holds where the fact's value has the test's JSON text (tests/test_durable_adapter.py compares the two)."""
    kind, key, expected = check
    if kind == _EQUALS:
        if key not in fact:
            return False
        value = fact[key]
        return type(value) is expected[0] and value == expected[1]
    if kind == _ABSENT:
        return key not in fact
    return True


_encode = json.JSONEncoder(ensure_ascii=False).encode
_INT64 = 2**63 - 1


def _parses(fact: dict[str, Any]) -> bool:
    """Whether json's text of this flat fact is read right by durable: no float json writes with an exponent
    (``repr`` uses one below 1e-4 and from 1e16: durable reads ``1e-05`` as a malformed fact, error 204, then 309 on
    the session), no NaN or infinity, no integer beyond int64 (durable reads integers with atoll)."""
    for value in fact.values():
        kind = type(value)
        if kind is float:
            if not (value == 0.0 or 1e-4 <= abs(value) < 1e16):
                return False
        elif kind is int:
            if not -_INT64 <= value <= _INT64:
                return False
        elif not (isinstance(value, str) or kind is bool or value is None):
            return False  # a nested value: written by _plain_json
    return True


def _plain_number(value: float) -> str:
    """A number as durable parses it: plain decimal with a point for a float (``0.00001``, ``1e16`` as
    ``10000000000000000.0``), exact (the digits of the float's shortest repr), an integer beyond int64 as a float."""
    if isinstance(value, int):
        return str(value) if -_INT64 <= value <= _INT64 else _plain_number(float(value))
    if not math.isfinite(value):
        raise EngineError(f"a non-finite number cannot reach the rules engine: {value!r}")
    text = format(Decimal(repr(value)), "f")
    return text if "." in text else f"{text}.0"


def _plain_json(value: Any) -> str:
    if value is None or isinstance(value, bool | str):
        return _encode(value)
    if isinstance(value, int | float):
        return _plain_number(value)
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_encode(str(k))}: {_plain_json(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_plain_json(v) for v in value) + "]"
    raise EngineError(f"a fact holds a value the rules engine cannot read: {type(value).__name__}")


def _to_json(fact: dict[str, Any]) -> str:
    """``json.dumps(fact, ensure_ascii=False)``, with every number in a form durable-rules parses: a fact json would
    write in a form durable misreads (see _parses) is written with plain decimal numbers instead."""
    return _encode(fact) if _parses(fact) else _plain_json(fact)


def _native_assert(handle: int, message: str, what: str) -> tuple[int, int]:
    """durable's assert_fact, its native errors turned into an EngineError that says what failed, in words."""
    try:
        code, state = _native.assert_fact(handle, message)
    except _native.error as exc:
        found = re.search(r"error code: (\d+)", str(exc))
        code = int(found.group(1)) if found else -1
        if code == _STACK_FULL:
            raise EngineError(
                f"durable-rules could not match {what} (error {code}, ERR_MAX_STACK_SIZE): more of the compiled "
                "patterns open at one node of its alpha network than its 64-node stack holds; the compiler groups "
                "each rule's markers to prevent this (GROUP_MARKERS, docs/engine.md)"
            ) from None
        raise EngineError(f"durable-rules could not match {what} (error {code}): {exc}") from None
    return int(code), int(state)


class _SyncRuleset(_durable.Ruleset):
    """A ruleset whose actions run at once, on the caller's thread, with errors raised to the caller."""

    on_fire: Callable[[str, str], None]

    def assert_message(self, message: str) -> int:
        """Assert one fact, already serialised, and return its session's handle."""
        code, handle = _native_assert(self._handle, message, "the case's fact")
        if code == _ALREADY_OBSERVED:
            raise EngineError(f"fact already asserted in this session: {message[:120]}")
        if code != 0:
            raise EngineError(
                f"durable did not handle the fact (code {code}); the sentinel rule should match it"
            )
        return int(handle)

    def run_actions(self, state_handle: int) -> list[str]:
        """Run the session's pending actions on this thread; the rules that fired, each once, in firing order."""
        fired: list[str] = []
        seen: set[str] = set()
        result = _native.start_action_for_state(self._handle, state_handle)
        message = result[1] if result else None
        while message:
            name = message[2 : message.index('"', 2)]
            if name == SENTINEL_RULE:
                pass
            elif name not in seen:  # durable fires an $or pattern once per matching alternative
                seen.add(name)
                fired.append(name)
                self.on_fire(name, message)
            message = _native.complete_and_start_action(self._handle, state_handle)
        return fired

    def retract_message(self, message: str) -> bool:
        """Retract a fact asserted with ``assert_message``; False if durable did not take the retraction."""
        code, _ = _native.retract_fact(self._handle, message)
        return bool(code == 0)

    def assert_derived(self, message: str) -> None:
        code, _ = _native_assert(self._handle, message, "a derived fact")
        if code != 0:
            raise EngineError(f"durable did not take the derived fact {message[:120]} (code {code})")

    def has_pending_actions(self, state_handle: int) -> bool:
        return bool(_native.start_action_for_state(self._handle, state_handle))


class _SyncHost(_durable.Host):
    """A durable Host without the background dispatch threads of the stock one."""

    def __init__(self) -> None:  # the parent's __init__ would start two timer threads
        self._ruleset_directory: dict[str, Any] = {}
        self._ruleset_list: list[Any] = []
        self.store_message_callback = None
        self.delete_message_callback = None
        self.queue_message_callback = None
        self.get_stored_messages_callback = None
        self.get_queued_messages_callback = None
        self.get_idle_state_callback = None

    def get_action(self, action_name: str) -> Callable[[Any], None]:
        if action_name != "fire":
            raise EngineError(f"unknown action {action_name!r} in a compiled ruleset")
        return _never_called

    def register_rulesets(self, ruleset_definitions: dict[str, Any]) -> list[str]:
        names = []
        for name, definition in ruleset_definitions.items():
            if name in self._ruleset_directory:
                raise EngineError(f"ruleset {name} is already registered")
            ruleset = _SyncRuleset(name, self, definition)
            self._ruleset_directory[name] = ruleset
            self._ruleset_list.append(ruleset)
            names.append(name)
        return names


def _never_called(c: Any) -> None:  # durable requires a one-argument callable per action name
    raise EngineError("durable dispatched an action outside the synchronous path")


_HOSTS: dict[str, _SyncHost] = {}
_HOSTS_LOCK = threading.Lock()


def _host_for(compiled: CompiledPack) -> _SyncHost:
    """One host per compiled pack per process: durable cannot delete a ruleset once registered."""
    with _HOSTS_LOCK:
        host = _HOSTS.get(compiled.ruleset_name)
        if host is None:
            host = _SyncHost()
            # a private copy (durable keeps what it is given); a JSON round trip is faster than deepcopy
            ruleset = json.loads(json.dumps(compiled.durable_ruleset()))
            ruleset[SENTINEL_RULE] = {"all": [{"m": {SENTINEL_FIELD: 1}}], "run": "fire"}
            host.set_rulesets({compiled.ruleset_name: ruleset})
            _HOSTS[compiled.ruleset_name] = host
        return host


class DurableEngine:
    """Fires a compiled pack on durable-rules, one case (one fact) at a time. Not shared between threads."""

    name = ENGINE_NAME
    version = ENGINE_VERSION

    def __init__(self, compiled: CompiledPack, sid: str = "case") -> None:
        self.compiled = compiled
        self._host = _host_for(compiled)
        self._ruleset: _SyncRuleset = self._host.get_ruleset(compiled.ruleset_name)
        self._sid = sid
        self._lock = threading.Lock()
        self._asserted: list[str] = []  # the facts this case asserted, in order, for retraction
        self._pending: list[str] = []  # derived facts waiting for the action loop to finish
        self._fan_out = _FanOut(compiled)

    def _on_fire(self, name: str, message: str) -> None:
        rule = self.compiled.by_name.get(name)
        if rule is None:
            raise EngineError(f"durable fired {name!r}, which is not in the compiled pack")
        if (
            rule.asserts is not None
        ):  # asserted once the action loop is over: never while an action is in flight
            derived = _to_json({**rule.asserts, "sid": self._sid, SENTINEL_FIELD: 1})
            if (
                derived not in self._pending and derived not in self._asserted
            ):  # two items, one (rule, status)
                self._pending.append(derived)

    def _run_to_fixpoint(self, handle: int) -> list[str]:
        """Run the pending actions; assert the derived facts they produced, then run again, until none is left.

        Asserting a fact from inside the action loop (between durable's start and complete calls) corrupted
        durable's heap here (glibc 'realloc(): invalid next size', intermittently, after some hundred cases), so
        derived facts wait until the loop has completed every action."""
        ruleset = self._ruleset
        fired = ruleset.run_actions(handle)
        while self._pending:
            batch, self._pending = self._pending, []
            for derived in batch:
                self._asserted.append(derived)
                ruleset.assert_derived(derived)
            fired += ruleset.run_actions(handle)
        return fired

    def fire(self, fact: dict[str, Any]) -> list[str]:
        """Names of every compiled rule that fired for this fact (derived facts included), in firing order."""
        if len(fact) + 2 > MAX_FACT_PROPERTIES:
            raise EngineError(
                f"a fact may carry at most {MAX_FACT_PROPERTIES} properties, this one has {len(fact) + 2}"
            )
        full = {**fact, "sid": self._sid, SENTINEL_FIELD: 1}
        if (opened := self._fan_out.widest(full)) > MAX_OPEN_NODES:
            raise EngineError(
                f"this fact would open {opened} nodes of durable-rules' alpha network at once, more than the "
                f"{MAX_OPEN_NODES} it can hold safely (its stack has 64): the compiled pack must group its item "
                "markers (compiler.GROUP_MARKERS, docs/engine.md)"
            )
        message = _to_json(full)
        ruleset = self._ruleset
        with self._lock:
            ruleset.on_fire = self._on_fire
            self._asserted = [message]
            self._pending = []
            emptied = False
            try:
                handle = ruleset.assert_message(message)
                fired = self._run_to_fixpoint(handle)
                for stage in range(2, self.compiled.stages + 1):  # later stages see every earlier outcome
                    opener = _to_json({**stage_fact(stage), "sid": self._sid, SENTINEL_FIELD: 1})
                    self._asserted.append(opener)
                    fired += self._run_to_fixpoint(ruleset.assert_message(opener))
                # Retract newest first (the stage fact before the outcomes it joins), so that no negated pattern
                # becomes true while the session empties; then the session is reused by the next case.
                emptied = all(
                    ruleset.retract_message(m) for m in reversed(self._asserted)
                ) and not ruleset.has_pending_actions(handle)
            finally:
                if not emptied:
                    self._host.delete_state(self.compiled.ruleset_name, self._sid)
        return fired
