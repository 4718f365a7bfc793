"""Keep Snakemake's scheduler to one pending re-evaluation timer.

Snakemake 9.27's job scheduler ends every scheduling round by arming a new timer (its job rate
limiter's time span, 1 s by default) that starts another round. A round started by a finished
job arms a timer of its own, so the timers add up: after n finished jobs there are about n
rounds a second, each walking the ready jobs. In the demo (268 jobs on 2 cores) the main
process took half a core by the end; on a login node a run of a thousand jobs would keep a core
busy for days. :func:`install` makes the scheduler arm a timer only when none is pending that
fires as early: rounds still follow every finished job and still come at least once per time
span. The timers are daemon threads, so Snakemake no longer waits for them when it exits.
"""

from __future__ import annotations

import threading
import time


def install() -> bool:
    """Patch ``JobScheduler._schedule_reevalutation`` (once); False where it does not exist."""
    try:
        from snakemake.scheduling.job_scheduler import JobScheduler
    except ImportError:
        return False
    if not hasattr(JobScheduler, "_schedule_reevalutation"):
        return False
    JobScheduler._schedule_reevalutation = schedule_reevaluation  # idempotent
    return True


def schedule_reevaluation(scheduler, delay: float) -> None:
    """Release ``scheduler._open_jobs`` after ``delay`` seconds, unless a pending timer already
    does so no later than that."""
    deadline = time.monotonic() + delay
    lock = scheduler.__dict__.setdefault("_reevaluation_lock", threading.Lock())
    with lock:
        pending = scheduler.__dict__.get("_reevaluation_deadline")
        if pending is not None and time.monotonic() < pending <= deadline:
            return
        scheduler._reevaluation_deadline = deadline

    def fire() -> None:
        with lock:
            if scheduler.__dict__.get("_reevaluation_deadline") == deadline:
                scheduler._reevaluation_deadline = None
        scheduler._open_jobs.release()

    timer = threading.Timer(delay, fire)
    timer.daemon = True
    timer.start()
