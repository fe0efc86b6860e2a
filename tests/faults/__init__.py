"""The fault suite (issue 6): real worker, beat and Redis processes killed, stopped and cut off mid-stream.

Run with `make test-faults` (CI runs it once, on PostgreSQL); `make test` leaves this folder out.
"""
