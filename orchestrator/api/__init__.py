"""The REST API under /api/v1: Kestra's paths and JSON shapes (docs/api.md)."""
