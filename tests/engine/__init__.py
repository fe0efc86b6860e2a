"""Engine tests: beat, the run task, the integration client, against real Redis, databases and processes."""
