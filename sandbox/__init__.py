"""The sandbox integration API: an application of its own, mounted at /sandbox by the API in development."""
