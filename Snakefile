# robustarch: architecture vs. adversarially robust generalization (Liu et al., CVPR 2023).
# data -> train -> evaluate -> merge -> report. See README.md.

import sys
from pathlib import Path

from snakemake.utils import min_version

min_version("9.19")

# Jobs import robustarch from this checkout: Snakemake appends its own sys.path to every
# script job's, also inside conda envs and containers, which do not install the package.
if str(Path(workflow.basedir) / "src") not in sys.path:
    sys.path.insert(0, str(Path(workflow.basedir) / "src"))

# One pending scheduler re-evaluation timer instead of one more per finished job (Snakemake 9.27
# otherwise spends up to a core re-scheduling; see the module).
import robustarch.workflow.scheduler_timers

robustarch.workflow.scheduler_timers.install()


configfile: "config.yaml"


include: "rules/common.smk"
include: "rules/resources.smk"
include: "rules/data.smk"
include: "rules/train.smk"
include: "rules/evaluate.smk"
include: "rules/merge.smk"
include: "rules/report.smk"
include: "rules/corruptions.smk"
include: "rules/analyse.smk"
include: "rules/scorecard.smk"
include: "rules/plan.smk"


rule all:
    default_target: True
    input:
        all_targets(),
