"""ROI names → TG-263 names, through an editable YAML map; unmapped ROIs that look neural are refused."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from reirrad.case import STRUCTURE_NAMES, suggest_structure
from reirrad.errors import InputError, Problem
from reirrad.importers.common import listing
from reirrad.load.yamlio import load_yaml_file

__all__ = [
    "DEFAULT_MAP",
    "TARGET_NAMES",
    "RoiChoice",
    "StructureMap",
    "load_structure_map",
    "normalize",
    "parse_roi_options",
    "resolve_rois",
]

DEFAULT_MAP = Path(__file__).with_name("structure_map.yaml")
TARGET_NAMES = ("PTV_High",)
"""Targets an importer reads: PTV_High's minimum dose is the planned course's ``ptv_high_dmin``."""
BUNDLED_TITLE = "the bundled structure map (reirrad/importers/structure_map.yaml)"
"""How messages and notes name the bundled map: the same text on every machine."""
_NEURAL_HINTS = ("cord", "canal", "thecal", "cauda", "plex", "esoph", "oesoph", "myelon", "spinal")


def normalize(name: str) -> str:
    """Case-folded, with runs of spaces, underscores and hyphens as one space."""
    return " ".join(re.sub(r"[\s_\-]+", " ", name).split()).casefold()


@dataclass(frozen=True)
class StructureMap:
    """A loaded map: normalized synonym → TG-263 name, each synonym as written, and the names to ignore."""

    file: str
    names: Mapping[str, str]
    ignore: frozenset[str]
    written: Mapping[str, str] = field(default_factory=dict)
    """Normalized synonym → the entry as written in the map (the TG-263 name itself for those)."""

    @property
    def title(self) -> str:
        """The map as messages name it: the same text on every machine for the bundled one."""
        return BUNDLED_TITLE if Path(self.file) == DEFAULT_MAP else f"the structure map {self.file}"

    def lookup(self, roi: str) -> str | None:
        return self.names.get(normalize(roi))

    def entry(self, roi: str) -> str:
        """How an ROI matched: 'entry 'Cord_PRV3mm' under SpinalCord_PRV03 of FILE' (or its TG-263 name)."""
        key = normalize(roi)
        tg = self.names[key]
        written = self.written.get(key, tg)
        if written == tg:
            return f"its TG-263 name {tg}" + ("" if roi == tg else f" ('{tg}' ignoring case and separators)")
        return f"entry '{written}' under {tg} of {self.title}"

    def ignored(self, roi: str) -> bool:
        return normalize(roi) in self.ignore


def load_structure_map(path: str | Path | None = None) -> StructureMap:
    """Load and check a structure map; every problem in it is reported at once."""
    path = Path(path) if path is not None else DEFAULT_MAP
    file = str(path)
    data, lines = load_yaml_file(path)
    problems: list[Problem] = []

    def bad(where: tuple[str | int, ...], message: str, accepted: str) -> None:
        problems.append(Problem(file, where, message, accepted, lines.get(where), code="structure-map"))

    if not isinstance(data, dict):
        raise InputError.of(
            [
                Problem(
                    file,
                    (),
                    "a structure map must be a mapping",
                    "keys version, structures, ignore",
                    code="structure-map",
                )
            ]
        )
    for key in data:
        if key not in ("version", "structures", "targets", "ignore"):
            bad((key,), f"unknown key '{key}'", "version, structures, targets, ignore")
    if data.get("version") != 1:
        bad(("version",), f"version {data.get('version')!r} is not supported", "version: 1")
    names: dict[str, str] = {normalize(n): n for n in (*STRUCTURE_NAMES, *TARGET_NAMES)}
    written: dict[str, str] = dict(names)
    for section, allowed, example in (
        ("structures", STRUCTURE_NAMES, "SpinalCord: [Cord, Spinal Cord]"),
        ("targets", TARGET_NAMES, "PTV_High: [PTV High, PTV_H]"),
    ):
        entries = data.get(section, {} if section == "targets" else None)
        if not isinstance(entries, dict):
            bad((section,), f"{section} must map TG-263 names to lists of ROI names", example)
            continue
        for tg, synonyms in entries.items():
            if tg not in allowed:
                hint = suggest_structure(str(tg)) if section == "structures" else ""
                bad(
                    (section, tg),
                    f"'{tg}' is not a {section[:-1]} name of the case format"
                    + (f"; did you mean '{hint}'?" if hint else ""),
                    ", ".join(allowed),
                )
                continue
            if not isinstance(synonyms, list) or not all(isinstance(s, str) and s.strip() for s in synonyms):
                bad((section, tg), "must be a list of ROI names", example.split(": ", 1)[1])
                continue
            for i, synonym in enumerate(synonyms):
                key = normalize(synonym)
                if names.get(key, tg) != tg:
                    bad(
                        (section, tg, i),
                        f"'{synonym}' is already mapped to {names[key]}",
                        "each ROI name under one TG-263 name",
                    )
                names[key] = tg
                written.setdefault(key, synonym)
    ignore = data.get("ignore", [])
    if not isinstance(ignore, list) or not all(isinstance(s, str) for s in ignore):
        bad(("ignore",), "must be a list of ROI names", "[VocalCords]")
        ignore = []
    for i, roi in enumerate(ignore):
        if normalize(roi) in names:
            bad(
                ("ignore", i),
                f"'{roi}' is both mapped (to {names[normalize(roi)]}) and ignored",
                "one of the two",
            )
    if problems:
        raise InputError.of(problems)
    return StructureMap(file, names, frozenset(normalize(r) for r in ignore), written)


def looks_relevant(roi: str) -> bool:
    """Whether an unmapped ROI name looks like a structure reirrad uses (so it must be mapped or ignored)."""
    key = normalize(roi)
    return bool(suggest_structure(roi)) or any(hint in key for hint in _NEURAL_HINTS)


def parse_roi_options(values: Sequence[str] | None, file: str = "--roi") -> dict[str, str]:
    """``--roi SpinalCord="Cord 2"`` options → {TG-263 name: ROI name}."""
    out: dict[str, str] = {}
    problems: list[Problem] = []
    for value in values or ():
        tg, sep, roi = value.partition("=")
        tg, roi = tg.strip(), roi.strip()
        if not sep or not roi:
            problems.append(
                Problem(
                    file,
                    (value,),
                    "not of the form TG263NAME=ROI name",
                    accepted='--roi SpinalCord="Cord 2"',
                    code="roi-option",
                )
            )
        elif tg not in (*STRUCTURE_NAMES, *TARGET_NAMES):
            problems.append(
                Problem(
                    file,
                    (value,),
                    f"'{tg}' is not a structure name of the case format",
                    accepted=", ".join((*STRUCTURE_NAMES, *TARGET_NAMES)),
                    code="roi-option",
                )
            )
        elif tg in out:
            problems.append(
                Problem(
                    file,
                    (value,),
                    f"{tg} is given twice",
                    accepted="one --roi per structure",
                    code="roi-option",
                )
            )
        else:
            out[tg] = roi
    if problems:
        raise InputError.of(problems)
    return out


@dataclass(frozen=True)
class RoiChoice:
    """Which ROI gives which TG-263 structure, how it was chosen, and the ROIs left aside."""

    chosen: dict[str, str]
    unused: list[str]
    how: dict[str, str] = field(default_factory=dict)
    """TG-263 name → how its ROI was chosen ("--roi", or which map entry matched)."""

    def describe(self, tg: str) -> str:
        """'SpinalCord_PRV03 is ROI 'Cord PRV 2mm' (structure map entry ... )'."""
        roi = self.chosen[tg]
        return f"{tg} is ROI '{roi}' ({self.how.get(tg, 'chosen')})"


def resolve_rois(
    rois: Iterable[str],
    smap: StructureMap,
    explicit: Mapping[str, str],
    file: str,
    lines: Mapping[str, int] | None = None,
) -> RoiChoice:
    """One ROI per TG-263 structure: ``--roi`` first, then the map; refuse ambiguity, unmapped neural ROIs."""
    lines = lines or {}
    roi_list = list(rois)
    problems: list[Problem] = []

    def bad(roi: str, message: str, accepted: str, code: str) -> None:
        problems.append(Problem(file, ("ROI", roi), message, accepted, lines.get(roi), code=code))

    seen: set[str] = set()
    for roi in roi_list:
        if roi in seen:
            bad(
                roi,
                f"ROI '{roi}' appears more than once",
                "each ROI name once (rename one copy in the TPS)",
                "roi.duplicate",
            )
        seen.add(roi)
    chosen: dict[str, str] = {}
    for tg, roi in explicit.items():
        if roi not in seen:
            problems.append(
                Problem(
                    file,
                    ("ROI", roi),
                    f"there is no ROI named '{roi}' (asked for by --roi {tg}=...)",
                    accepted=f"one of {listing(sorted(seen))}" if seen else "a file with ROIs",
                    code="roi.missing",
                )
            )
        chosen[tg] = roi
    how = {tg: f"--roi {tg}=..." for tg in chosen}
    explicit_rois = set(explicit.values())
    unused: list[str] = []
    for roi in dict.fromkeys(roi_list):
        if roi in explicit_rois:
            continue
        mapped = smap.lookup(roi)
        if mapped is None:
            if not smap.ignored(roi) and looks_relevant(roi):
                hint = suggest_structure(roi)
                bad(
                    roi,
                    f"ROI '{roi}' is not in {smap.title} but looks like a structure reirrad "
                    "uses" + (f" ({hint}?)" if hint else ""),
                    f"add it under its TG-263 name or under 'ignore' in {smap.title} (or a copy given with "
                    "--map), or choose it with --roi NAME=ROI",
                    "roi.unmapped",
                )
            unused.append(roi)
        elif mapped in explicit:
            unused.append(roi)
        elif mapped in chosen:
            bad(
                roi,
                f"ROIs '{chosen[mapped]}' and '{roi}' both map to {mapped}",
                f"choose one with --roi {mapped}=ROI, or list the other under 'ignore' in the structure map",
                "roi.ambiguous",
            )
        else:
            chosen[mapped] = roi
            how[mapped] = smap.entry(roi)
    if not any(tg in STRUCTURE_NAMES for tg in chosen) and not problems:
        problems.append(
            Problem(
                file,
                (),
                f"no ROI maps to a structure reirrad uses (ROIs: {listing(roi_list)})",
                accepted=f"add the cord's ROI name to {smap.title}, or give --roi SpinalCord=ROI",
                code="roi.none",
            )
        )
    if problems:
        raise InputError.of(problems)
    return RoiChoice(chosen, unused, how)
