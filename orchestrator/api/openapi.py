"""What drf-spectacular adds to the OpenAPI document once every view is described
(SPECTACULAR_SETTINGS["POSTPROCESSING_HOOKS"])."""

from __future__ import annotations

from typing import Any

_ERROR = {"$ref": "#/components/schemas/Error"}


def document_refused_media_types(result: dict[str, Any], generator, request, public) -> dict[str, Any]:
    """Every operation that reads a body refuses a body of a type it does not read with 415 and
    the error body (DRF's parsers do, errors.exception_handler shapes it): said here once for all
    of them, new ones included, rather than on each view."""
    for path_item in result.get("paths", {}).values():
        for operation in path_item.values():
            if isinstance(operation, dict) and "requestBody" in operation:
                operation["responses"].setdefault("415", {
                    "description": "a body of a type the operation does not read",
                    "content": {"application/json": {"schema": _ERROR}},
                })
    return result
