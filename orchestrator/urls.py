from django.contrib import admin
from django.urls import include, path

from orchestrator import views, webhooks

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/health", views.health, name="health"),
    # Before the API: no authentication, the key in the path is the secret (orchestrator/webhooks.py).
    path("api/v1/executions/webhook/<str:namespace>/<str:flow_id>/<str:key>", webhooks.webhook, name="webhook"),
    path("api/v1/", include("orchestrator.api.urls")),
    path("", views.home, name="home"),
]
