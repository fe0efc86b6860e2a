"""The management API (FastAPI): the seed endpoints under /api/v3, the operator endpoints, /health."""
