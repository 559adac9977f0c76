"""reirrad: an explainable guideline engine for re-irradiating spinal metastases."""

import gc

_collecting = gc.isenabled()
gc.disable()  # the imports below make many long-lived objects and little garbage: no collection during them
try:
    from reirrad.case import Case, load_case, parse_case
    from reirrad.errors import EngineError, InputError, Problem
    from reirrad.evaluate import Evaluator
    from reirrad.knowledge.rulepack import RulePack, load_pack
finally:
    if _collecting:
        gc.freeze()  # what the imports made lives as long as the process: later collections need not walk it
        gc.enable()

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
