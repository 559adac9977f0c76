"""`pip install .` into a fresh virtual environment works from the wheel alone (pack and schemas bundled)."""

import os
import subprocess
import sys
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_wheel_installs_and_evaluates_in_a_fresh_venv(tmp_path: Path) -> None:
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    python = env_dir / "bin" / "python"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", str(ROOT)], check=True, timeout=900, env=env
    )
    example = (
        tmp_path / "case.yaml"
    )  # outside the source tree: the installed package must bring its own rules
    example.write_text(
        (ROOT / "docs" / "examples" / "t1-chondrosarcoma.yaml").read_text(encoding="utf-8"), encoding="utf-8"
    )
    run = subprocess.run(
        [str(env_dir / "bin" / "reirrad"), "evaluate", str(example)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
        env=env,
    )
    assert run.returncode == 0, run.stderr
    assert "hytec       resbrt" in run.stdout and "FAIL" in run.stdout
    located = subprocess.run(
        [str(python), "-c", "import reirrad.load.paths as p; print(p.default_pack_dir())"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=True,
        env=env,
    )
    assert "site-packages/reirrad/_bundled/rules" in located.stdout
    assert sys.version_info < (3, 13)


def test_versions_read_from_the_dist_info_folders_are_those_importlib_metadata_gives() -> None:
    """load.paths.dist_version reads a version from its dist-info folder's name (to spare start-up the imports of
    importlib.metadata); it gives what importlib.metadata gives, and None for what is not installed."""
    from importlib.metadata import version

    from reirrad.load.paths import dist_version

    for name in ("durable-rules", "durable_rules", "PyYAML", "pydantic", "jsonschema", "reirrad"):
        assert dist_version(name) == version(name), name
    assert dist_version("no-such-distribution-here") is None
