"""Paper Figure 2: CoAtNet's weights by component (rule figure2_components)."""

import json
from pathlib import Path

from robustarch.analysis.figures import figure2
from robustarch.jobs import setup_job

log = setup_job(snakemake)
figure2([json.loads(Path(path).read_text()) for path in snakemake.input.reports],
        snakemake.output.pdf)
log(f"wrote {snakemake.output.pdf}")
