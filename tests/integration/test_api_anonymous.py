"""Every endpoint under /api/v1 refuses an anonymous client with 401 and the API's error body,
except those public by design. The endpoints are read from Django's URL resolver, so one added
later is checked without being listed here."""

from __future__ import annotations

import re
import uuid
from typing import Iterator

import pytest
from django.urls import URLPattern, URLResolver, get_resolver, resolve
from django.urls.converters import IntConverter, PathConverter, SlugConverter, StringConverter, UUIDConverter
from rest_framework.test import APIClient

pytestmark = [pytest.mark.integration, pytest.mark.django_db]

API_PREFIX = "api/v1/"
# Public by design, by URL name: the health check (load balancers), a webhook trigger (its key in
# the path is the secret, orchestrator/webhooks.py) and the server's version (docs/api.md).
PUBLIC = {"health", "webhook", "api-version"}
# A value for each kind of path parameter; "sample" is none of the API's fixed words.
SAMPLES = {StringConverter: "sample", SlugConverter: "sample", IntConverter: "1", PathConverter: "sample/file.txt",
           UUIDConverter: str(uuid.UUID(int=1))}
_PARAMETER = re.compile(r"<(?:(?P<converter>[^>:]+):)?(?P<name>[^>]+)>")


def api_patterns(patterns=None, prefix: str = "") -> Iterator[tuple[str, URLPattern]]:
    """Every URL pattern with its whole route, under /api/v1."""
    for entry in get_resolver().url_patterns if patterns is None else patterns:
        route = prefix + str(entry.pattern)
        if isinstance(entry, URLResolver):
            if API_PREFIX.startswith(route) or route.startswith(API_PREFIX):
                yield from api_patterns(entry.url_patterns, route)
        elif route.startswith(API_PREFIX):
            yield route, entry


def concrete_path(route: str, pattern: URLPattern) -> str:
    converters = pattern.pattern.converters
    return "/" + _PARAMETER.sub(lambda match: SAMPLES[type(converters[match["name"]])], route)


def view_class(pattern: URLPattern) -> type:
    return getattr(pattern.callback, "cls", None) or pattern.callback.view_class


def methods(pattern: URLPattern) -> list[str]:
    """The HTTP methods the view answers (OPTIONS and HEAD follow from the others)."""
    view = view_class(pattern)
    actions = getattr(pattern.callback, "actions", None)  # a DRF viewset's method → action
    if actions:
        return sorted(actions)
    return [name for name in view.http_method_names if name not in {"options", "head"} and hasattr(view, name)]


def html_only(pattern: URLPattern) -> bool:
    """A page for browsers (Swagger UI, ReDoc): it answers in HTML only, its refusals too."""
    renderers = getattr(view_class(pattern), "renderer_classes", [])
    return bool(renderers) and all(renderer.format == "html" for renderer in renderers)


def protected_endpoints() -> list:
    return [pytest.param(method, concrete_path(route, pattern), html_only(pattern), id=f"{method} {route}")
            for route, pattern in api_patterns() if pattern.name not in PUBLIC for method in methods(pattern)]


def test_the_walk_finds_the_api_and_every_endpoint_is_reached_with_its_own_view():
    patterns = list(api_patterns())
    assert {"api-flow", "api-execution", "api-openapi"} <= {pattern.name for _, pattern in patterns}
    for route, pattern in patterns:
        if pattern.name not in PUBLIC:
            match = resolve(concrete_path(route, pattern))
            assert match.url_name == pattern.name, f"{route} is reached by {match.url_name} with sample values"


@pytest.mark.parametrize(("method", "path", "page"), protected_endpoints())
def test_every_endpoint_refuses_an_anonymous_client(method, path, page):
    response = getattr(APIClient(), method)(path, HTTP_ACCEPT="text/html" if page else "application/json")
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Basic")
    if page:
        return
    body = response.json()
    assert set(body) <= {"message", "details"} and body["message"], body


@pytest.mark.parametrize("path", ["/api/v1/health", "/api/v1/version"])
def test_health_and_version_answer_an_anonymous_client(path):
    assert APIClient().get(path).status_code == 200


def test_a_webhook_call_needs_no_credentials_only_its_key():
    response = APIClient().post("/api/v1/executions/webhook/sample/sample/not-the-key")
    assert response.status_code == 404  # no such flow or key: refused as a wrong key, not as anonymous
