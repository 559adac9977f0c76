"""Importers: clinical files (DICOM RT, Eclipse DVH exports, FHIR mCODE bundles) → a course of the
case format.

Each importer returns an :class:`ImportResult`; ``reirrad import`` prints it as YAML (see docs/importing.md).
pydicom, numpy and fhir.resources are optional dependencies, imported only when an importer runs.
"""

from reirrad.importers.common import CourseOptions, ImportResult, render
from reirrad.importers.structure_map import StructureMap, load_structure_map

__all__ = ["CourseOptions", "ImportResult", "StructureMap", "load_structure_map", "render"]
