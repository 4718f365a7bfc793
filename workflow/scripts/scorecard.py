"""results/scorecard.{md,csv,tex}: did we reproduce the paper, and do its findings hold under
both protocols? (rule scorecard)"""

from robustarch.report.jobs import write_scorecard
from robustarch.workflow import setup_job

write_scorecard(summaries=snakemake.input.summaries, outcomes=snakemake.input.outcomes,
                corruptions=snakemake.input.corruptions, sparsity=snakemake.input.sparsity,
                landscape=snakemake.input.landscape, spec=snakemake.params.spec,
                md=snakemake.output.md, csv=snakemake.output.csv, tex=snakemake.output.tex,
                log=setup_job(snakemake))
