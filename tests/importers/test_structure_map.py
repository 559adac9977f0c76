"""The structure map: bundled synonyms, user maps given with --map, and their errors."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
from importer_helpers import DATA, run_import
from reirrad.case import STRUCTURE_NAMES
from reirrad.cli.importers import add_import_parser
from reirrad.errors import InputError
from reirrad.importers.structure_map import (
    DEFAULT_MAP,
    load_structure_map,
    normalize,
    parse_roi_options,
    resolve_rois,
)

PRIOR = ["--technique", "3DCRT", "--fractions", "10", "--start", "2015-01-05", "--end", "2015-01-16"]


@pytest.mark.parametrize(
    ("roi", "expected"),
    [
        ("Cord", "SpinalCord"),
        ("SC", "SpinalCord"),
        ("Spinal Cord", "SpinalCord"),
        ("SPINAL_CORD", "SpinalCord"),
        ("spinal-cord", "SpinalCord"),
        ("Thecal Sac", "ThecalSac"),
        ("BP_L", "BrachialPlex_L"),
        ("Oesophagus", "Esophagus"),
        ("Cord PRV5", "SpinalCord_PRV05"),
        ("SacralPlex", "SacralPlex"),
    ],
)
def test_bundled_map_synonyms(roi: str, expected: str) -> None:
    assert load_structure_map().lookup(roi) == expected


@pytest.mark.parametrize("mm", [2, 3, 5])
@pytest.mark.parametrize(
    "pattern",
    [
        "SpinalCord_PRV{n}",
        "SpinalCord_PRV{n}mm",
        "Cord_PRV{n}mm",
        "Cord PRV {n}mm",
        "Cord+{n}mm",
        "PRV{n} Cord",
        "SC_PRV{n}",
        "cord_prv{n}",
    ],
)
def test_common_cord_prv_names_are_mapped(pattern: str, mm: int) -> None:
    """2 mm PRVs go to SpinalCord_PRV03, the case format's nearest name (docs/importing.md: a decision)."""
    expected = "SpinalCord_PRV05" if mm == 5 else "SpinalCord_PRV03"
    assert load_structure_map().lookup(pattern.format(n=mm)) == expected


def test_the_output_names_the_map_entry_that_matched(tmp_path: Path) -> None:
    text = (DATA / "eclipse_cumulative_cgy.txt").read_text(encoding="utf-8")
    (tmp_path / "prv.txt").write_text(
        text.replace("Structure: SpinalCord", "Structure: Cord PRV 2mm"), encoding="utf-8"
    )
    code, out, err = run_import("dvh", str(tmp_path / "prv.txt"), *PRIOR)
    assert code == 0, err
    assert (
        "# SpinalCord_PRV03 is ROI 'Cord PRV 2mm' (entry 'Cord_PRV_2mm' under SpinalCord_PRV03 of the bundled "
        "structure map (reirrad/importers/structure_map.yaml)): cumulative %" in out
    )
    code, out, err = run_import(
        "dvh", str(DATA / "eclipse_cumulative_cgy.txt"), *PRIOR, "--roi", "SpinalCord=SpinalCord"
    )
    assert code == 0, err
    assert "# SpinalCord is ROI 'SpinalCord' (--roi SpinalCord=...)" in out


def test_a_2_mm_and_a_3_mm_prv_of_one_cord_are_ambiguous() -> None:
    with pytest.raises(InputError, match="ROIs 'Cord_PRV2mm' and 'Cord_PRV3mm' both map to SpinalCord_PRV03"):
        resolve_rois(["Cord", "Cord_PRV2mm", "Cord_PRV3mm"], load_structure_map(), {}, "rs.dcm")


def test_every_tg263_name_maps_to_itself() -> None:
    smap = load_structure_map()
    assert [smap.lookup(n) for n in STRUCTURE_NAMES] == list(STRUCTURE_NAMES)


def test_canal_prv_is_deliberately_unmapped() -> None:
    smap = load_structure_map()
    assert smap.lookup("PRV5 SpinalCanal") is None
    assert "PRV5 SpinalCanal" in DEFAULT_MAP.read_text(encoding="utf-8")


def test_normalize_collapses_separators_and_case() -> None:
    assert normalize("  Spinal__Cord - PRV ") == "spinal cord prv"


def test_user_map_maps_an_institutional_name(tmp_path: Path) -> None:
    (tmp_path / "map.yaml").write_text(
        "version: 1\nstructures:\n  ThecalSac: [PRV5 SpinalCanal]\nignore: [Body]\n", encoding="utf-8"
    )
    text = (
        (DATA / "eclipse_cumulative_cgy.txt")
        .read_text(encoding="utf-8")
        .replace("Structure: SpinalCord", "Structure: PRV5 SpinalCanal")
    )
    (tmp_path / "dvh.txt").write_text(text, encoding="utf-8")
    code, out, err = run_import("dvh", str(tmp_path / "dvh.txt"), *PRIOR, "--map", str(tmp_path / "map.yaml"))
    assert code == 0, err
    assert "ThecalSac: {Dmax: 30.0" in out
    code, _, err = run_import("dvh", str(tmp_path / "dvh.txt"), *PRIOR)
    assert code == 2
    assert (
        "ROI 'PRV5 SpinalCanal' is not in the bundled structure map (reirrad/importers/structure_map.yaml)"
        in err
    )
    assert str(DEFAULT_MAP) not in err  # the same message on every machine


def test_roi_option_overrides_the_map(tmp_path: Path) -> None:
    code, out, err = run_import(
        "dvh", str(DATA / "eclipse_cumulative_cgy.txt"), *PRIOR, "--roi", "SpinalCord=PTV_T8"
    )
    assert code == 0, err
    assert "SpinalCord: {Dmax: 32.0" in out


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("version: 2\nstructures: {}\n", "version 2 is not supported"),
        (
            "version: 1\nstructures:\n  Spinalcord: [Cord]\n",
            "'Spinalcord' is not a structure name of the case format; did you mean 'SpinalCord'?",
        ),
        ("version: 1\nstructures:\n  SpinalCord: Cord\n", "must be a list of ROI names"),
        (
            "version: 1\nstructures:\n  SpinalCord: [Cord]\n  ThecalSac: [cord]\n",
            "'cord' is already mapped to SpinalCord",
        ),
        ("version: 1\nstructures:\n  SpinalCord: [Cord]\nignore: [CORD]\n", "'CORD' is both mapped"),
        ("version: 1\nstructures: {}\ncolour: red\n", "unknown key 'colour'"),
        ("- a list\n", "a structure map must be a mapping"),
    ],
)
def test_bad_map_is_refused(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "map.yaml").write_text(text, encoding="utf-8")
    with pytest.raises(InputError) as info:
        load_structure_map(tmp_path / "map.yaml")
    assert message in info.value.render()
    assert str(tmp_path / "map.yaml") in info.value.render()


def test_missing_map_file_is_refused(tmp_path: Path) -> None:
    code, _, err = run_import(
        "dvh", str(DATA / "eclipse_cumulative_cgy.txt"), *PRIOR, "--map", str(tmp_path / "none.yaml")
    )
    assert code == 2
    assert "none.yaml: (document): file not found" in err


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (["SpinalCord"], "not of the form TG263NAME=ROI name"),
        (["Cord=Cord"], "'Cord' is not a structure name of the case format"),
        (["SpinalCord=A", "SpinalCord=B"], "SpinalCord is given twice"),
    ],
)
def test_bad_roi_option_is_refused(values: list[str], message: str) -> None:
    with pytest.raises(InputError) as info:
        parse_roi_options(values)
    assert message in info.value.render()


def test_unrelated_rois_are_set_aside_and_ignored_ones_too() -> None:
    choice = resolve_rois(["Cord", "PTV", "Liver", "VocalCords"], load_structure_map(), {}, "rs.dcm")
    assert choice.chosen == {"SpinalCord": "Cord"}
    assert choice.unused == ["PTV", "Liver", "VocalCords"]


def test_import_parser_has_three_formats_with_functions() -> None:
    parser = argparse.ArgumentParser()
    add_import_parser(parser.add_subparsers(dest="command"))
    for argv in (
        ["import", "dicom", "--rtdose", "a", "--rtstruct", "b"],
        ["import", "dvh", "f"],
        ["import", "fhir", "b"],
    ):
        assert callable(parser.parse_args(argv).func)


def test_a_user_map_may_name_target_synonyms_and_nothing_else_under_targets(tmp_path: Path) -> None:
    (tmp_path / "map.yaml").write_text(
        "version: 1\nstructures: {SpinalCord: [Cord]}\ntargets: {PTV_High: [PTV_24Gy], PTV_Low: [PTV_18Gy]}\n",
        encoding="utf-8",
    )
    with pytest.raises(InputError, match="'PTV_Low' is not a target name of the case format"):
        load_structure_map(tmp_path / "map.yaml")
    (tmp_path / "map.yaml").write_text(
        "version: 1\nstructures: {SpinalCord: [Cord]}\ntargets: {PTV_High: [PTV_24Gy]}\n", encoding="utf-8"
    )
    assert load_structure_map(tmp_path / "map.yaml").lookup("ptv 24gy") == "PTV_High"
