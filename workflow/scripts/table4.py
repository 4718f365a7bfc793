"""The paper's Table 4: clean and corruption accuracy of vanilla and AT models (rule table4)."""

from robustarch.corruptions import (
    collect_table4,
    table4_display,
    table4_frame,
    with_paper_table4,
    write_csv,
)
from robustarch.jobs import setup_job
from robustarch.report import write_table

log = setup_job(snakemake)
results, per_corruption = collect_table4(snakemake.params.models, snakemake.input.clean,
                                         snakemake.input.corruptions)
frame = table4_frame(results, snakemake.params.datasets)
write_table(table4_display(frame), snakemake.output.tex, snakemake.output.csv,
            csv_frame=with_paper_table4(frame),
            caption="Table 4: clean and common-corruption accuracy (%) of vanilla and "
                    "PGD-Linf trained models (corruption accuracy: mean over corruptions and "
                    "severities)")
write_csv(per_corruption, snakemake.output.per_corruption)
log(frame.to_string())
