"""``reirrad audit`` (and ``audit preview``) and ``reirrad synth``: argparse subcommands, each with ``func(args) -> int``."""

from __future__ import annotations

import argparse
import os
import sys
from datetime import date
from pathlib import Path
from typing import Any

from reirrad.cli.args import iso_date, whole_number
from reirrad.cli.exits import Exit
from reirrad.errors import InputError, Problem

__all__ = ["add_audit_parser", "add_synth_parser"]


def _as_of(text: str) -> str:
    if text == "treatment":
        return text
    try:
        return date.fromisoformat(text).isoformat()
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a date; write YYYY-MM-DD or 'treatment'") from None


def _audit(args: argparse.Namespace) -> int:
    from reirrad.audit.mapping import load_key
    from reirrad.audit.runner import AuditOptions, run_audit

    targets: list[Path] = args.cohort
    if str(targets[0]) == "preview":
        if len(targets) != 2:
            raise InputError.of(
                [
                    Problem(
                        "audit preview",
                        (),
                        "needs one FILE",
                        "reirrad audit preview FILE --map MAP",
                        code="cli",
                    )
                ]
            )
        return _preview(args, targets[1])
    if len(targets) != 1:
        raise InputError.of(
            [Problem("audit", (), "takes one COHORT", "reirrad audit COHORT --out DIR", code="cli")]
        )
    if args.out is None:
        raise InputError.of(
            [Problem("--out", (), "is required", "--out DIR (created; resumable)", code="cli")]
        )
    if args.chunk_size < 1:
        raise InputError.of(
            [Problem("--chunk-size", (), "must be at least 1", "a whole number ≥ 1", code="cli")]
        )
    opts = AuditOptions(
        cohort=targets[0],
        out=args.out,
        workers=args.workers,
        as_of=args.as_of,
        compare_now=args.compare_now,
        now=args.now,
        chunk_cases=args.chunk_size,
        engine=args.engine,
        rules=args.rules,
        progress=False if args.quiet else None,
        restart=args.restart,
        full_results=args.full_results,
        parquet=args.parquet,
        map=args.map,
        key=load_key(args.key_file) if args.map is not None else None,
    )
    try:
        outcome = run_audit(opts)
    except KeyboardInterrupt:
        print("interrupted: committed chunks are kept; re-run the same command to resume", file=sys.stderr)
        raise
    print(outcome.render())
    extra = ", results.jsonl" if args.full_results else ""
    extra += ", parquet/" if args.parquet else ""
    print(f"outputs: {outcome.out}/audit.duckdb, summary.json, report.html{extra} ({outcome.seconds:.1f} s)")
    return Exit.OK


def _preview(args: argparse.Namespace, file: Path) -> int:
    """How the first rows map, and every record that would be refused (nothing is evaluated or written)."""
    import yaml

    from reirrad.audit.mapping import load_key
    from reirrad.audit.readers import open_source
    from reirrad.audit.runner import validate_document
    from reirrad.errors import format_path

    if args.map is None:
        raise InputError.of(
            [Problem("audit preview", (), "needs --map", "reirrad audit preview FILE --map MAP", code="cli")]
        )
    source = open_source(file, args.map, load_key(args.key_file))
    out = sys.stdout
    shown = refused = blank = total = 0
    seen: dict[str, str] = {}
    refusals: list[str] = []
    for rec in source.records():
        total += 1
        if rec.blank:
            blank += 1
            continue
        problems = rec.problems or []
        if not problems:
            _, problems = validate_document(rec.data, rec.lines, rec.file)
        cid = rec.data.get("case_id") if isinstance(rec.data, dict) else None
        if not problems and isinstance(cid, str):
            if cid in seen:
                refusals.append(f"{rec.key}: case id given again (first at {seen[cid]})")
                refused += 1
                continue
            seen[cid] = rec.key
        if problems:
            refused += 1
            for p in problems:
                column, value = rec.cells.get(format_path(p.path), ("", ""))
                where = f"{rec.key}" + (f", column '{column}'" if column else "")
                shown_value = f" [value {value!r}]" if value and column != source.mapping.case_id_name else ""
                refusals.append(
                    f"{where}: {format_path(p.path)}: {p.message}{shown_value}"
                    + (f" (accepted: {p.accepted})" if p.accepted else "")
                )
            continue
        if shown < args.rows:
            shown += 1
            out.write(f"--- {rec.key} → case {cid}\n")
            out.write(yaml.safe_dump(rec.data, sort_keys=False, allow_unicode=True))
    m = source.mapping
    out.write(
        f"\n{file} through {args.map} ({m.layout}): {total:,} records, {total - refused - blank:,} would be "
        f"audited, {refused:,} refused, {blank:,} blank\n"
    )
    if refusals:
        out.write("refused:\n" + "".join(f"  {r}\n" for r in refusals))
    return Exit.FINDINGS if refused else Exit.OK


def add_audit_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "audit",
        help="evaluate a cohort of cases into a database and a report (or preview a mapped spreadsheet)",
        description="Evaluate every case of a cohort (a directory of case YAML files, a JSON Lines file, an "
        "audit-layout CSV, or a department's CSV/XLSX with --map; see docs/audit.md) into DIR: audit.duckdb, "
        "summary.json and report.html. Interrupted, the same command resumes. "
        "`reirrad audit preview FILE --map MAP` shows how the first rows map and every row that would be refused.",
    )
    p.add_argument(
        "cohort",
        type=Path,
        nargs="+",
        metavar="COHORT | preview FILE",
        help="a directory of *.yaml case files, a .jsonl file, a .csv file, or a .csv/.xlsx with --map",
    )
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        metavar="DIR",
        help="output directory (created; resumable; one audit at a time)",
    )
    p.add_argument(
        "--map", type=Path, default=None, metavar="MAP", help="a mapping file for a department's CSV/XLSX"
    )
    p.add_argument(
        "--key-file",
        type=Path,
        default=None,
        metavar="FILE",
        help="the pseudonymisation key (else the environment variable REIRRAD_PSEUDONYM_KEY); never written out",
    )
    p.add_argument("--rows", type=whole_number(0), default=3, help="preview: mapped cases shown (default 3)")
    p.add_argument(
        "--workers",
        type=whole_number(0),
        default=min(2, os.cpu_count() or 1),
        help="worker processes (default: min(2, CPUs)); 0 runs in this process",
    )
    p.add_argument(
        "--as-of",
        type=_as_of,
        default=None,
        metavar="DATE|treatment",
        help="rules in force on each case's planned start ('treatment', the default) or on DATE for every case",
    )
    p.add_argument(
        "--compare-now",
        action="store_true",
        help="also evaluate each case with the rules in force now and count verdict changes",
    )
    p.add_argument(
        "--now", type=iso_date, default=None, metavar="DATE", help="the date taken as 'now' (default: today)"
    )
    p.add_argument(
        "--chunk-size",
        type=int,
        default=1000,
        metavar="N",
        help="cases per chunk, the unit of commit and resume (default 1000)",
    )
    p.add_argument(
        "--rules", type=Path, default=None, help="a rule pack directory (default: the bundled pack)"
    )
    p.add_argument("--engine", choices=["durable", "oracle"], default="durable")
    p.add_argument(
        "--full-results",
        action="store_true",
        help="also write every case's full result to results.jsonl (≈ 60 KB a case)",
    )
    p.add_argument("--parquet", action="store_true", help="also export every table to DIR/parquet/*.parquet")
    p.add_argument("--restart", action="store_true", help="discard an earlier (partial) audit in DIR")
    p.add_argument(
        "--quiet", action="store_true", help="no progress bar (it is shown only on a terminal anyway)"
    )
    p.set_defaults(func=_audit)
    return p  # type: ignore[no-any-return]


def _synth(args: argparse.Namespace) -> int:
    import json

    from reirrad.testing.synth import SYNTHETIC_LABEL, iter_synth_cases

    fmt = args.format
    out: Path | None = args.out
    cases = iter_synth_cases(args.n, args.seed)
    if fmt == "yaml-dir":
        import yaml

        if out is None:
            raise InputError.of(
                [Problem("--out", (), "yaml-dir needs --out DIR", "a directory path", code="cli")]
            )
        out.mkdir(parents=True, exist_ok=True)
        header = f"# {SYNTHETIC_LABEL} (seed {args.seed}).\n"
        for case in cases:
            text = yaml.safe_dump(case, sort_keys=False, allow_unicode=True)
            (out / f"{case['case_id']}.yaml").write_text(header + text, encoding="utf-8")
        print(f"wrote {args.n} synthetic cases to {out}/", file=sys.stderr)
        return Exit.OK
    if fmt == "csv":
        from reirrad.audit.readers import write_csv

        if out is None:
            write_csv(cases, sys.stdout)
        else:
            with open(out, "w", encoding="utf-8", newline="") as f:
                write_csv(cases, f)
        return Exit.OK
    from reirrad.audit.readers import dumps_line

    sink = open(out, "wb") if out is not None else sys.stdout.buffer  # noqa: SIM115
    try:
        for case in cases:
            sink.write(dumps_line(case))
    finally:
        if out is not None:
            sink.close()
    if out is not None:  # JSON Lines has no comments: the label goes beside the file
        Path(str(out) + ".synthetic.json").write_text(
            json.dumps(
                {
                    "synthetic": True,
                    "label": SYNTHETIC_LABEL,
                    "generator": "reirrad synth",
                    "n": args.n,
                    "seed": args.seed,
                    "case_id_prefix": "synthetic-",
                },
                indent=2,
            )
            + "\n"
        )
        print(f"wrote {args.n} synthetic cases to {out}", file=sys.stderr)
    return Exit.OK


def add_synth_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "synth",
        help="generate a seeded synthetic cohort (clearly labelled, not patients)",
        description="Plausible synthetic cases (case_id prefix 'synthetic-'), distributions "
        "loosely after Lucido 2025 Table 2. For demos, benchmarks and tests only.",
    )
    p.add_argument("--n", type=whole_number(0), required=True, help="number of cases")
    p.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    p.add_argument("--format", choices=["jsonl", "yaml-dir", "csv"], default="jsonl")
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        help="file (jsonl, csv) or directory (yaml-dir); default: standard output",
    )
    p.set_defaults(func=_synth)
    return p  # type: ignore[no-any-return]
