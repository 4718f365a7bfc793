"""robustarch.scheduler_timers: one pending re-evaluation timer per Snakemake scheduler."""

import threading
import time

from robustarch.workflow import scheduler_timers


class _Scheduler:
    def __init__(self):
        self._open_jobs = threading.Semaphore(0)


def _releases(scheduler, wait: float) -> int:
    time.sleep(wait)
    count = 0
    while scheduler._open_jobs.acquire(blocking=False):
        count += 1
    return count


def test_requests_while_a_timer_is_pending_arm_no_other():
    scheduler = _Scheduler()
    for _ in range(5):  # five rounds, as five finished jobs would start
        scheduler_timers.schedule_reevaluation(scheduler, 0.2)
    assert _releases(scheduler, 0.5) == 1
    scheduler_timers.schedule_reevaluation(scheduler, 0.1)  # none pending now: a new one
    assert _releases(scheduler, 0.4) == 1


def test_an_earlier_request_gets_its_own_timer():
    scheduler = _Scheduler()
    scheduler_timers.schedule_reevaluation(scheduler, 5.0)
    scheduler_timers.schedule_reevaluation(scheduler, 0.1)
    assert _releases(scheduler, 0.4) == 1  # the early one fired; the late one still pending


def test_timers_do_not_keep_the_process_alive():
    scheduler = _Scheduler()
    before = set(threading.enumerate())
    scheduler_timers.schedule_reevaluation(scheduler, 5.0)
    (timer,) = set(threading.enumerate()) - before
    assert timer.daemon


def test_install_patches_snakemake_once():
    from snakemake.scheduling.job_scheduler import JobScheduler

    assert scheduler_timers.install() and scheduler_timers.install()
    assert JobScheduler._schedule_reevalutation is scheduler_timers.schedule_reevaluation
