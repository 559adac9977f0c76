"""Semantic versions of rules and packs, and the version history of a rule."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable

from reirrad.knowledge.rulepack import Rule

__all__ = ["latest", "parse_version", "versions_by_id"]

_SEMVER = re.compile(r"^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)$")


def parse_version(text: str) -> tuple[int, int, int]:
    """'1.10.0' → (1, 10, 0); raise ValueError for anything that is not MAJOR.MINOR.PATCH."""
    match = _SEMVER.match(text)
    if match is None:
        raise ValueError(f"'{text}' is not a version MAJOR.MINOR.PATCH")
    major, minor, patch = (int(g) for g in match.groups())
    return major, minor, patch


def versions_by_id(rules: Iterable[Rule]) -> dict[str, list[Rule]]:
    """Every version of every rule, oldest version first."""
    out: dict[str, list[Rule]] = defaultdict(list)
    for rule in rules:
        out[rule.id].append(rule)
    return {key: sorted(value, key=lambda r: parse_version(r.version)) for key, value in sorted(out.items())}


def latest(rules: Iterable[Rule]) -> dict[str, Rule]:
    """The highest version of each rule id (whatever its status)."""
    return {key: value[-1] for key, value in versions_by_id(rules).items()}
