"""The Celery tasks and what they call: the run, the integration-API client, run bookkeeping."""
