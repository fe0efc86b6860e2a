"""Write-side logic of the API as plain functions on a Session: no FastAPI, so the CLI reuses them.

None of them commits (except dispatching a manual run, which must commit before it enqueues):
the caller owns the transaction, so a rejected request writes nothing.
"""
