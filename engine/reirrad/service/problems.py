"""Refusals as RFC 9457 problem details: each names the field, what was wrong and what is accepted; never a traceback."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from starlette.responses import JSONResponse

try:
    import orjson as _orjson
except ImportError:  # pragma: no cover - the serve extra installs it
    _orjson = None  # type: ignore[assignment]

from reirrad.errors import Problem, format_path

__all__ = [
    "PROBLEM_TYPES",
    "FastJSONResponse",
    "ProblemResponse",
    "problem_body",
    "problem_response",
    "validation_problems",
]

PROBLEM_MEDIA_TYPE = "application/problem+json"
_BASE = "https://reirrad.example/problems/"
PROBLEM_TYPES = {
    400: ("bad-request", "The request could not be read"),
    401: ("unauthorized", "Credentials are needed"),
    403: ("forbidden", "The credentials were refused"),
    404: ("not-found", "Nothing is here"),
    405: ("method-not-allowed", "This address does not take that method"),
    406: ("not-acceptable", "That response format is not offered"),
    413: ("too-large", "The request is too large"),
    415: ("unsupported-media-type", "The request's content type is not accepted"),
    422: ("input-refused", "The input was refused"),
    500: ("internal-error", "Internal error: no verdict was produced"),
    503: ("unavailable", "The service cannot answer now"),
    504: ("timeout", "The request took too long"),
}


class FastJSONResponse(JSONResponse):
    """JSON written by orjson when it is installed (5× faster on a 60 kB result than the standard library)."""

    def render(self, content: Any) -> bytes:
        if _orjson is not None:
            body: bytes = _orjson.dumps(content)
            return body
        return super().render(content)


class ProblemResponse(JSONResponse):
    media_type = PROBLEM_MEDIA_TYPE


def problem_body(
    status: int,
    detail: str,
    problems: Sequence[Problem] = (),
    instance: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    slug, title = PROBLEM_TYPES.get(status, ("error", "Error"))
    body: dict[str, Any] = {"type": _BASE + slug, "title": title, "status": status, "detail": detail}
    if instance:
        body["instance"] = instance
    if problems:
        body["problems"] = [p.as_dict() for p in problems]
    body.update(extra)
    return body


def problem_response(
    status: int,
    detail: str,
    problems: Sequence[Problem] = (),
    instance: str | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> ProblemResponse:
    return ProblemResponse(
        problem_body(status, detail, problems, instance, **extra), status_code=status, headers=headers
    )


def summary(problems: Sequence[Problem]) -> str:
    """One line for ``detail``: how many problems and the first of them, as the CLI prints it."""
    if not problems:
        return "the input was refused"
    first = problems[0].render()
    more = len(problems) - 1
    return first if not more else f"{first} (and {more} more problem{'s' if more > 1 else ''})"


_WHERE = {"body": "request body", "query": "query", "path": "path", "header": "header", "cookie": "cookie"}


def validation_problems(errors: Iterable[dict[str, Any]]) -> list[Problem]:
    """FastAPI's request validation errors (query, path, form fields) as Problems naming the parameter."""
    out = []
    for err in errors:
        loc = tuple(err.get("loc", ()))
        where = _WHERE.get(str(loc[0]), str(loc[0])) if loc else "request"
        path = tuple(p for p in loc[1:] if isinstance(p, str | int))
        accepted = ""
        ctx = err.get("ctx") or {}
        if "expected" in ctx:
            accepted = str(ctx["expected"])
        elif err.get("type") == "date_from_datetime_parsing" or "date" in str(err.get("type", "")):
            accepted = "a date YYYY-MM-DD"
        elif err.get("type") == "missing":
            accepted = "a value"
        elif "pattern" in ctx:
            accepted = f"text matching {ctx['pattern']}"
        out.append(
            Problem(
                where, path, str(err.get("msg", "invalid")), accepted, code=str(err.get("type", "invalid"))
            )
        )
    return out


def field_name(problem: Problem) -> str:
    return format_path(problem.path)
