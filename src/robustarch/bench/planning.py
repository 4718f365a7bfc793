"""Record ``plan``: wall time of ``snakemake -n --cores 1`` (a dry run) for the paper config.

Snakemake is run in a subprocess in the repository root, as a user runs it, with the
repository's ``config.yaml`` (the full paper DAG). There is no other tool to race, so the
record's reference is the goal itself: 10 seconds (``ratio > 1``: faster than the goal).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

from robustarch.bench.records import Record
from robustarch.bench.timing import interleaved

GOAL_S = 10.0


def snakemake_command() -> list[str]:
    """The ``snakemake`` of this interpreter's environment (falls back to ``python -m``)."""
    beside = Path(sys.executable).with_name("snakemake")
    if beside.exists():
        return [str(beside)]
    found = shutil.which("snakemake")
    return [found] if found else [sys.executable, "-m", "snakemake"]


def dry_run(repo: Path, extra: tuple[str, ...] = ()) -> tuple[float, str]:
    """Seconds taken by one ``snakemake -n --cores 1`` in ``repo``, and its output."""
    command = [*snakemake_command(), "-n", "--cores", "1", *extra]
    start = time.perf_counter()
    done = subprocess.run(command, cwd=repo, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).splitlines()[-20:])
        raise RuntimeError(f"`{' '.join(command)}` failed in {repo} (exit {done.returncode}):\n"
                           f"{tail}")
    return elapsed, done.stdout + done.stderr


def planned_jobs(output: str) -> int | None:
    """The job count of a dry run's "Job stats" table (its ``total`` row)."""
    match = re.search(r"^total\s+(\d+)\s*$", output, flags=re.MULTILINE)
    return int(match.group(1)) if match else None


def time_plan(repo: Path, *, warmup: int, repeats: int, progress=None) -> Record:
    outputs: list[str] = []

    def run() -> float:
        elapsed, output = dry_run(repo)
        outputs.append(output)
        return elapsed

    seconds = interleaved({"ours": run}, warmup=warmup, repeats=repeats, progress=progress)["ours"]
    return Record.from_samples(
        "plan", seconds, [GOAL_S] * len(seconds), "s",
        reference="the goal (10 s)", command="snakemake -n --cores 1",
        config="config.yaml", jobs=planned_jobs(outputs[-1]),
    )
