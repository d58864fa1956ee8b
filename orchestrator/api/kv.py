"""A namespace's KV store over HTTP, as Kestra's `/api/v1/namespaces/{namespace}/kv` (docs/kv.md,
docs/api.md). The store is orchestrator/kv.py's, the one flows use.

A value is sent as Kestra's clients send it: the body is the value as JSON (`"text"`, `42`,
`true`, `{"a": 1}`), its type inferred from it; an unquoted ISO-8601 date, date-time or duration
(`2024-05-01`, `2024-05-01T10:00:00Z`, `PT5M`) is a DATE, DATETIME or DURATION, as Kestra's Ion
reader takes them; with `Content-Type: text/plain`, any other body is a STRING as it is. The
`ttl` header (an ISO-8601 duration) makes it expire, the `description` header describes it.
"""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.parsers import BaseParser, JSONParser
from rest_framework.response import Response

from orchestrator import kv
from orchestrator.api.base import ERRORS, ApiView
from orchestrator.api.errors import ApiError, bad_request, conflict, not_found, too_large
from orchestrator.api.serializers import Error

# The value as JSON, its metadata and some slack for the JSON's own quoting.
_MAX_BODY_BYTES = kv.MAX_VALUE_BYTES + 64 * 1024


class KVEntry(serializers.Serializer):
    namespace = serializers.CharField()
    key = serializers.CharField()
    type = serializers.ChoiceField(choices=[t.value for t in kv.KVType])
    description = serializers.CharField(allow_null=True)
    creationDate = serializers.DateTimeField()
    updateDate = serializers.DateTimeField()
    expirationDate = serializers.DateTimeField(allow_null=True)


class TypedValue(serializers.Serializer):
    type = serializers.ChoiceField(choices=[t.value for t in kv.KVType])
    value = serializers.JSONField()


class KeysBody(serializers.Serializer):
    keys = serializers.ListField(child=serializers.CharField())


class _ValueParser(BaseParser):
    """The body as text, bounded: the value is read by `typed_body`, which needs the text itself
    (an unquoted date is not JSON)."""

    def parse(self, stream, media_type=None, parser_context=None) -> str:
        request = (parser_context or {}).get("request")
        declared = request.META.get("CONTENT_LENGTH") if request is not None else None
        if declared and declared.isdigit() and int(declared) > _MAX_BODY_BYTES:
            raise too_large(f"A KV value is limited to {kv.MAX_VALUE_BYTES} bytes")
        data = stream.read(_MAX_BODY_BYTES + 1) if stream is not None else b""
        if len(data) > _MAX_BODY_BYTES:
            raise too_large(f"A KV value is limited to {kv.MAX_VALUE_BYTES} bytes")
        try:
            return data.decode((parser_context or {}).get("encoding") or settings.DEFAULT_CHARSET)
        except UnicodeDecodeError:
            raise bad_request("The value is not UTF-8 text") from None


class JsonValueParser(_ValueParser):
    media_type = "application/json"


class TextValueParser(_ValueParser):
    media_type = "text/plain"


def typed_body(text: str, plain: bool) -> tuple[Any, kv.KVType | None]:
    """The value of a PUT body and its type (None: inferred from the value)."""
    stripped = text.strip()
    try:
        return json.loads(stripped), None
    except RecursionError:
        raise bad_request("The value is nested too deeply") from None
    except ValueError:
        pass
    for kind in (kv.KVType.DATE, kv.KVType.DATETIME, kv.KVType.DURATION):
        try:
            kv.typed_value(stripped, kind)
        except kv.KVError:
            continue
        return stripped, kind
    if plain:
        return text, kv.KVType.STRING
    raise bad_request("The value is not JSON: quote text (\"like this\"), or send it with Content-Type: text/plain",
                      [{"path": "body", "message": "not a JSON value", "line": None}])


def _store(namespace: str) -> kv.KVStore:
    try:
        return kv.KVStore(namespace)
    except kv.KVError as error:
        raise bad_request(str(error), [{"path": "namespace", "message": str(error), "line": None}]) from None


def _refused(error: kv.KVError, status: int = 400) -> ApiError:
    if isinstance(error, kv.KVNotFound):
        return not_found(str(error))
    return conflict(str(error)) if status == 409 else bad_request(str(error))


class KVList(ApiView):
    parser_classes = [JSONParser]

    @extend_schema(operation_id="listKeys", tags=["KV"], responses={200: KVEntry(many=True), **ERRORS},
                   summary="The live keys of a namespace, with their metadata, ordered by key")
    def get(self, request, namespace: str):
        return Response([entry.as_dict() for entry in _store(namespace).list()])

    @extend_schema(operation_id="deleteKeyValues", tags=["KV"], request=KeysBody,
                   responses={200: KeysBody, **ERRORS, 415: Error},
                   summary="Delete several keys; answers those that had a value")
    def delete(self, request, namespace: str):
        body = KeysBody(data=request.data)
        body.is_valid(raise_exception=True)
        store = _store(namespace)
        try:
            deleted = [key for key in body.validated_data["keys"] if store.delete(key)]
        except kv.KVError as error:
            raise _refused(error) from None
        return Response({"keys": deleted})


class KVDetail(ApiView):
    parser_classes = [JsonValueParser, TextValueParser]

    @extend_schema(operation_id="getKeyValue", tags=["KV"], responses={200: TypedValue, **ERRORS},
                   summary="The value of a key, with its type")
    def get(self, request, namespace: str, key: str):
        store = _store(namespace)
        try:
            kv.validate_key(key)
        except kv.KVError as error:
            raise _refused(error) from None
        try:
            found = store.require(key)
        except kv.KVError as error:  # a damaged entry cannot be read, but can be deleted or overwritten
            raise _refused(error, 409) from None
        return Response({"type": found.entry.type.value, "value": found.value})

    @extend_schema(operation_id="setKeyValue", tags=["KV"],
                   request={"application/json": OpenApiTypes.ANY, "text/plain": OpenApiTypes.STR},
                   parameters=[OpenApiParameter("ttl", str, OpenApiParameter.HEADER,
                                                description="an ISO-8601 duration after which the key expires"),
                               OpenApiParameter("description", str, OpenApiParameter.HEADER)],
                   responses={200: KVEntry, **ERRORS, 413: Error, 415: Error},
                   summary="Set the value of a key (the body is the value as JSON)")
    def put(self, request, namespace: str, key: str):
        if not isinstance(request.data, str):
            raise bad_request("Send the value as the body, as JSON (Content-Type: application/json) or text "
                              "(text/plain)")
        value, kv_type = typed_body(request.data, request.content_type.startswith("text/plain"))
        try:
            entry = _store(namespace).put(key, value, kv_type, ttl=request.headers.get("ttl"),
                                          description=request.headers.get("description"))
        except kv.KVError as error:
            raise _refused(error) from None
        return Response(entry.as_dict())

    @extend_schema(operation_id="deleteKeyValue", tags=["KV"], responses={200: OpenApiTypes.BOOL, **ERRORS},
                   summary="Delete a key; answers whether it had a value")
    def delete(self, request, namespace: str, key: str):
        try:
            return Response(_store(namespace).delete(key))
        except kv.KVError as error:
            raise _refused(error) from None
