"""The CDS Hooks 2.0 JSON shapes (discovery, service response, feedback), written as JSON Schemas from the
specification's tables (cds-hooks.org/specification/current: Discovery, CDS Service Response, Card Attributes,
Source, Link, Coding, Feedback). Required fields, enumerations and the 140-character summary are checked."""

from __future__ import annotations

from typing import Any

CODING = {
    "type": "object",
    "required": ["code", "system", "display"],
    "properties": {
        "code": {"type": "string"},
        "system": {"type": "string"},
        "display": {"type": "string", "minLength": 1},
    },
}
SOURCE = {
    "type": "object",
    "required": ["label"],
    "properties": {
        "label": {"type": "string", "minLength": 1},
        "url": {"type": "string", "pattern": "^https?://"},
        "icon": {"type": "string"},
        "topic": {"type": "object", "required": ["code", "system"]},
    },
}
LINK = {
    "type": "object",
    "required": ["label", "url", "type"],
    "properties": {
        "label": {"type": "string"},
        "url": {"type": "string", "pattern": "^https?://"},
        "type": {"enum": ["absolute", "smart"]},
        "appContext": {"type": "string"},
        "autolaunchable": {"type": "boolean"},
    },
}
CARD = {
    "type": "object",
    "required": ["summary", "indicator", "source"],
    "properties": {
        "uuid": {
            "type": "string",
            "pattern": "^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$",
        },
        "summary": {"type": "string", "minLength": 1, "maxLength": 139},
        "detail": {"type": "string"},
        "indicator": {"enum": ["info", "warning", "critical"]},
        "source": SOURCE,
        "suggestions": {"type": "array"},
        "selectionBehavior": {"enum": ["at-most-one", "any"]},
        "overrideReasons": {"type": "array", "items": CODING},
        "links": {"type": "array", "items": LINK},
    },
    "additionalProperties": False,
}
RESPONSE: dict[str, Any] = {
    "type": "object",
    "required": ["cards"],
    "properties": {"cards": {"type": "array", "items": CARD}, "systemActions": {"type": "array"}},
    "additionalProperties": False,
}
DISCOVERY: dict[str, Any] = {
    "type": "object",
    "required": ["services"],
    "properties": {
        "services": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["hook", "description", "id"],
                "properties": {
                    "hook": {"type": "string"},
                    "title": {"type": "string"},
                    "description": {"type": "string"},
                    "id": {"type": "string"},
                    "prefetch": {"type": "object", "additionalProperties": {"type": "string"}},
                    "usageRequirements": {"type": "string"},
                },
                "additionalProperties": False,
            },
        }
    },
}
