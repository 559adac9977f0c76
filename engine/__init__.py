"""reirrad: an explainable guideline engine for re-irradiating spinal metastases."""

from .case import Case, load_case, parse_case
from .errors import EngineError, InputError, Problem
from .evaluate import Evaluator
from .rulepack import RulePack, load_pack

__all__ = ["Case", "EngineError", "Evaluator", "InputError", "Problem", "RulePack", "load_case", "load_pack",
           "parse_case"]
