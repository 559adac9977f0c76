"""mkdocs hook: the rule pack's pages (rules, policies, repair schedules, index) and the worked before-planning
example (the T9 case through `reirrad evaluate` and `reirrad limits`, markdown with its charts), generated at build
time so that every figure on them is the code's."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

from mkdocs.structure.files import File, Files
from reirrad.maint.docsgen import generate_pages, nav_entries

RULE_PACK_PAGE = "rules/index.md"
T9_PAGE = "before-planning-example.md"
T9_AS_OF = date(2026, 11, 23)
_pages: dict[str, str] = {}


def _pack_dir(config: Any) -> Path:
    return Path(config["config_file_path"]).resolve().parent / "rules"


def on_config(config: Any) -> Any:
    """Generate once per build and replace the nav entry that points at the index with the whole section."""
    _pages.clear()
    _pages.update(generate_pages(_pack_dir(config)))
    _pages[T9_PAGE] = _t9_page(_pack_dir(config).parent / "docs" / "examples" / "t9-before-planning.yaml", _pack_dir(config))
    nav = config.get("nav") or []
    for i, entry in enumerate(nav):
        if isinstance(entry, dict) and list(entry.values()) == [RULE_PACK_PAGE]:
            nav[i] = {next(iter(entry)): nav_entries(_pages)}
    return config


def on_files(files: Files, config: Any) -> Files:
    for path, content in _pages.items():
        files.append(File.generated(config, path, content=content))
    return files


def _t9_page(case_file: Path, rules: Path) -> str:
    """``reirrad evaluate --format markdown`` and ``reirrad limits --format markdown`` of the T9 example."""
    from reirrad.case import load_case
    from reirrad.dose.limits import derive_limits
    from reirrad.evaluate import Evaluator
    from reirrad.explain.limits import render_markdown as limits_markdown
    from reirrad.explain.report import render_markdown as evaluate_markdown
    from reirrad.knowledge.data import load_table
    from reirrad.knowledge.rulepack import load_pack

    full = load_pack(rules)
    case = load_case(case_file, as_of=T9_AS_OF)
    result = Evaluator(full, as_of=T9_AS_OF).evaluate(case)
    limits = derive_limits(case, full.select(T9_AS_OF), table=load_table(full.root), candidates=True)
    command = f"docs/examples/{case_file.name} --as-of {T9_AS_OF.isoformat()} --format markdown"
    return "\n".join(
        [
            "# Worked example: T9 before planning",
            "",
            f"Generated when this site was built, from `docs/examples/{case_file.name}` with the bundled rule pack: "
            "the two commands' markdown output, unedited but for its headings (two levels down). See [Before planning](before-planning.md) for how "
            "to read it.",
            "",
            f"## `reirrad evaluate {command}`",
            "",
            _demoted(evaluate_markdown(result)),
            f"## `reirrad limits {command}`",
            "",
            _demoted(limits_markdown(limits)),
        ]
    )


def _demoted(markdown: str) -> str:
    """A report's headings two levels down, under this page's own."""
    return "\n".join("##" + line if line.startswith("#") else line for line in markdown.splitlines()) + "\n"
