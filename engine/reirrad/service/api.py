"""The JSON API (``/api/v1``) and the CDS Hooks endpoints (``/cds-services``): bodies follow ``schemas/``."""

from __future__ import annotations

import json
import re
import tempfile
from collections.abc import Callable
from datetime import date
from functools import partial
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import anyio
from fastapi import APIRouter, File, Form, Query, Request, UploadFile
from fastapi import Path as PathParam
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from pydantic import BaseModel, Field, ValidationError
from starlette.datastructures import UploadFile as StarletteUpload

from reirrad.case import Case
from reirrad.errors import InputError, Problem
from reirrad.importers.common import CourseOptions, ImportResult, render
from reirrad.service import cds
from reirrad.service.engine import ServiceEngine, case_to_data, parse_case_data
from reirrad.service.feedback import FeedbackStore
from reirrad.service.problems import FastJSONResponse, problem_response
from reirrad.service.security import ServiceConfig

__all__ = ["evaluate_in_turn", "read_json", "router", "run_bounded"]

router = APIRouter()
T = TypeVar("T")

try:
    from orjson import loads as _orjson_loads

    def _loads(raw: bytes) -> Any:
        try:
            return _orjson_loads(raw)
        except ValueError:
            return json.loads(raw)  # the standard library's message names the line and column

except ImportError:  # pragma: no cover - the serve extra installs orjson

    def _loads(raw: bytes) -> Any:
        return json.loads(raw)


PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {
        "description": text,
        "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/ProblemDetails"}}},
    }
    for status, text in (
        (400, "The body could not be parsed (malformed JSON or multipart)"),
        (401, "Credentials are needed (beyond loopback)"),
        (403, "The credentials were refused"),
        (413, "The request is too large"),
        (415, "The request is not JSON"),
        (422, "The input was refused: every problem with its field and what is accepted"),
        (504, "The request took too long"),
    )
}
CASE_BODY = {
    "requestBody": {
        "required": True,
        "description": "A case (schemas/case.schema.json)",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Case"}}},
    }
}
RESULT_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The evaluation (schemas/result.schema.json); as text, markdown or a FHIR R4 Bundle with "
        "format=text|markdown|fhir",
        "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/Result"}},
            "text/markdown": {"schema": {"type": "string"}},
            "text/plain": {"schema": {"type": "string"}},
            "application/fhir+json": {"schema": {"type": "object"}},
        },
    },
    **PROBLEM_RESPONSES,
}


def _engine(request: Request) -> ServiceEngine:
    engine: ServiceEngine = request.app.state.engine
    return engine


def _config(request: Request) -> ServiceConfig:
    config: ServiceConfig = request.app.state.config
    return config


def _store(request: Request) -> FeedbackStore | None:
    store: FeedbackStore | None = request.app.state.store
    return store


async def run_bounded(request: Request, fn: Callable[..., T], *args: Any) -> T:
    """Run engine work on a worker thread, within the configured time (TimeoutError → 504)."""
    with anyio.fail_after(_config(request).timeout_s):
        return await anyio.to_thread.run_sync(partial(fn, *args), abandon_on_cancel=True)


async def evaluate_in_turn(request: Request, case: Case, as_of: date | None) -> dict[str, Any]:
    """The case's result, evaluated on the event loop after the requests that came before it; a request still
    waiting for its turn after the configured time gets TimeoutError (→ 504) and is not evaluated."""
    return await _engine(request).evaluate_in_turn(case, as_of, _config(request).timeout_s)


async def read_json(request: Request, what: str) -> Any:
    """The request body as JSON, or an InputError that says what is accepted."""
    kind = (request.headers.get("content-type") or "").split(";")[0].strip().lower()
    if kind not in ("application/json", "application/fhir+json") and not kind.endswith("+json"):
        raise InputError.of(
            [
                Problem(
                    "request body",
                    (),
                    f"content type {kind or '(none)'!r} is not JSON",
                    "Content-Type: application/json",
                    code="http.content-type",
                )
            ]
        )
    raw = await request.body()
    try:
        return _loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError.of(
            [Problem("request body", (), f"not JSON ({exc})", what, code="http.json")]
        ) from None


AsOf = Annotated[
    str | None,
    Query(
        description="use the rules in force on this date, YYYY-MM-DD (default: today)",
        pattern=r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$",
        json_schema_extra={"format": "date"},
    ),
]


def as_of_date(text: str | None) -> date | None:
    """The as-of date of a query, or an InputError naming it (the pattern lets 2016-02-30 through)."""
    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise InputError.of(
            [
                Problem(
                    "query", ("as_of",), f"'{text}' is not a calendar date", "a date YYYY-MM-DD", code="as_of"
                )
            ]
        ) from None


@router.get("/api/v1/health", tags=["service"], responses=PROBLEM_RESPONSES)
async def health(request: Request) -> dict[str, Any]:
    """The service is up; which rule pack it serves."""
    from reirrad.load.paths import tool_version

    info = _engine(request).info
    return {
        "status": "ok",
        "tool": {"name": "reirrad", "version": tool_version()},
        "rule_pack": {"name": info.name, "version": info.version, "content_sha256": info.content_sha256},
    }


@router.post(
    "/api/v1/evaluate",
    tags=["evaluation"],
    openapi_extra=CASE_BODY,
    responses=RESULT_RESPONSE,
    response_class=JSONResponse,
)
async def evaluate(
    request: Request,
    as_of: AsOf = None,
    format: Annotated[
        Literal["json", "markdown", "text", "fhir"], Query(description="the answer's format")
    ] = "json",
) -> Response:
    """Evaluate one case against every rule in force: the result as in ``reirrad evaluate``."""
    day = as_of_date(as_of)
    data = await read_json(request, "a case as JSON (schemas/case.schema.json)")
    case = parse_case_data(data, "request body")
    result = await evaluate_in_turn(request, case, day)
    if format == "markdown":
        from reirrad.explain.report import render_markdown

        return PlainTextResponse(render_markdown(result), media_type="text/markdown; charset=utf-8")
    if format == "text":
        from reirrad.explain.report import render_text

        return PlainTextResponse(render_text(result))
    if format == "fhir":
        from reirrad.service.fhir import result_to_fhir

        return FastJSONResponse(
            result_to_fhir(result, case_to_data(case)), media_type="application/fhir+json"
        )
    return FastJSONResponse(result)


@router.post(
    "/api/v1/limits",
    tags=["evaluation"],
    openapi_extra=CASE_BODY,
    responses={200: {"description": "The limits, as `reirrad limits --format json`"}, **PROBLEM_RESPONSES},
)
async def limits(
    request: Request,
    as_of: AsOf = None,
    fractions: Annotated[
        list[Annotated[int, Field(ge=1, le=50)]] | None,
        Query(description="derive for these numbers of fractions (default: 1-5 and the table's)"),
    ] = None,
) -> JSONResponse:
    """The largest planned cord / thecal sac dose each policy allows, before planning."""
    day = as_of_date(as_of)
    data = await read_json(request, "a case as JSON (schemas/case.schema.json)")
    case = parse_case_data(data, "request body")
    engine = _engine(request)

    def derive() -> dict[str, Any]:
        from reirrad.dose.limits import derive_limits

        return derive_limits(
            case, engine.rules_in_force(day), table=engine.table(), fractions=fractions
        ).as_dict()

    return FastJSONResponse(await run_bounded(request, derive))


_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


def _safe_name(name: str | None, fallback: str) -> str:
    base = Path(name or "").name
    return (_SAFE.sub("_", base).strip("._") or fallback)[:100]


async def uploaded_save(folder: Path, upload: StarletteUpload, fallback: str, names: dict[str, str]) -> str:
    target = folder / _safe_name(upload.filename, fallback)
    n = 1
    while target.exists():
        target = folder / f"{n}-{target.name}"
        n += 1
    target.write_bytes(await upload.read())
    names[str(target)] = Path(upload.filename or fallback).name or fallback
    return str(target)


def uploaded_renamed(exc: InputError, names: dict[str, str]) -> InputError:
    """Problems name the uploaded file as the user named it, not the temporary copy."""
    out = []
    for p in exc.problems:
        file = p.file
        for temp, original in names.items():
            file = file.replace(temp, original)
        out.append(Problem(file, p.path, p.message, p.accepted, p.line, p.code))
    return InputError.of(out)


def _import_body(result: ImportResult, names: dict[str, str], engine: ServiceEngine) -> dict[str, Any]:
    warnings = list(result.warnings)
    for temp, original in names.items():
        warnings = [w.replace(temp, original) for w in warnings]
    info = engine.info
    return {
        "course": result.course,
        "notes": result.notes,
        "warnings": warnings,
        "yaml": render(result),
        "rule_pack": {"name": info.name, "version": info.version, "content_sha256": info.content_sha256},
    }


class CourseFields(BaseModel):
    technique: Literal["2D", "3DCRT", "IMRT", "VMAT", "SBRT", "SRS", "other"] | None = None
    start: Annotated[str, Field(pattern=r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")] | None = None
    end: Annotated[str, Field(pattern=r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")] | None = None
    planned: bool = False
    prescription: Annotated[float, Field(gt=0, le=200)] | None = None
    fractions: Annotated[int, Field(ge=1, le=100)] | None = None

    def options(self) -> CourseOptions:
        return CourseOptions(
            technique=self.technique,
            start=self.start,
            end=self.end,
            planned=self.planned,
            prescription=self.prescription,
            fractions=self.fractions,
        )


def import_upload_kind(
    kind: str, paths: dict[str, Any], course: CourseFields, extra: dict[str, Any]
) -> ImportResult:
    """Run one importer on saved uploads (the same functions as ``reirrad import``)."""
    from reirrad.importers.structure_map import load_structure_map

    options = course.options()
    if kind == "dvh":
        from reirrad.importers.eclipse import import_eclipse_dvh

        return import_eclipse_dvh(
            paths["file"], options, load_structure_map(None), {}, plan=extra.get("plan")
        )
    if kind == "fhir":
        from reirrad.importers.fhir import import_fhir

        return import_fhir(
            paths["file"], options, course_id=extra.get("course_id"), volume=extra.get("volume")
        )
    from reirrad.importers.dicom import import_dicom

    return import_dicom(
        paths["rtdose"],
        paths["rtstruct"],
        paths.get("rtplan"),
        paths.get("record") or (),
        options,
        load_structure_map(None),
        {},
        extra.get("resolution") or 0.5,
    )


async def run_import(
    request: Request,
    kind: str,
    uploads: dict[str, UploadFile | list[UploadFile] | None],
    course: CourseFields,
    extra: dict[str, Any],
) -> dict[str, Any]:
    names: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="reirrad-upload-") as folder:
        paths: dict[str, Any] = {}
        for key, value in uploads.items():
            if value is None:
                continue
            if isinstance(value, list):
                paths[key] = [await uploaded_save(Path(folder), v, key, names) for v in value]
            else:
                paths[key] = await uploaded_save(Path(folder), value, key, names)
        try:
            result = await run_bounded(request, import_upload_kind, kind, paths, course, extra)
        except InputError as exc:
            raise uploaded_renamed(exc, names) from None
        return _import_body(result, names, _engine(request))


_IMPORT_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "one course of the case format (`course`), as YAML too (`yaml`), notes and warnings"
    },
    **PROBLEM_RESPONSES,
}
Technique = Literal["2D", "3DCRT", "IMRT", "VMAT", "SBRT", "SRS", "other"]
DateText = Annotated[str | None, Form(pattern=r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")]


def _course(
    technique: Technique | None,
    start: str | None,
    end: str | None,
    planned: bool,
    prescription: float | None,
    fractions: int | None,
) -> CourseFields:
    return CourseFields(
        technique=technique,
        start=start,
        end=end,
        planned=planned,
        prescription=prescription,
        fractions=fractions,
    )


@router.post("/api/v1/import/dvh", tags=["import"], responses=_IMPORT_RESPONSES)
async def import_dvh(
    request: Request,
    file: Annotated[UploadFile, File(description="an Eclipse DVH text export")],
    plan: Annotated[str | None, Form(max_length=200)] = None,
    technique: Annotated[Technique | None, Form()] = None,
    start: DateText = None,
    end: DateText = None,
    planned: Annotated[bool, Form()] = False,
    prescription: Annotated[float | None, Form(gt=0, le=200)] = None,
    fractions: Annotated[int | None, Form(ge=1, le=100)] = None,
) -> dict[str, Any]:
    """An Eclipse DVH export → one course (as ``reirrad import dvh``)."""
    course = _course(technique, start, end, planned, prescription, fractions)
    return await run_import(request, "dvh", {"file": file}, course, {"plan": plan})


@router.post("/api/v1/import/fhir", tags=["import"], responses=_IMPORT_RESPONSES)
async def import_fhir_upload(
    request: Request,
    file: Annotated[UploadFile, File(description="a FHIR R4 Bundle (JSON) with an mCODE/CodeX course")],
    course_id: Annotated[str | None, Form(max_length=200)] = None,
    volume: Annotated[str | None, Form(max_length=200)] = None,
    technique: Annotated[Technique | None, Form()] = None,
    start: DateText = None,
    end: DateText = None,
    planned: Annotated[bool, Form()] = False,
) -> dict[str, Any]:
    """A FHIR bundle → one course, without organ doses (as ``reirrad import fhir``)."""
    course = _course(technique, start, end, planned, None, None)
    return await run_import(
        request, "fhir", {"file": file}, course, {"course_id": course_id, "volume": volume}
    )


@router.post("/api/v1/import/dicom", tags=["import"], responses=_IMPORT_RESPONSES)
async def import_dicom_upload(
    request: Request,
    rtdose: Annotated[UploadFile, File(description="RT Dose")],
    rtstruct: Annotated[UploadFile, File(description="RT Structure Set")],
    rtplan: Annotated[UploadFile | None, File(description="RT Plan")] = None,
    record: Annotated[list[UploadFile] | None, File(description="treatment records")] = None,
    resolution: Annotated[float, Form(gt=0.05, le=5)] = 0.5,
    technique: Annotated[Technique | None, Form()] = None,
    start: DateText = None,
    end: DateText = None,
    planned: Annotated[bool, Form()] = False,
    prescription: Annotated[float | None, Form(gt=0, le=200)] = None,
    fractions: Annotated[int | None, Form(ge=1, le=100)] = None,
) -> dict[str, Any]:
    """DICOM RT files → one course with near-max doses (as ``reirrad import dicom``)."""
    course = _course(technique, start, end, planned, prescription, fractions)
    uploads: dict[str, UploadFile | list[UploadFile] | None] = {
        "rtdose": rtdose,
        "rtstruct": rtstruct,
        "rtplan": rtplan,
        "record": record,
    }
    return await run_import(request, "dicom", uploads, course, {"resolution": resolution})


def rule_summary(rule: Any) -> dict[str, Any]:
    return {
        "id": rule.id,
        "version": rule.version,
        "kind": rule.kind,
        "status": rule.status,
        "title": rule.title,
        "policy": rule.policy,
        "criterion": rule.criterion,
        "valid_from": rule.valid_from.isoformat(),
        "valid_until": rule.valid_until.isoformat() if rule.valid_until else None,
        "evidence": rule.evidence.label(),
        "citations": [c.ref for c in rule.citations],
    }


@router.get("/api/v1/pack", tags=["rule pack"], responses=PROBLEM_RESPONSES)
async def pack(request: Request) -> dict[str, Any]:
    """The rule pack: name, version, hash and every version of every rule."""
    engine = _engine(request)
    p = engine.pack
    return {
        "name": p.name,
        "version": p.version,
        "title": p.title,
        "released": p.released.isoformat(),
        "content_sha256": p.content_sha256,
        "rules": [rule_summary(r) for r in sorted(p.rules, key=lambda r: (r.id, r.version))],
    }


@router.get(
    "/api/v1/pack/rules/{rule_id}",
    tags=["rule pack"],
    responses={**PROBLEM_RESPONSES, 404: PROBLEM_RESPONSES[422] | {"description": "no such rule"}},
)
async def pack_rule(
    request: Request, rule_id: Annotated[str, PathParam(max_length=200, pattern=r"^[A-Za-z0-9._-]+$")]
) -> JSONResponse:
    """Every version of one rule, with its statement, evidence and citations."""
    engine = _engine(request)
    versions = [r for r in engine.pack.rules if r.id == rule_id]
    if not versions:
        return problem_response(
            404,
            f"no rule {rule_id!r} in the rule pack",
            [Problem("path", ("rule_id",), f"no rule {rule_id!r}", "a rule id listed by /api/v1/pack")],
        )
    return JSONResponse(
        {
            "id": rule_id,
            "versions": [
                {
                    **rule_summary(r),
                    "statement": r.statement,
                    "rationale": r.rationale,
                    "citations": [
                        {"ref": c.ref, "locator": c.locator, **_reference(engine, c.ref)} for c in r.citations
                    ],
                    "source": r.source,
                }
                for r in sorted(versions, key=lambda r: r.version)
            ],
        }
    )


def _reference(engine: ServiceEngine, ref: str) -> dict[str, Any]:
    found = engine.pack.references.get(ref)
    if found is None:
        return {}
    return {"citation": found.short(), "title": found.title, "doi": found.doi}


@router.get("/api/v1/pack/evidence", tags=["rule pack"], responses=PROBLEM_RESPONSES)
async def pack_evidence(request: Request) -> dict[str, Any]:
    """The references the rules cite (the evidence registry of the pack)."""
    engine = _engine(request)
    return {
        "references": [
            r.model_dump(mode="json", exclude_none=True)
            for r in sorted(engine.pack.references.values(), key=lambda r: r.id)
        ]
    }


class Disagreement(BaseModel):
    """A clinician's 'I disagree, because …' on one rule's verdict for one case (by its hash only)."""

    case_hash: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
    rule_id: Annotated[str, Field(min_length=1, max_length=200)]
    rule_version: Annotated[str, Field(pattern=r"^[0-9]+\.[0-9]+\.[0-9]+$")]
    reason: Annotated[str, Field(min_length=3, max_length=1000)]


def disagreement_problems(engine: ServiceEngine, rule_id: str, version: str, file: str) -> list[Problem]:
    if not any(r.id == rule_id and r.version == version for r in engine.pack.rules):
        return [
            Problem(
                file,
                ("rule_id",),
                f"no rule {rule_id!r} version {version!r} in the rule pack",
                "a rule id and version listed by /api/v1/pack",
                code="feedback.rule",
            )
        ]
    return []


@router.post("/api/v1/disagreements", tags=["feedback"], responses=PROBLEM_RESPONSES, status_code=201)
async def disagree(request: Request, body: Disagreement) -> dict[str, Any]:
    """Record that a clinician disagrees with a rule's verdict, and why."""
    problems = disagreement_problems(_engine(request), body.rule_id, body.rule_version, "request body")
    if problems:
        raise InputError.of(problems)
    store = _store(request)
    if store is not None:
        store.record_outcome(
            "api", "disagreed", body.case_hash, body.rule_id, body.rule_version, reason=body.reason
        )
    return {"recorded": store is not None, "rule_id": body.rule_id, "rule_version": body.rule_version}


@router.get("/api/v1/feedback", tags=["feedback"], responses=PROBLEM_RESPONSES)
async def feedback_report(request: Request) -> dict[str, Any]:
    """Per rule and version: how often it fired, was accepted, overridden or disagreed with, and why."""
    store = _store(request)
    return {"rules": [t.as_dict() for t in store.report()] if store else []}


@router.get("/cds-services", tags=["CDS Hooks"], responses=PROBLEM_RESPONSES)
async def cds_discovery() -> dict[str, Any]:
    """CDS Hooks discovery."""
    return cds.discovery()


def _unknown_service(service_id: str) -> JSONResponse:
    return problem_response(
        404,
        f"no CDS service {service_id!r}",
        [Problem("path", ("id",), f"no CDS service {service_id!r}", cds.SERVICE_ID)],
    )


@router.post(
    "/cds-services/{service_id}",
    tags=["CDS Hooks"],
    responses={**PROBLEM_RESPONSES, 404: PROBLEM_RESPONSES[422] | {"description": "no such service"}},
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/CdsRequest"}}},
        }
    },
)
async def cds_call(request: Request, service_id: Annotated[str, PathParam(max_length=200)]) -> JSONResponse:
    """A CDS Hooks call on order-select or order-sign: cards for a planned radiotherapy course."""
    if service_id != cds.SERVICE_ID:
        return _unknown_service(service_id)
    data = await read_json(request, "a CDS Hooks request (JSON)")
    try:
        body = cds.CdsRequest.model_validate(data)
    except ValidationError as exc:
        raise InputError.of(cds.request_problems(exc, "a CDS Hooks 2.0 request")) from None
    if body.hook not in cds.HOOKS:
        raise InputError.of(
            [
                Problem(
                    "request body",
                    ("hook",),
                    f"this service is not registered on {body.hook!r}",
                    ", ".join(cds.HOOKS),
                )
            ]
        )
    config = _config(request)
    store = _store(request) if config.record_feedback else None
    answer = await run_bounded(request, cds.run_service, body, _engine(request), store, config.base_url)
    return FastJSONResponse(answer)


@router.post(
    "/cds-services/{service_id}/feedback",
    tags=["CDS Hooks"],
    responses={**PROBLEM_RESPONSES, 404: PROBLEM_RESPONSES[422] | {"description": "no such service"}},
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/CdsFeedback"}}},
        }
    },
)
async def cds_feedback(
    request: Request, service_id: Annotated[str, PathParam(max_length=200)]
) -> JSONResponse:
    """CDS Hooks feedback: a card accepted or overridden, with the reason and time."""
    if service_id != cds.SERVICE_ID:
        return _unknown_service(service_id)
    data = await read_json(request, "a CDS Hooks feedback request (JSON)")
    try:
        body = cds.FeedbackRequest.model_validate(data)
    except ValidationError as exc:
        raise InputError.of(cds.request_problems(exc, "a CDS Hooks 2.0 feedback request")) from None
    store = _store(request)
    if store is None:
        return JSONResponse({"recorded": 0})
    problems = cds.record_feedback(body, store)
    if problems:
        raise InputError.of(problems)
    return JSONResponse({"recorded": len(body.feedback)})
