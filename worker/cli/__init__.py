"""`automation-worker`: the command line."""
