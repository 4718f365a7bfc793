# Download and verify dataset archives; decode each dataset once into uint8 tensor splits.


rule download_archive:
    output:
        archive=f"{DATA}/downloads/{{archive}}",
    log:
        "logs/data/download_{archive}.log",
    benchmark:
        "benchmarks/data/download_{archive}.tsv"
    wildcard_constraints:
        archive="|".join(re.escape(name) for name in ARCHIVES),
    retries: 1
    conda:
        "../envs/robustarch.yaml"
    params:
        url=lambda w: ARCHIVES[w.archive].url,
        md5=lambda w: ARCHIVES[w.archive].md5,
    script:
        "../workflow/scripts/download_archive.py"


rule prepare_dataset:
    input:
        unpack(archive_input),
    output:
        train=f"{DATA}/{{dataset}}/train.pt",
        test=f"{DATA}/{{dataset}}/test.pt",
    log:
        "logs/data/prepare_{dataset}.log",
    benchmark:
        "benchmarks/data/prepare_{dataset}.tsv"
    conda:
        "../envs/robustarch.yaml"
    script:
        "../workflow/scripts/prepare_dataset.py"
