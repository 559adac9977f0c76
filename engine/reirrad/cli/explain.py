"""``reirrad explain AUDIT_DIR CASE_ID``: one audited case's full explanation, re-evaluated with the audit's pinned pack."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from reirrad.cli.exits import Exit

__all__ = ["add_explain_parser"]


def _explain(args: argparse.Namespace) -> int:
    from reirrad.audit.explain import explain_case, open_audit

    store, manifest, pack = open_audit(args.audit_dir, args.rules)
    try:
        text, _ = explain_case(store, manifest, pack, args.case_id)
    finally:
        store.close()
    sys.stdout.write(text)
    return Exit.OK


def add_explain_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``explain``: its func returns the exit code (2 when the case or the pack cannot be used)."""
    p: argparse.ArgumentParser = subparsers.add_parser(
        "explain",
        help="print the full explanation of one case of an audit (re-evaluated with the audit's rule pack)",
        description="Re-evaluate one stored case of an audit DIR with the rule pack the audit pinned (refused, with "
        "the reason, when the pack's content differs) and print its explanation as `reirrad evaluate` does.",
    )
    p.add_argument("audit_dir", type=Path, metavar="AUDIT_DIR", help="a directory written by reirrad audit")
    p.add_argument("case_id", metavar="CASE_ID", help="a case id of the audit's cases table")
    p.add_argument(
        "--rules", type=Path, default=None, help="the rule pack the audit used (default: the audit's own)"
    )
    p.set_defaults(func=_explain)
    return p
