# robustarch: architecture vs. adversarially robust generalization (Liu et al., CVPR 2023).
# data -> train -> evaluate -> merge -> report. See README.md.

from snakemake.utils import min_version

min_version("9.19")


configfile: "config.yaml"


include: "rules/common.smk"
include: "rules/data.smk"
include: "rules/train.smk"
include: "rules/evaluate.smk"
include: "rules/merge.smk"
include: "rules/report.smk"


rule all:
    input:
        all_targets(),
    default_target: True
