"""What the server is: its version, readable without authentication (as Kestra's /configs)."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from orchestrator.api import serializers
from orchestrator.api.base import ERRORS, ApiView

# The API's own version is the path's (/api/v1); this is the server's.
HARRIER_VERSION = "0.1.0"


class Version(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]

    @extend_schema(operation_id="version", tags=["Misc"], auth=[], responses={200: serializers.Version},
                   summary="The server's version (no authentication)")
    def get(self, request):
        return Response({"version": HARRIER_VERSION})


class Workers(ApiView):
    """The worker processes alive now, and for a worker group why its jobs wait, if they do."""

    @extend_schema(operation_id="workers", tags=["Workers"], responses={200: serializers.Workers, **ERRORS},
                   parameters=[OpenApiParameter("group", str, description="only the workers of this group")],
                   summary="Live workers; for a group, why its jobs would wait")
    def get(self, request):
        from workers.liveness import live_workers, waiting_reason

        group = request.query_params.get("group") or None
        answer = {"workers": live_workers(group)}
        if group is not None:
            answer["waiting"] = waiting_reason(group)
        return Response(answer)
