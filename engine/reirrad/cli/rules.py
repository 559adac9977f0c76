"""``reirrad rules check|test|diff|lock``: the rule pack maintainer's commands."""

from __future__ import annotations

import argparse
import sys
from datetime import date
from pathlib import Path
from typing import Any

from reirrad.cli.args import iso_date
from reirrad.cli.exits import Exit
from reirrad.load.paths import default_pack_dir

__all__ = ["add_rules_parser"]


def _pack_dir(args: argparse.Namespace) -> Path:
    return Path(args.dir) if args.dir is not None else default_pack_dir()


def _check(args: argparse.Namespace) -> int:
    from reirrad.maint.lint import check_pack, errors, render_json, render_text

    found = check_pack(_pack_dir(args), today=args.today)
    sys.stdout.write(render_json(found) if args.format == "json" else render_text(found))
    return Exit.FINDINGS if errors(found) else Exit.OK


def _test(args: argparse.Namespace) -> int:
    from reirrad.maint.testrun import render_json, render_text, run_tests

    engines = ("durable", "oracle") if args.engine == "both" else (args.engine,)
    report = run_tests(_pack_dir(args), engines)
    sys.stdout.write(render_json(report) if args.format == "json" else render_text(report))
    return Exit.OK if report.ok else Exit.FINDINGS


def _diff(args: argparse.Namespace) -> int:
    from reirrad.maint.diff import diff_packs, impact, load_cohort, open_pack, render_json, render_text

    cohort = None
    if args.impact:
        from reirrad.audit.mapping import load_key

        key = load_key(args.key_file) if args.map else None
        cohort = load_cohort(Path(args.impact), args.map, key)
    with open_pack(args.old, args.pack_path) as old, open_pack(args.new, args.pack_path) as new:
        result = diff_packs(old, new)
        if cohort is not None:
            result.impact = impact(old, new, cohort, args.as_of or date.today(), args.engine)
    sys.stdout.write(render_json(result) if args.format == "json" else render_text(result))
    return Exit.OK


def _lock(args: argparse.Namespace) -> int:
    from reirrad.maint.lint import check_pack, errors
    from reirrad.maint.lock import LOCK_FILE, LockRefused, write_lock

    root = _pack_dir(args)
    blocking = [d for d in errors(check_pack(root)) if d.code not in ("R501", "R502")]
    if blocking:
        for d in blocking:
            print(f"error: {d.render()}", file=sys.stderr)
        print("refused: fix the errors of `reirrad rules check` before locking a release", file=sys.stderr)
        return Exit.FINDINGS
    try:
        lock = write_lock(root)
    except LockRefused as exc:
        print(f"refused: {exc}", file=sys.stderr)
        return Exit.FINDINGS
    print(f"{root / LOCK_FILE}: version {lock['version']}, content_sha256 {lock['content_sha256']}")
    return Exit.OK


def add_rules_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``rules`` with its subcommands; each sets ``func(args) -> int`` (InputError means exit 2)."""
    rules: argparse.ArgumentParser = subparsers.add_parser(
        "rules", help="maintain the rule pack: check, test, diff, lock"
    )
    sub = rules.add_subparsers(dest="rules_command", required=True)
    dir_help = "the rule pack directory (default: the bundled pack)"

    check = sub.add_parser("check", help="validate every file and lint the pack (codes in docs/rule-lint.md)")
    check.add_argument("dir", nargs="?", default=None, help=dir_help)
    check.add_argument("--format", choices=["text", "json"], default="text")
    check.add_argument("--today", type=iso_date, default=None, help="the date a review is overdue against")
    check.set_defaults(func=_check)

    test = sub.add_parser("test", help="run the rule test cases and report coverage per rule and status")
    test.add_argument("dir", nargs="?", default=None, help=dir_help)
    test.add_argument("--format", choices=["text", "json"], default="text")
    test.add_argument("--engine", choices=["durable", "oracle", "both"], default="both")
    test.set_defaults(func=_test)

    diff = sub.add_parser("diff", help="semantic diff of two packs (directories or git refs)")
    diff.add_argument("old", help="a pack directory, or a git ref of this repository (HEAD~1, a tag)")
    diff.add_argument("new", help="a pack directory, or a git ref")
    diff.add_argument("--format", choices=["text", "json"], default="text")
    diff.add_argument(
        "--impact",
        metavar="COHORT",
        default=None,
        help="a cohort in any format reirrad audit reads: list cases whose verdict changes",
    )
    diff.add_argument(
        "--map",
        type=Path,
        default=None,
        metavar="MAP",
        help="a mapping file for a department's CSV/XLSX cohort",
    )
    diff.add_argument(
        "--key-file", type=Path, default=None, metavar="FILE", help="the pseudonymisation key of the mapping"
    )
    diff.add_argument(
        "--as-of",
        type=iso_date,
        default=None,
        help="evaluate the cohort with the rules in force on this date (default: today)",
    )
    diff.add_argument("--engine", choices=["durable", "oracle"], default="durable")
    diff.add_argument(
        "--pack-path", default="rules", help="where the pack is inside a git ref (default: rules)"
    )
    diff.set_defaults(func=_diff)

    lock = sub.add_parser("lock", help="record the released version and content hash in pack.lock.json")
    lock.add_argument("dir", nargs="?", default=None, help=dir_help)
    lock.set_defaults(func=_lock)
    return rules
