"""Every Redis key and queue name the product uses, in one place."""

PREFIX = "aw:"

#: Celery queue the run tasks go to.
RUN_QUEUE = "automations"

#: Incremented by the API after any change that can move a next_run_at; beat re-reads the earliest due time
#: when it changes, so a tick with nothing due touches no database.
SCHEDULE_GENERATION = PREFIX + "schedule:generation"

#: The beat leader lock (value: the holder's id; short TTL, extended by the leader).
BEAT_LEADER_LOCK = PREFIX + "beat:leader"

#: The Unix time of the beat leader's last tick, written by the same script that extends its lock (no TTL:
#: missing means no leader ever ticked on this Redis, old means the leader's loop stopped).
BEAT_LAST_TICK = PREFIX + "beat:last-tick"

#: Run metrics (hashes: a field per label set or histogram bucket), incremented at each run's end by whichever
#: worker process ends it, so they are right across prefork children, hosts and restarts.
METRICS_RUNS = PREFIX + "metrics:runs"
METRICS_PARTNER = PREFIX + "metrics:partner"

#: Automations per (health_state, status), shared by the API processes for HEALTH_COUNTS_CACHE_S (the one
#: count whose cost grows with the table; models/health_query.py).
HEALTH_COUNTS = PREFIX + "metrics:health-counts"


def metrics_histogram(name: str) -> str:
    """A histogram's hash: a field per bucket (not cumulative), plus `sum` and `count`."""
    return f"{PREFIX}metrics:hist:{name}"


#: Written by the beat leader once Redis is known to hold the queue; missing means Redis lost its data (a
#: restart without persistence), so the slots whose messages went with it are sent again.
REDIS_MARKER = PREFIX + "beat:redis-marker"


def run_lock(automation_uuid: str) -> str:
    """Held while a run of the automation is going: a second run of it is skipped."""
    return f"{PREFIX}run-lock:{automation_uuid}"


def refresh_lock(connection_uuid: str) -> str:
    """Held while one worker refreshes a connection's OAuth tokens."""
    return f"{PREFIX}refresh-lock:{connection_uuid}"


def resume_marker(automation_uuid: str, resume_at: str) -> str:
    """Set by beat's resume sweep when it dispatches an unfinished run again: once per marker TTL at most
    for the same resume_at ("-" for an abandoned run)."""
    return f"{PREFIX}resume:{automation_uuid}:{resume_at}"
