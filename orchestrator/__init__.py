"""Harrier's Django project and repository app."""
