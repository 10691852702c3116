"""Jinja2 templates and static assets of the survey and the report (package data)."""
