"""reirrad: an explainable guideline engine for re-irradiating spinal metastases."""

from reirrad.case import Case, load_case, parse_case
from reirrad.errors import EngineError, InputError, Problem
from reirrad.evaluate import Evaluator
from reirrad.knowledge.rulepack import RulePack, load_pack

__all__ = [
    "Case",
    "EngineError",
    "Evaluator",
    "InputError",
    "Problem",
    "RulePack",
    "load_case",
    "load_pack",
    "parse_case",
]
