"""`make run`: the development stack (embedded Redis, the processes, the demo)."""
