"""Checks a maintainer runs: `make deps` (the import graph)."""
