"""One error body for the whole API: `{"message": …}`, and for refused input also `details`, a
list of `{"path", "message", "line"}` naming each problem (a property of the flow, an input).

Views raise these exceptions, or the domain's own ones (`domain_errors()` translates those);
`exception_handler` is DRF's EXCEPTION_HANDLER and shapes everything DRF and Django raise too,
so that bad input is never answered with a 500.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator

from django.core.exceptions import (
    PermissionDenied as DjangoPermissionDenied,
    RequestDataTooBig,
    SuspiciousOperation,
    TooManyFieldsSent,
    TooManyFilesSent,
)
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import set_rollback


class ApiError(exceptions.APIException):
    """An answer other than success, with its status and, optionally, details."""

    def __init__(self, message: str, status_code: int = status.HTTP_400_BAD_REQUEST,
                 details: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.message = message
        self.details = details


def bad_request(message: str, details: list[dict[str, Any]] | None = None) -> ApiError:
    return ApiError(message, status.HTTP_400_BAD_REQUEST, details)


def not_found(message: str) -> ApiError:
    return ApiError(message, status.HTTP_404_NOT_FOUND)


def conflict(message: str) -> ApiError:
    return ApiError(message, status.HTTP_409_CONFLICT)


def too_large(message: str) -> ApiError:
    return ApiError(message, status.HTTP_413_REQUEST_ENTITY_TOO_LARGE)


def flow_details(error: Any) -> list[dict[str, Any]]:
    """A FlowValidationError's problems, each with its property path and line."""
    return [{"path": e.path, "message": e.message, "line": e.line} for e in error.errors]


def input_details(error: Any) -> list[dict[str, Any]]:
    """An InvalidInputs' problems, each naming its input."""
    return [{"path": f"inputs.{e['input']}", "message": e["message"], "line": None} for e in error.errors]


@contextmanager
def domain_errors() -> Iterator[None]:
    """Translate what the repository and the executor's actions refuse into API errors. Wraps
    only calls into them, so that a LookupError of a bug elsewhere stays a bug (a 500)."""
    from executor.service import NotApplicable, NotKillable, NotPaused
    from orchestrator.flowlang import FlowValidationError
    from orchestrator.inputs import InvalidInputs
    from orchestrator.repository import ExecutionBlocked, ExecutionNotEnded, FlowDisabled, FlowNotFound

    try:
        yield
    except FlowValidationError as error:
        raise bad_request("The flow is invalid", flow_details(error)) from None
    except InvalidInputs as error:
        names = ", ".join(e["input"] for e in error.errors)
        raise bad_request(f"Invalid inputs: {names}", input_details(error)) from None
    except FlowNotFound as error:
        raise not_found(str(error)) from None
    except (FlowDisabled, ExecutionBlocked, ExecutionNotEnded, NotKillable, NotPaused, NotApplicable) as error:
        raise conflict(str(error)) from None
    except LookupError as error:  # the executor's actions: "execution … does not exist"
        raise not_found(str(error).strip("'\"")) from None


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's EXCEPTION_HANDLER: every refusal in the one shape. Returns None (a 500, logged) only
    for what is not a refusal: a bug."""
    if isinstance(exc, RequestDataTooBig):
        exc = too_large("The request body is too large")
    elif isinstance(exc, (TooManyFieldsSent, TooManyFilesSent)):
        exc = too_large(str(exc) or "Too many fields or files")
    elif isinstance(exc, SuspiciousOperation):
        exc = bad_request("The request could not be read")
    elif isinstance(exc, Http404):
        exc = not_found(str(exc) or "Not found")
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    if not isinstance(exc, exceptions.APIException):
        return None

    headers = {}
    if getattr(exc, "auth_header", None):
        headers["WWW-Authenticate"] = exc.auth_header
    if getattr(exc, "wait", None):
        headers["Retry-After"] = str(int(exc.wait))
    body: dict[str, Any]
    if isinstance(exc, ApiError):
        body = {"message": exc.message}
        if exc.details is not None:
            body["details"] = exc.details
    elif isinstance(exc, exceptions.ValidationError):
        body = {"message": "Invalid request", "details": list(_validation_details(exc.detail))}
    else:
        body = {"message": str(exc.detail)}
    set_rollback()
    return Response(body, status=exc.status_code, headers=headers)


def _validation_details(detail: Any, path: str = "") -> Iterator[dict[str, Any]]:
    """A serializer's nested errors flattened to one entry per property path."""
    if isinstance(detail, dict):
        for key, value in detail.items():
            name = "" if key == "non_field_errors" else str(key)
            yield from _validation_details(value, f"{path}.{name}" if path and name else path or name)
    elif isinstance(detail, list) and detail and all(isinstance(item, str) for item in detail):
        for item in detail:
            yield {"path": path, "message": str(item), "line": None}
    elif isinstance(detail, list):
        for index, item in enumerate(detail):
            yield from _validation_details(item, f"{path}[{index}]")
    else:
        yield {"path": path, "message": str(detail), "line": None}
