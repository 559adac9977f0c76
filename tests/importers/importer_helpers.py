"""Helpers for the importer tests: run `reirrad import …` as the main CLI will; build cases."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import yaml
from reirrad.case import Case, parse_case
from reirrad.cli.main import main

DATA = Path(__file__).with_name("data")


def run_reirrad(*argv: str) -> tuple[int, str, str]:
    """Run `reirrad ARGV` as the console script does: exit status, stdout, stderr."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(list(argv))
        except SystemExit as exc:  # argparse's own refusals
            code = int(exc.code or 0)
    return code, out.getvalue(), err.getvalue()


def run_import(*argv: str) -> tuple[int, str, str]:
    """Run `reirrad import ARGV`: exit status, stdout, stderr (warnings, then one line per problem)."""
    return run_reirrad("import", *argv)


def case_with(prior: str | None = None, planned: str | None = None) -> Case:
    """Place imported course YAML into a minimal case and validate it with the case parser."""
    default_planned = {
        "start": "2016-09-15",
        "technique": "SBRT",
        "prescription": {"dose": 24, "fractions": 1},
        "structures": {"SpinalCord": {"Dmax": 10.0}},
    }
    doc = {
        "schema": "reirrad/case/v1",
        "case_id": "import-test",
        "lesion": {"levels": ["T8"]},
        "prior_courses": [yaml.safe_load(prior)] if prior else [],
        "planned_course": yaml.safe_load(planned) if planned else default_planned,
    }
    return parse_case(yaml.safe_dump(doc, sort_keys=False), "assembled-case.yaml")
