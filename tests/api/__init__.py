"""Tests of the management API (api/), through FastAPI's TestClient and the official SDK."""
