"""Request bodies the API reads besides JSON and forms: flow sources as YAML text."""

from __future__ import annotations

from django.conf import settings
from rest_framework.parsers import BaseParser

from orchestrator.api.errors import bad_request, too_large


class YamlSourceParser(BaseParser):
    """A flow's YAML source, kept as text: the flow language parses it (with line numbers), and the
    text itself is what a revision stores. Bodies over HARRIER_MAX_FLOW_BYTES are refused before
    they are read whole."""

    media_type = "application/x-yaml"

    def parse(self, stream, media_type=None, parser_context=None) -> str:
        limit = settings.HARRIER_MAX_FLOW_BYTES
        request = (parser_context or {}).get("request")
        declared = request.META.get("CONTENT_LENGTH") if request is not None else None
        if declared and declared.isdigit() and int(declared) > limit:
            raise too_large(f"The flow source is larger than {limit} bytes")
        data = stream.read(limit + 1) if stream is not None else b""
        if len(data) > limit:
            raise too_large(f"The flow source is larger than {limit} bytes")
        try:
            return data.decode((parser_context or {}).get("encoding") or settings.DEFAULT_CHARSET)
        except UnicodeDecodeError:
            raise bad_request("The flow source is not UTF-8 text") from None


class YamlAliasParser(YamlSourceParser):
    """The other names YAML goes by."""

    media_type = "application/yaml"


class TextYamlParser(YamlSourceParser):
    media_type = "text/yaml"


YAML_PARSERS = [YamlSourceParser, YamlAliasParser, TextYamlParser]
