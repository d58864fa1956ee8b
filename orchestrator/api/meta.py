"""What the server is: its version, readable without authentication (as Kestra's /configs)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from orchestrator.api import serializers

# The API's own version is the path's (/api/v1); this is the server's.
HARRIER_VERSION = "0.1.0"


class Version(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]

    @extend_schema(operation_id="version", tags=["Misc"], auth=[], responses={200: serializers.Version},
                   summary="The server's version (no authentication)")
    def get(self, request):
        return Response({"version": HARRIER_VERSION})
