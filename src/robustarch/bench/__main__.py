"""Command line: ``python -m robustarch.bench``; see ``--help``."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any


def with_gpu_section(previous: dict[str, Any], gpu_run: dict[str, Any]) -> dict[str, Any]:
    """``previous`` (a whole run's document) with the GPU section and records of ``gpu_run``
    (``--only gpu``): the CPU figures stay as they were measured."""
    records = [r for r in previous["records"] if not r["name"].startswith("gpu_")]
    return {**previous, "gpu": gpu_run["gpu"],
            "records": records + [r for r in gpu_run["records"] if r["name"].startswith("gpu_")]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m robustarch.bench",
        description="Benchmark our training loop, attacks and workflow planning against "
                    "references; write docs/benchmarks.md and docs/benchmarks.json.")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--quick", dest="mode", action="store_const", const="quick",
                      help="small sizes, a few minutes on a CPU (default)")
    mode.add_argument("--full", dest="mode", action="store_const", const="full",
                      help="more rounds and larger batches")
    gpu = parser.add_mutually_exclusive_group()
    gpu.add_argument("--gpu", dest="gpu", action="store_const", const=True,
                     help="run the GPU figures and write the cost model's calibration, "
                          "<out>/gpu_calibration.json (default: when CUDA is available); with "
                          "--only gpu, the other figures of <out>/benchmarks.json are kept")
    gpu.add_argument("--no-gpu", dest="gpu", action="store_const", const=False)
    parser.add_argument("--only", nargs="+",
                        choices=["train", "attacks", "plan", "precision", "gpu"],
                        help="run only these parts")
    parser.add_argument("--device", default="cpu",
                        help="device of the train/attack comparisons (default cpu)")
    parser.add_argument("--repo", type=Path, default=None,
                        help="checkout with Snakefile and config.yaml (default: found from "
                             "the current directory)")
    parser.add_argument("--out", type=Path, default=None,
                        help="output directory (default: <repo>/docs)")
    # One thread by default: the suite measures ratios, and on a shared machine (CI runners) a
    # team of OpenMP threads stalls whenever any of its cores is taken by another process.
    parser.add_argument("--threads", type=int, default=1,
                        help="torch intra-op threads (default 1; 0: torch's default, all cores)")
    args = parser.parse_args(argv)
    mode_name = args.mode or "quick"

    import torch

    from robustarch.atomic import write_text
    from robustarch.bench.markdown import render
    from robustarch.bench.records import write_json
    from robustarch.bench.runner import find_repo, run

    if args.threads:
        torch.set_num_threads(args.threads)
    repo = find_repo(args.repo)
    out = args.out or repo / "docs"
    start = time.perf_counter()

    def progress(message: str) -> None:
        print(f"[{time.perf_counter() - start:6.1f}s] {message}", flush=True)

    doc = run(mode_name, repo=repo, device=args.device, gpu=args.gpu,
              only=tuple(args.only) if args.only else None, progress=progress)
    flag = "--full" if mode_name == "full" else "--quick"
    if args.only == ["gpu"] and doc.get("gpu") and (out / "benchmarks.json").exists():
        doc = with_gpu_section(json.loads((out / "benchmarks.json").read_text()), doc)
    write_json(out / "benchmarks.json", doc)
    if doc.get("gpu"):  # what rules/resources.smk and `snakemake plan` read
        write_json(out / "gpu_calibration.json", doc["gpu"]["calibration"])
    markdown = render(doc, command=f"python -m robustarch.bench {flag}")
    write_text(markdown, out / "benchmarks.md")
    for record in doc["records"]:
        print(f"{record['name']:<40} ours {record['ours']:10.2f} ref {record['reference']:10.2f} "
              f"{record['unit']:<9} ratio {record['ratio']:.2f}")
    for goal in doc["goals"]:
        print(f"goal {'met    ' if goal['met'] else 'NOT met'}: {goal['goal']}")
    print(f"wrote {out / 'benchmarks.md'} and {out / 'benchmarks.json'} "
          f"({time.perf_counter() - start:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
