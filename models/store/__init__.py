"""Turning a validated payload into rows, and reading them back: used by the API and the command line."""
