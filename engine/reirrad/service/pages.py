"""The web page: a case as a form, pasted YAML or imported files; the report; downloads; 'I disagree, because …'."""

from __future__ import annotations

import json
import tempfile
from datetime import date
from pathlib import Path
from typing import Any

import yaml
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from starlette.datastructures import FormData, UploadFile

from reirrad.errors import InputError, Problem, format_path
from reirrad.explain.report import sureness_lines
from reirrad.service import forms
from reirrad.service.api import (
    CourseFields,
    disagreement_problems,
    evaluate_in_turn,
    import_upload_kind,
    rule_summary,
    run_bounded,
    uploaded_renamed,
    uploaded_save,
)
from reirrad.service.engine import ServiceEngine, case_hash, case_to_data, parse_case_dict, parse_case_yaml
from reirrad.service.feedback import FeedbackStore, flagged
from reirrad.service.security import TOKEN_COOKIE, ServiceConfig

__all__ = ["router", "templates"]

router = APIRouter(include_in_schema=False)
templates = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))
templates.env.globals["forms"] = forms
templates.env.globals["format_path"] = format_path
templates.env.filters["describe"] = forms.describe

PASTED = "pasted case"
FORM = "form"
UPLOAD_KINDS = {"dvh": "Eclipse DVH export (.txt)", "fhir": "FHIR bundle (.json)", "dicom": "DICOM RT files"}
STATUS_WORDS = {
    "pass": "within the limit",
    "fail": "over the limit",
    "indeterminate": "cannot be decided",
    "not_applicable": "does not apply",
}
REC_WORDS = {"made": "recommended", "not_made": "not recommended here", "indeterminate": "cannot be decided"}


def _engine(request: Request) -> ServiceEngine:
    engine: ServiceEngine = request.app.state.engine
    return engine


def _store(request: Request) -> FeedbackStore | None:
    store: FeedbackStore | None = request.app.state.store
    return store


def margin(line: dict[str, Any]) -> str:
    """How far the value is from its limit, in the line's unit; positive when the value is on the allowed side."""
    value, limit, op = line.get("value"), line.get("limit"), line.get("operator")
    if value is None or limit is None:
        return ""
    room = limit - value if op in ("<", "<=") else value - limit
    unit = line["unit"]
    digits = 3 if unit == "ratio" else 2
    return f"{room:+.{digits}f} {unit}"


def number(value: Any, unit: str) -> str:
    if value is None:
        return "—"
    digits = 3 if unit == "ratio" else 2
    return f"{value:.{digits}f} {unit}"


_OPS = {"<": "<", "<=": "≤", ">": ">", ">=": "≥"}
templates.env.filters["margin"] = margin
templates.env.filters["number"] = number
templates.env.globals["OPS"] = _OPS
templates.env.globals["STATUS_WORDS"] = STATUS_WORDS
templates.env.globals["REC_WORDS"] = REC_WORDS
templates.env.globals["UPLOAD_KINDS"] = UPLOAD_KINDS


def _page(request: Request, name: str, status: int = 200, **context: Any) -> HTMLResponse:
    info = _engine(request).info
    response: HTMLResponse = templates.TemplateResponse(
        request, name, {"pack": info, "today": date.today().isoformat(), **context}, status_code=status
    )
    return response


def _as_of(text: str | None) -> tuple[date | None, list[Problem]]:
    if not text or not text.strip():
        return None, []
    try:
        return date.fromisoformat(text.strip()), []
    except ValueError:
        return None, [Problem("form", ("as_of",), f"'{text}' is not a date", "YYYY-MM-DD", code="as_of")]


def _case_yaml(case_data: dict[str, Any]) -> str:
    text: str = yaml.safe_dump(case_data, sort_keys=False, allow_unicode=True, default_flow_style=None)
    return text


async def _report(
    request: Request, case: Any, as_of: date | None, notice: str = "", record: bool = True
) -> HTMLResponse:
    result = await evaluate_in_turn(request, case, as_of)
    digest = case_hash(case)
    store = _store(request)
    if store is not None and record and request.app.state.config.record_feedback:
        store.record_fired("page", digest, flagged(result))
    lines = sorted(
        [
            *[("constraint", x) for x in result["constraints"]],
            *[("advisory", x) for x in result["advisories"]],
        ],
        key=lambda kl: (kl[1]["policy"], kl[0] != "constraint", kl[1]["criterion"], kl[1]["structure"] or ""),
    )
    return _page(
        request,
        "report.html",
        result=result,
        lines=lines,
        case_yaml=_case_yaml(case_to_data(case)),
        case_hash=digest,
        as_of=as_of.isoformat() if as_of else "",
        notice=notice,
        sensitivity=sureness_lines(result, bullet=""),
        before_planning=_before_planning(result.get("before_planning")),
    )


def _before_planning(found: dict[str, Any] | None) -> dict[str, Any] | None:
    """The before-planning view of a result without a planned dose: what each policy leaves, per fraction number,
    with its chart (SVG made by reirrad.explain.limits from the pack's own names and numbers), the dose already given,
    the candidate schedules and what does not apply."""
    if not found or not found.get("limits"):
        return None
    from markupsafe import Markup

    from reirrad.explain.limits import chart_series, dose_so_far, render_svg

    limits = found["limits"]
    rows: dict[tuple[str, str, str], dict[str, Any]] = {}
    for lim in limits["limits"]:
        if not lim["structure"]:
            continue
        row = rows.setdefault(
            (lim["policy"], lim["structure"], lim["metric"]),
            {
                "policy": lim["policy"],
                "where": f"{lim['structure']} {lim['metric']}",
                "doses": {},
                "binding": set(),
            },
        )
        row["doses"][lim["fractions"]] = lim["max_dose"]
        if lim.get("binding_criterion"):
            row["binding"].add(lim["binding_criterion"])
    fractions = sorted({n for row in rows.values() for n in row["doses"]})
    return {
        "reason": found.get("reason"),
        "planned_start": found.get("planned_start"),
        "planned_start_assumed": found.get("planned_start_assumed"),
        "technique": limits.get("technique"),
        "fractions": fractions,
        "rows": [{**row, "binding": ", ".join(sorted(row["binding"]))} for row in rows.values()],
        "charts": [
            (f"{s} {m}", Markup(render_svg(limits, s, m)))  # render_svg escapes every text it writes
            for s, m in sorted(chart_series(limits))
        ],
        "dose_so_far": dose_so_far(limits),
        "candidates": [
            {
                **c,
                "covered": [p for p in c["policies"] if p["verdict"] != "not applicable"],
                "not_covered": [p["policy"] for p in c["policies"] if p["verdict"] == "not applicable"],
            }
            for c in limits.get("candidates", [])
        ],
        "not_applicable": limits.get("not_applicable", []),
        "notes": limits.get("notes", []),
    }


@router.get("/", response_class=HTMLResponse)
async def index(request: Request) -> HTMLResponse:
    return _page(request, "index.html", state=forms.FormState(), yaml_text="", yaml_problems=[], as_of="")


def _text(form: FormData, key: str) -> str:
    value = form.get(key)
    return value if isinstance(value, str) else ""


def _merge_course(state: forms.FormState, course: dict[str, Any], planned: bool) -> None:
    """Put an imported course into the form: the planned course, or the first empty earlier-course row."""
    if planned:
        prefix = "planned_course"
        for key in [k for k in state.values if k.startswith(prefix + ".")]:
            del state.values[key]
    else:
        i = 0
        while any(state.values.get(f"prior_courses[{i}].{f.key}") for f in forms.COURSE_FIELDS) or any(
            state.values.get(f"prior_courses[{i}].doses[{j}].structure")
            for j in range(state.rows_for(f"prior_courses[{i}]"))
        ):
            i += 1
        prefix = f"prior_courses[{i}]"
        state.prior_rows = max(state.prior_rows, i + 1)
    filled = forms.case_to_form({"planned_course": course} if planned else {"prior_courses": [course]})
    source = "planned_course" if planned else "prior_courses[0]"
    for key, value in filled.values.items():
        if key.startswith(source + "."):
            state.values[prefix + key[len(source) :]] = value
    state.dose_rows[prefix] = filled.dose_rows.get(source, 2)


async def _import_into(request: Request, form: FormData, state: forms.FormState) -> list[str]:
    """Run the chosen importer on the uploaded files; put the course into the form or the problems at the upload."""
    kind = _text(form, "upload.kind") or "dvh"
    planned = _text(form, "upload.role") == "planned"
    files = [f for f in form.getlist("upload.files") if isinstance(f, UploadFile) and f.filename]
    if kind not in UPLOAD_KINDS:
        state.errors["upload.kind"] = [
            Problem("upload", ("kind",), f"unknown file kind {kind!r}", ", ".join(UPLOAD_KINDS))
        ]
        return []
    if not files:
        state.errors["upload.files"] = [
            Problem(
                "upload",
                ("files",),
                "no file was chosen",
                "one file (DICOM: RT Dose and RT Structure Set, optionally RT Plan)",
            )
        ]
        return []
    field_problems: list[Problem] = []
    numbers: dict[str, Any] = {}
    for key, parse in (("prescription", float), ("fractions", int)):
        text = _text(form, f"upload.{key}").strip()
        if text:
            try:
                numbers[key] = parse(text)
            except ValueError:
                field_problems.append(
                    Problem(
                        "upload",
                        (key,),
                        f"'{text}' is not a number",
                        "a number" if key == "prescription" else "a whole number ≥ 1",
                    )
                )
    technique = _text(form, "upload.technique") or None
    if field_problems:
        for p in field_problems:
            state.errors.setdefault(f"upload.{p.path[0]}", []).append(p)
        return []
    try:
        course = CourseFields(
            technique=technique,  # type: ignore[arg-type]
            start=_text(form, "upload.start").strip() or None,
            end=None if planned else (_text(form, "upload.end").strip() or None),
            planned=planned,
            **numbers,
        )
    except ValueError as exc:
        errors: list[Any] = getattr(exc, "errors", list)()
        for e in errors:
            key = str(e["loc"][0]) if e.get("loc") else "files"
            state.errors.setdefault(f"upload.{key}", []).append(Problem("upload", (key,), e["msg"], ""))
        return []
    names: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="reirrad-upload-") as folder:
        paths: dict[str, Any] = {}
        if kind == "dicom":
            import pydicom

            for f in files:
                saved = await uploaded_save(Path(folder), f, "dicom", names)
                try:
                    modality = str(
                        pydicom.dcmread(saved, stop_before_pixels=True, specific_tags=["Modality"]).get(
                            "Modality", ""
                        )
                    )
                except Exception:
                    modality = ""
                role = {"RTDOSE": "rtdose", "RTSTRUCT": "rtstruct", "RTPLAN": "rtplan"}.get(modality)
                if role is None:
                    paths.setdefault("record", []).append(saved)
                else:
                    paths[role] = saved
            missing = [r for r in ("rtdose", "rtstruct") if r not in paths]
            if missing:
                state.errors["upload.files"] = [
                    Problem(
                        "upload",
                        ("files",),
                        f"no {' and no '.join(m.upper() for m in missing)} file among those chosen",
                        "an RT Dose and an RT Structure Set (DICOM), optionally an RT Plan and treatment records",
                    )
                ]
                return []
        else:
            paths["file"] = await uploaded_save(Path(folder), files[0], kind, names)
        try:
            result = await run_bounded(request, import_upload_kind, kind, paths, course, {})
        except InputError as exc:
            for p in uploaded_renamed(exc, names).problems:
                key = (
                    str(p.path[0])
                    if p.path and str(p.path[0]) in ("start", "end", "technique", "prescription", "fractions")
                    else "files"
                )
                state.errors.setdefault(f"upload.{key}", []).append(p)
            return []
    _merge_course(state, result.course, planned)
    warnings = list(result.warnings)
    for temp, original in names.items():
        warnings = [w.replace(temp, original) for w in warnings]
    where = "the planned course" if planned else "an earlier course"
    return [f"Read {', '.join(names.values())} into {where}.", *result.notes, *warnings]


@router.post("/case", response_class=HTMLResponse)
async def case_form(request: Request) -> HTMLResponse:
    async with request.form() as form:
        return await _case_form(request, form)


async def _case_form(request: Request, form: FormData) -> HTMLResponse:
    values = {k: v for k, v in form.multi_items() if isinstance(v, str)}
    state = forms.FormState.from_form(values)
    action = _text(form, "action") or "evaluate"
    messages: list[str] = []
    as_of_text = _text(form, "as_of")
    if action == "add_prior":
        state.prior_rows += 1
    elif action.startswith("add_dose:"):
        prefix = action.split(":", 1)[1]
        state.dose_rows[prefix] = state.rows_for(prefix) + 1
    elif action == "import":
        messages = await _import_into(request, form, state)
    else:
        as_of, problems = _as_of(as_of_text)
        data, where = forms.form_to_case(values)
        case, case_problems = parse_case_dict(data, FORM)
        if problems:
            state.errors["as_of"] = problems
        if case is not None and not problems:
            return await _report(request, case, as_of)
        state.place(case_problems, where)
        return _page(
            request, "index.html", 422, state=state, yaml_text="", yaml_problems=[], as_of=as_of_text
        )
    return _page(
        request,
        "index.html",
        state=state,
        yaml_text="",
        yaml_problems=[],
        as_of=as_of_text,
        messages=messages,
    )


@router.post("/case/yaml", response_class=HTMLResponse)
async def case_yaml(request: Request) -> HTMLResponse:
    form = await request.form()
    text = _text(form, "case_yaml")
    as_of_text = _text(form, "as_of")
    as_of, problems = _as_of(as_of_text)
    try:
        case = parse_case_yaml(text, PASTED)
    except InputError as exc:
        problems += exc.problems
        case = None
    if case is None or problems:
        return _page(
            request,
            "index.html",
            422,
            state=forms.FormState(),
            yaml_text=text,
            yaml_problems=problems,
            as_of=as_of_text,
            open_yaml=True,
        )
    return await _report(request, case, as_of)


@router.post("/case/edit", response_class=HTMLResponse)
async def case_edit(request: Request) -> HTMLResponse:
    """The report's case, back in the form."""
    form = await request.form()
    text = _text(form, "case_yaml")
    try:
        case = parse_case_yaml(text, PASTED)
    except InputError as exc:
        return _page(
            request,
            "index.html",
            422,
            state=forms.FormState(),
            yaml_text=text,
            yaml_problems=exc.problems,
            as_of="",
            open_yaml=True,
        )
    return _page(
        request,
        "index.html",
        state=forms.case_to_form(case_to_data(case)),
        yaml_text="",
        yaml_problems=[],
        as_of=_text(form, "as_of"),
    )


DOWNLOADS = {
    "json": ("application/json", "json"),
    "markdown": ("text/markdown; charset=utf-8", "md"),
    "yaml": ("application/yaml", "yaml"),
    "fhir": ("application/fhir+json", "fhir.json"),
}


@router.post("/download")
async def download(request: Request) -> Response:
    form = await request.form()
    kind = _text(form, "format")
    text = _text(form, "case_yaml")
    as_of, problems = _as_of(_text(form, "as_of"))
    if kind not in DOWNLOADS:
        problems.append(Problem("form", ("format",), f"unknown format {kind!r}", ", ".join(DOWNLOADS)))
    try:
        case = parse_case_yaml(text, PASTED)
    except InputError as exc:
        problems += exc.problems
    if problems:
        raise InputError.of(problems)
    media, suffix = DOWNLOADS[kind]
    data = case_to_data(case)
    if kind == "yaml":
        body = _case_yaml(data)
    else:
        result = await evaluate_in_turn(request, case, as_of)
        if kind == "json":
            body = json.dumps(result, indent=2, ensure_ascii=False) + "\n"
        elif kind == "markdown":
            from reirrad.explain.report import render_markdown

            body = render_markdown(result)
        else:
            from reirrad.service.fhir import result_to_fhir

            body = json.dumps(result_to_fhir(result, data), indent=2, ensure_ascii=False) + "\n"
    name = f"{case.case_id}.{suffix}"
    return PlainTextResponse(
        body, media_type=media, headers={"Content-Disposition": f'attachment; filename="{name}"'}
    )


@router.post("/disagree", response_class=HTMLResponse)
async def disagree(request: Request) -> HTMLResponse:
    form = await request.form()
    rule_id, version = _text(form, "rule_id"), _text(form, "rule_version")
    reason = _text(form, "reason").strip()
    text = _text(form, "case_yaml")
    as_of, _ = _as_of(_text(form, "as_of"))
    case = parse_case_yaml(text, PASTED)
    problems = disagreement_problems(_engine(request), rule_id, version, FORM)
    if len(reason) < 3:
        problems.append(
            Problem(
                FORM,
                ("reason",),
                "a reason is needed",
                "a sentence saying why (no patient names)",
                code="feedback.reason",
            )
        )
    if problems:
        return await _report(
            request,
            case,
            as_of,
            notice="Not recorded: " + "; ".join(p.message for p in problems),
            record=False,
        )
    store = _store(request)
    if store is not None:
        store.record_outcome("page", "disagreed", case_hash(case), rule_id, version, reason=reason[:1000])
    return await _report(
        request,
        case,
        as_of,
        notice=f"Recorded: you disagree with {rule_id} {version}. Thank you.",
        record=False,
    )


@router.get("/rules", response_class=HTMLResponse)
async def rules_page(request: Request) -> HTMLResponse:
    engine = _engine(request)
    rules = [rule_summary(r) for r in sorted(engine.pack.rules, key=lambda r: (r.kind, r.id, r.version))]
    return _page(
        request, "pack.html", rules=rules, in_force={r.id: r.version for r in engine.rules_in_force().rules}
    )


@router.get("/rules/{rule_id}", response_class=HTMLResponse)
async def rule_page(request: Request, rule_id: str) -> HTMLResponse:
    engine = _engine(request)
    versions = sorted(
        (r for r in engine.pack.rules if r.id == rule_id), key=lambda r: r.version, reverse=True
    )
    if not versions:
        return _page(request, "missing.html", 404, what=f"No rule {rule_id!r} in the rule pack.")
    refs = engine.pack.references
    return _page(request, "rule.html", rule_id=rule_id, versions=versions, refs=refs)


@router.get("/feedback", response_class=HTMLResponse)
async def feedback_page(request: Request) -> HTMLResponse:
    store = _store(request)
    return _page(request, "feedback.html", tallies=store.report() if store else [])


@router.get("/login", response_class=HTMLResponse)
async def login_page(request: Request) -> HTMLResponse:
    return _page(request, "login.html")


@router.post("/login")
async def login(request: Request) -> Response:
    form = await request.form()
    config: ServiceConfig = request.app.state.config
    token = _text(form, "token").strip()
    import hmac

    if config.token is None or not hmac.compare_digest(token.encode(), config.token.encode()):
        return _page(request, "login.html", 403, refused=True)
    response = RedirectResponse("/", status_code=303)
    response.set_cookie(
        TOKEN_COOKIE, token, httponly=True, samesite="strict", secure=config.base_url.startswith("https")
    )
    return response
