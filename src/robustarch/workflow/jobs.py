"""Set-up shared by the thin job scripts in workflow/scripts: the log file and threads."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from typing import Any


def setup_job(snakemake: Any) -> Callable[[str], None]:
    """Send this job's output and tracebacks to its log file; set torch's thread count.

    Returns a ``log(message)`` function that writes one flushed line.
    """
    threads = max(1, int(snakemake.threads))
    os.environ["OMP_NUM_THREADS"] = str(threads)  # for a torch imported after this call
    log_file = open(snakemake.log[0], "a", buffering=1)  # noqa: SIM115 (lives for the job)
    sys.stdout = sys.stderr = log_file
    logging.basicConfig(stream=log_file, level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", force=True)
    if "torch" in sys.modules:  # jobs without models (merge, tables) never pay torch's import
        sys.modules["torch"].set_num_threads(threads)
    logger = logging.getLogger(f"robustarch.{snakemake.rule}")

    def log(message: str) -> None:
        logger.info(message)

    return log
