"""The FastAPI application: routes, refusals as problem details, the OpenAPI description with the case and result
schemas, all behind the guard (credentials, size limits, headers)."""

from __future__ import annotations

import copy
import logging
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import Response

from reirrad.errors import EngineError, InputError, Problem
from reirrad.load.paths import tool_version
from reirrad.load.validation import load_schema
from reirrad.service import api, cds, pages
from reirrad.service.engine import ServiceEngine
from reirrad.service.feedback import FeedbackStore
from reirrad.service.problems import problem_response, summary, validation_problems
from reirrad.service.security import Guard, ServiceConfig

__all__ = ["create_app"]

log = logging.getLogger("reirrad.service")
STATIC = Path(__file__).parent / "static"


def _components(prefix: str, schema_file: str) -> dict[str, Any]:
    """A JSON Schema file as OpenAPI components: its $defs become ``{prefix}_{name}``, local refs rewritten."""
    raw = copy.deepcopy(load_schema(schema_file))
    defs = raw.pop("$defs", {})
    for key in ("$schema", "$id"):
        raw.pop(key, None)

    def rewrite(node: Any) -> Any:
        if isinstance(node, dict):
            out = {}
            for k, v in node.items():
                if k == "$ref" and isinstance(v, str) and v.startswith("#/$defs/"):
                    out[k] = f"#/components/schemas/{prefix}_{v.removeprefix('#/$defs/')}"
                else:
                    out[k] = rewrite(v)
            return out
        if isinstance(node, list):
            return [rewrite(x) for x in node]
        return node

    found = {f"{prefix}_{name}": rewrite(d) for name, d in defs.items()}
    found[prefix] = rewrite(raw)
    return found


PROBLEM_SCHEMA = {
    "type": "object",
    "description": "RFC 9457 problem details; `problems` lists every problem with its field and what is accepted",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
        "problems": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["file", "path", "message", "accepted"],
                "properties": {
                    "file": {"type": "string"},
                    "line": {"type": ["integer", "null"]},
                    "path": {"type": "string"},
                    "code": {"type": "string"},
                    "message": {"type": "string"},
                    "accepted": {"type": "string"},
                },
            },
        },
    },
}


def _openapi(app: FastAPI) -> dict[str, Any]:
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components.update(_components("Case", "case.schema.json"))
    components.update(_components("Result", "result.schema.json"))
    components["ProblemDetails"] = PROBLEM_SCHEMA
    components["CdsRequest"] = _local(
        cds.CdsRequest.model_json_schema(ref_template="#/components/schemas/{model}")
    )
    components.update(_defs_of(cds.CdsRequest))
    components["CdsFeedback"] = _local(
        cds.FeedbackRequest.model_json_schema(ref_template="#/components/schemas/{model}")
    )
    components.update(_defs_of(cds.FeedbackRequest))
    app.openapi_schema = schema
    return schema


def _local(schema: dict[str, Any]) -> dict[str, Any]:
    schema = dict(schema)
    schema.pop("$defs", None)
    return schema


def _defs_of(model: Any) -> dict[str, Any]:
    defs: dict[str, Any] = model.model_json_schema(ref_template="#/components/schemas/{model}").get(
        "$defs", {}
    )
    return defs


def create_app(config: ServiceConfig | None = None, engine: ServiceEngine | None = None) -> Guard:
    """The service as an ASGI application (give it to uvicorn, or to a test client)."""
    config = config or ServiceConfig()
    engine = engine or ServiceEngine(config.rules)
    store = FeedbackStore(config.data_dir) if config.data_dir else None
    app = FastAPI(
        title="reirrad",
        version=tool_version(),
        description="Explainable guideline engine for re-irradiating spinal metastases: the JSON API, CDS Hooks "
        f"and FHIR out. Rule pack {engine.info.header}. Decision support for qualified clinicians and "
        "physicists; it does not replace clinical judgement or a check of the source.",
        docs_url=None,
        redoc_url=None,
        openapi_url="/openapi.json",
    )
    app.state.engine = engine
    app.state.config = config
    app.state.store = store
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.include_router(api.router)
    app.include_router(pages.router)
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]

    @app.exception_handler(InputError)
    async def input_refused(request: Request, exc: InputError) -> Response:
        return problem_response(422, summary(exc.problems), exc.problems, instance=request.url.path)

    @app.exception_handler(RequestValidationError)
    async def request_invalid(request: Request, exc: RequestValidationError) -> Response:
        problems = validation_problems(exc.errors())
        return problem_response(422, summary(problems), problems, instance=request.url.path)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        problems = []
        if exc.status_code == 404:
            problems = [
                Problem(
                    "path",
                    (),
                    f"nothing at {request.url.path}",
                    "/, /api/v1/…, /cds-services (see /openapi.json)",
                )
            ]
        elif exc.status_code == 405:
            problems = [
                Problem(
                    "method",
                    (),
                    f"{request.method} is not taken here",
                    exc.headers.get("allow", "") if exc.headers else "",
                )
            ]
        return problem_response(
            exc.status_code, detail, problems, instance=request.url.path, headers=dict(exc.headers or {})
        )

    @app.exception_handler(TimeoutError)
    async def timed_out(request: Request, exc: TimeoutError) -> Response:
        return problem_response(
            504, f"the request took longer than {config.timeout_s:g} s; nothing was produced"
        )

    @app.exception_handler(EngineError)
    async def engine_fault(request: Request, exc: EngineError) -> Response:
        log.error("engine error on %s %s", request.method, request.url.path)
        return problem_response(500, "internal error: no verdict was produced; please report it")

    @app.exception_handler(Exception)
    async def any_fault(request: Request, exc: Exception) -> Response:
        log.error("internal error %s on %s %s", type(exc).__name__, request.method, request.url.path)
        return problem_response(500, "internal error: no verdict was produced; please report it")

    asgi: Any = app
    if config.cors_origins:
        asgi = CORSMiddleware(
            app,
            allow_origins=list(config.cors_origins),
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type"],
        )
    guard = Guard(asgi, config, engine.info.header, _claimer(store))
    guard.fastapi = app
    return guard


def _claimer(store: FeedbackStore | None) -> Any:
    import time

    seen: dict[str, float] = {}

    def claim(jti: str, expires: float) -> bool:
        now = time.time()
        if store is not None:
            return store.claim_jti(jti, expires, now)
        for key in [k for k, v in seen.items() if v < now]:
            del seen[key]
        if jti in seen:
            return False
        seen[jti] = expires
        return True

    return claim
