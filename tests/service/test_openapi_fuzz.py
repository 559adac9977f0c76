"""The API fuzzed from its own OpenAPI description with Schemathesis (bounded examples, derandomised): no 5xx, every
answer conforms to the description (status codes, content types, headers, the result schema for evaluations), and
requests that break the description are refused.

``positive_data_acceptance`` is left out on purpose: a request can follow the description and still be refused for
what no schema can say — an uploaded file that is not an Eclipse export, a rule id that is not in the pack — and
those refusals are 422 problem details by design."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import schemathesis
from hypothesis import HealthCheck, settings
from reirrad.service.app import create_app
from reirrad.service.security import ServiceConfig
from schemathesis.specs.openapi.checks import positive_data_acceptance

_DATA = tempfile.TemporaryDirectory(
    prefix="reirrad-fuzz-"
)  # removed when the test session's interpreter exits
APP = create_app(ServiceConfig(data_dir=Path(_DATA.name)))
schema = schemathesis.openapi.from_asgi("/openapi.json", APP)


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_no_server_error_and_answers_as_described(case: Any) -> None:
    case.call_and_validate(excluded_checks=[positive_data_acceptance])
