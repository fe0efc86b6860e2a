"""The database-backed beat scheduler: leadership, the due index, dispatch, catch-up, resume."""
