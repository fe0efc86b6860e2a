"""Pydantic schemas of the API: one Create, Update and Public shape per resource."""
