# The reproduction scorecard (beyond the paper's own outputs): every reproduced cell beside the
# paper's number, rank correlations with the paper, and the paper's findings as checks under
# both protocols, from the per-sample outcomes (robustarch.report.scorecard).


rule scorecard:
    input:
        **scorecard_inputs(),
    output:
        md=report(
            f"{RESULTS}/scorecard.md",
            caption="../report/scorecard.rst",
            category="Scorecard",
        ),
        csv=report(
            f"{RESULTS}/scorecard.csv",
            caption="../report/scorecard.rst",
            category="Scorecard",
        ),
        tex=report(
            f"{RESULTS}/scorecard.tex",
            caption="../report/scorecard.rst",
            category="Scorecard",
        ),
    log:
        "logs/report/scorecard.log",
    benchmark:
        "benchmarks/report/scorecard.tsv"
    conda:
        "../envs/robustarch.yaml"
    params:
        spec=scorecard_spec(),
    script:
        "../workflow/scripts/scorecard.py"
