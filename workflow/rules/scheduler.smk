# A finished run ends with its last job. profiles/default's timespan (one minute) makes Snakemake's
# scheduler start a threading.Timer at each scheduling round, to wake itself once the span is over;
# it is a non-daemon thread, so the interpreter waited for the last one at exit and every run that
# had finished its jobs returned up to a minute later. Once the run is over nothing needs them.
# (tests/test_profile.py: a run under an hour's span ends; benchmarks/scheduler_levers.py: exit lag.)


def stop_pending_timers():
    """Cancel the threading.Timer threads still waiting (the scheduler's wake-ups)."""
    import threading

    for thread in threading.enumerate():
        if isinstance(thread, threading.Timer):
            thread.cancel()


onsuccess:
    stop_pending_timers()


onerror:
    stop_pending_timers()
