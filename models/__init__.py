"""Definitions: the SQLAlchemy models, the pure parsing of schedules and criteria, settings.

Everything here is shared by the API, beat and the workers; nothing here imports them.
"""
