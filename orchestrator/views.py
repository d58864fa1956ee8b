"""Plain views: the health check and the landing page. The REST API lives in its own module."""

from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.shortcuts import redirect


def health(request: HttpRequest) -> JsonResponse:
    """Liveness and database reachability, without authentication (for probes)."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        database = "UP"
    except Exception:  # the probe reports the failure instead of raising it
        database = "DOWN"
    status = 200 if database == "UP" else 503
    return JsonResponse({"status": "UP" if status == 200 else "DOWN", "database": database}, status=status)


def home(request: HttpRequest):
    return redirect("admin:index")
