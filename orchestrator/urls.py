from django.contrib import admin
from django.urls import include, path

from orchestrator import views

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/health", views.health, name="health"),
    path("api/v1/", include("orchestrator.api.urls")),
    path("", views.home, name="home"),
]
