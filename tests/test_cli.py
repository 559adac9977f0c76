"""The command line: exit codes, refusals without tracebacks, dates, alternative packs."""

import json
import shutil
from pathlib import Path

import pytest
from reirrad.cli.main import main

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "docs" / "examples" / "t1-chondrosarcoma.yaml"


def test_a_missing_file_is_refused_with_exit_code_2(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert main(["evaluate", str(tmp_path / "nope.yaml")]) == 2
    err = capsys.readouterr().err
    assert "nope.yaml: (document): file not found" in err
    assert "Traceback" not in err


def test_rules_in_force_on_an_early_date_exclude_later_guidance(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # the example's courses moved six years earlier: a prior course may not be dated after the as-of date
    text = EXAMPLE.read_text(encoding="utf-8")
    for old, new in (
        ("2015-01-05", "2009-01-05"),
        ("2015-01-16", "2009-01-16"),
        ("2016-09-15", "2010-09-15"),
    ):
        text = text.replace(old, new)
    early = tmp_path / "early.yaml"
    early.write_text(text, encoding="utf-8")
    assert main(["evaluate", str(EXAMPLE), "--as-of", "2011-06-01"]) == 2
    assert "after the date of evaluation (2011-06-01)" in capsys.readouterr().err
    assert main(["evaluate", str(early), "--as-of", "2011-06-01", "--format", "json"]) == 0
    out = capsys.readouterr().out
    assert '"as_of": "2011-06-01"' in out
    assert '"rule_id": "nelson.cumulative"' in out  # Nelson 2009 was in force
    assert '"rule_id": "hytec.resbrt"' not in out  # Sahgal 2012 was not yet


def test_a_bad_as_of_date_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["evaluate", str(EXAMPLE), "--as-of", "2016-13-01"])
    assert exc.value.code == 2
    assert "write YYYY-MM-DD" in capsys.readouterr().err


def test_a_broken_rule_pack_is_refused_with_the_file_and_field(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    pack = tmp_path / "rules"
    shutil.copytree(ROOT / "rules", pack)
    target = pack / "policies" / "hytec" / "resbrt.yaml"
    target.write_text(target.read_text().replace('operator: "<="', 'operator: "=<"'), encoding="utf-8")
    assert main(["evaluate", str(EXAMPLE), "--rules", str(pack)]) == 2
    err = capsys.readouterr().err
    assert "resbrt.yaml:" in err and "limit.operator" in err and '"<="' in err


def test_the_oracle_engine_can_be_chosen(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["evaluate", str(EXAMPLE), "--engine", "oracle", "--format", "json"]) == 0
    assert '"name": "python-oracle"' in capsys.readouterr().out


def test_limits_is_a_subcommand_of_reirrad(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["limits", str(EXAMPLE), "--format", "json", "--as-of", "2026-11-23"]) == 0
    data = json.loads(capsys.readouterr().out)
    hytec_1fx = [
        row
        for row in data["limits"]
        if row["policy"] == "hytec"
        and row["fractions"] == 1
        and row["structure"] == "SpinalCord"
        and row["metric"] == "Dmax"
    ]
    # re-SBRT limit 25 Gy EQD2 at α/β 2 in one fraction: d(d + 2)/4 = 25 gives d = √101 − 1 = 9.05 (shown rounded down)
    assert hytec_1fx[0]["binding_criterion"] == "hytec.resbrt"
    assert hytec_1fx[0]["max_dose"] == 9.04


def test_synth_then_audit_run_through_the_reirrad_command(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    cohort = tmp_path / "cohort.jsonl"
    assert main(["synth", "--n", "20", "--seed", "5", "--out", str(cohort)]) == 0
    assert (
        main(
            [
                "audit",
                str(cohort),
                "--out",
                str(tmp_path / "audit"),
                "--workers",
                "0",
                "--quiet",
                "--as-of",
                "2026-11-23",
            ]
        )
        == 0
    )
    summary = json.loads((tmp_path / "audit" / "summary.json").read_text())
    assert summary["counts"]["evaluated"] == 20
    assert "evaluated: 20" in capsys.readouterr().out


def test_a_one_shot_command_run_as_a_program_writes_all_of_its_output(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``evaluate`` and ``limits`` end their process without the interpreter's teardown (cli.main._quick_exit);
    their whole output still arrives, through a pipe and into a file, with their exit code, and a refusal's message
    too."""
    import os
    import subprocess
    import sys

    assert main(["evaluate", str(EXAMPLE), "--as-of", "2026-11-23", "--format", "json"]) == 0
    expected = capsys.readouterr().out
    assert len(expected) > 65_536  # more than a pipe holds at once
    command = [
        sys.executable,
        "-m",
        "reirrad",
        "evaluate",
        str(EXAMPLE),
        "--as-of",
        "2026-11-23",
        "--format",
        "json",
    ]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "engine")}
    piped = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    assert (piped.returncode, piped.stdout, piped.stderr) == (0, expected, "")
    with (tmp_path / "out.json").open("w") as out:
        to_file = subprocess.run(command, stdout=out, env=env, check=False)
    assert to_file.returncode == 0
    assert (tmp_path / "out.json").read_text() == expected
    # standard output with a buffer larger than the whole output: nothing arrives unless it is flushed
    buffered = (
        "import sys; sys.stdout = open(1, 'w', buffering=1 << 20, closefd=False); "
        "sys.argv = ['reirrad', *sys.argv[1:]]; from reirrad.cli.main import main; main()"
    )
    for args in (
        ["evaluate", str(EXAMPLE), "--format", "json"],
        ["limits", str(EXAMPLE), "--fractions", "1"],
    ):
        args += ["--as-of", "2026-11-23"]
        assert main(args) == 0
        expected = capsys.readouterr().out
        with (tmp_path / "out.txt").open("w") as out:
            run = subprocess.run([sys.executable, "-c", buffered, *args], stdout=out, env=env, check=False)
        assert run.returncode == 0
        assert (tmp_path / "out.txt").read_text() == expected, args[0]
    refused = subprocess.run(
        [sys.executable, "-m", "reirrad", "limits", str(tmp_path / "missing.yaml")],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert refused.returncode == 2
    assert "missing.yaml" in refused.stderr and "file not found" in refused.stderr
