"""The service's guard: who may call (bearer token, EHR-signed JWT), how much they may send, the headers every
response carries, and a log line per request with no patient data in it."""

from __future__ import annotations

import hmac
import ipaddress
import json
import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from starlette.exceptions import HTTPException

from reirrad.errors import Problem
from reirrad.service.problems import problem_body

__all__ = [
    "JWT_ALGORITHMS",
    "Guard",
    "ServiceConfig",
    "is_loopback",
    "verify_ehr_jwt",
]

log = logging.getLogger("reirrad.service")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

JWT_ALGORITHMS = ("RS256", "RS384", "RS512", "ES256", "ES384", "ES512", "PS256", "PS384", "PS512")
"""Asymmetric algorithms only: CDS Hooks forbids 'none' and the shared-secret (HMAC) algorithms."""
TOKEN_COOKIE = "reirrad_token"
CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
)
UPLOAD_PATHS = ("/import", "/api/v1/import")
OPEN_PATHS = ("/api/v1/health", "/static/", "/login", "/favicon.ico")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class ServiceConfig:
    """How ``reirrad serve`` runs: address, data folder, credentials, limits."""

    host: str = "127.0.0.1"
    port: int = 8000
    data_dir: Path = Path("reirrad-data")
    rules: Path | None = None
    token: str | None = None
    jwks: dict[str, Any] | None = None
    cds_issuers: tuple[str, ...] = ()
    public_url: str | None = None
    cors_origins: tuple[str, ...] = ()
    max_json_bytes: int = 2 * 1024 * 1024
    max_upload_bytes: int = 64 * 1024 * 1024
    timeout_s: float = 30.0
    record_feedback: bool = True
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def base_url(self) -> str:
        """The address the EHR and browsers use (the JWT audience and card links start with it)."""
        if self.public_url:
            return self.public_url.rstrip("/")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def startup_problems(self) -> list[Problem]:
        """Refusals before binding: a non-loopback address without credentials, a JWKS without issuers."""
        problems = []
        if not is_loopback(self.host) and self.token is None and self.jwks is None:
            problems.append(
                Problem(
                    "reirrad serve",
                    ("--host",),
                    f"{self.host} is not a loopback address, and no credentials were given",
                    "--token-file FILE (page, API and CDS Hooks), or --cds-jwks FILE with --cds-issuer "
                    "(CDS Hooks only), or --host 127.0.0.1",
                    code="serve.credentials",
                )
            )
        if self.jwks is not None and not self.cds_issuers:
            problems.append(
                Problem(
                    "reirrad serve",
                    ("--cds-issuer",),
                    "a JWKS was given without the issuers it may verify",
                    "--cds-issuer URL (repeatable): the EHR's iss",
                    code="serve.issuer",
                )
            )
        return problems


class JwtRefused(Exception):
    pass


def verify_ehr_jwt(
    token: str,
    jwks: dict[str, Any],
    issuers: tuple[str, ...],
    audience: str,
    claim_jti: Callable[[str, float], bool],
) -> dict[str, Any]:
    """Verify a CDS Client's JWT: signature by a key of the JWKS (by kid), iss, aud, exp, iat and a fresh jti."""
    import jwt

    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError as exc:
        raise JwtRefused(f"not a JWT ({exc})") from None
    alg, kid = header.get("alg"), header.get("kid")
    if alg not in JWT_ALGORITHMS:
        raise JwtRefused(f"algorithm {alg!r} is not accepted (accepted: {', '.join(JWT_ALGORITHMS)})")
    try:
        keys = jwt.PyJWKSet.from_dict(jwks).keys
    except jwt.PyJWTError as exc:
        raise JwtRefused(f"the configured JWKS cannot be used ({exc})") from None
    key = next((k for k in keys if k.key_id == kid), None)
    if key is None:
        raise JwtRefused(f"no key with kid {kid!r} in the configured JWKS")
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            key.key,
            algorithms=[alg],
            audience=audience,
            issuer=list(issuers),
            options={"require": ["iss", "aud", "exp", "iat", "jti"]},
            leeway=30,
        )
    except jwt.PyJWTError as exc:
        raise JwtRefused(str(exc)) from None
    if not claim_jti(str(claims["jti"]), float(claims["exp"]) + 30):
        raise JwtRefused("this jti was already used (a replayed token)")
    return claims


class _TooLarge(HTTPException):
    """Raised while the body streams in; an HTTPException so that the app answers it as a 413 problem."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body is larger than this address accepts ({limit} bytes)")


class Guard:
    """Pure ASGI middleware: credentials, request size limits, security headers, the rule pack header, a log line."""

    def __init__(
        self,
        app: ASGIApp,
        config: ServiceConfig,
        pack_header: str,
        claim_jti: Callable[[str, float], bool],
    ) -> None:
        self.app = app
        self.config = config
        self.pack_header = pack_header.encode()
        self.claim_jti = claim_jti
        self.fastapi: Any = None
        """The FastAPI application inside (for its OpenAPI description and state)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        path: str = scope.get("path", "")
        status_seen = [0]

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_seen[0] = message["status"]
                headers = list(message.get("headers", []))
                names = {h[0].lower() for h in headers}
                extra = [
                    (b"x-reirrad-rule-pack", self.pack_header),
                    (b"x-content-type-options", b"nosniff"),
                    (b"x-frame-options", b"DENY"),
                    (b"referrer-policy", b"no-referrer"),
                    (b"cross-origin-opener-policy", b"same-origin"),
                    (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
                    (b"content-security-policy", CSP.encode()),
                ]
                if not path.startswith("/static/") and b"cache-control" not in names:
                    extra.append((b"cache-control", b"no-store"))
                message["headers"] = headers + [(k, v) for k, v in extra if k not in names]
            await send(message)

        try:
            refusal = self._refuse(scope)
            if refusal is not None:
                await self._problem(send_with_headers, *refusal)
                return
            limit = (
                self.config.max_upload_bytes if path.startswith(UPLOAD_PATHS) else self.config.max_json_bytes
            )
            length = _header(scope, b"content-length")
            if length is not None and (not length.isdigit() or int(length) > limit):
                await self._problem(
                    send_with_headers,
                    413,
                    f"the request body is larger than this address accepts ({limit} bytes)",
                    {"limit_bytes": limit},
                )
                return
            received = [0]

            async def counted_receive() -> Message:
                message = await receive()
                if message["type"] == "http.request":
                    received[0] += len(message.get("body", b""))
                    if received[0] > limit:
                        raise _TooLarge(limit)
                return message

            try:
                await self.app(scope, counted_receive, send_with_headers)
            except _TooLarge:
                if not status_seen[0]:
                    await self._problem(
                        send_with_headers,
                        413,
                        f"the request body is larger than this address accepts ({limit} bytes)",
                        {"limit_bytes": limit},
                    )
            except Exception as exc:  # the last line of defence: a problem, never a traceback (nor data) out
                log.error("internal error %s on %s %s", type(exc).__name__, scope.get("method", ""), path)
                if not status_seen[0]:
                    await self._problem(
                        send_with_headers,
                        500,
                        "internal error: no verdict was produced; please report it",
                        {},
                    )
        finally:
            log.info(
                "%s %s %s %.1f ms",
                scope.get("method", ""),
                path,
                status_seen[0] or "-",
                (time.perf_counter() - started) * 1000,
            )

    def _refuse(self, scope: Scope) -> tuple[int, str, dict[str, Any]] | None:
        """(status, detail, extra) when the caller may not call this path; None when it may."""
        path: str = scope.get("path", "")
        if path.startswith(OPEN_PATHS):
            return None
        config = self.config
        auth = _header(scope, b"authorization") or ""
        bearer = auth[7:].strip() if auth[:7].lower() == "bearer " else None
        if path.startswith("/cds-services") and config.jwks is not None:
            if bearer is None:
                return 401, "CDS Hooks calls need the EHR's signed JWT in Authorization: Bearer", {}
            if config.token is not None and hmac.compare_digest(bearer.encode(), config.token.encode()):
                return None
            try:
                verify_ehr_jwt(
                    bearer, config.jwks, config.cds_issuers, config.base_url + path, self.claim_jti
                )
            except JwtRefused as exc:
                return 401, f"the JWT was refused: {exc}", {}
            return None
        if config.token is not None:
            given = bearer or _cookie(scope, TOKEN_COOKIE)
            if given is None:
                return (
                    401,
                    "this service needs its access token (Authorization: Bearer, or sign in at /login)",
                    {},
                )
            if not hmac.compare_digest(given.encode(), config.token.encode()):
                return 403, "the access token is not this service's", {}
            return None
        if not is_loopback(config.host) and not path.startswith("/cds-services"):
            return (
                401,
                "on this address only CDS Hooks is served (start with --token-file for the page and API)",
                {},
            )
        return None

    async def _problem(self, send: Send, status: int, detail: str, extra: dict[str, Any]) -> None:
        body = json.dumps(problem_body(status, detail, **extra)).encode()
        headers = [
            (b"content-type", b"application/problem+json"),
            (b"content-length", str(len(body)).encode()),
        ]
        if status == 401:
            headers.append((b"www-authenticate", b'Bearer realm="reirrad"'))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return bytes(value).decode("latin-1")
    return None


def _cookie(scope: Scope, name: str) -> str | None:
    raw = _header(scope, b"cookie")
    if not raw:
        return None
    for part in raw.split(";"):
        key, _, value = part.strip().partition("=")
        if key == name:
            return value
    return None
