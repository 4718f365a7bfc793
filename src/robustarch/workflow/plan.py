"""``snakemake plan``: the bill of the configured run, per job and in total (rule plan).

The rule hands over one row per job of rule all (``rules/plan_common.smk``: rule, wildcards,
the outputs needing it, whether it is done, and for GPU jobs the FLOPs, GPU seconds and the
wall time requested, from :mod:`robustarch.workflow.costs`); this module writes them as
``results/plan.csv`` and summarizes them in ``results/plan.md``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ..atomic import write_csv, write_text

__all__ = ["plan_frame", "render_plan", "slurm_retries", "write_plan"]

MODEL_KEYS = ("dataset", "arch", "method", "attack")
TOP = 10


def slurm_retries(profile: str | Path) -> int | None:
    """The ``retries`` of the SLURM profile (how often a job stopped at its limit resumes)."""
    import yaml

    try:
        return int(yaml.safe_load(Path(profile).read_text())["retries"])
    except (OSError, KeyError, TypeError, ValueError, yaml.YAMLError):
        return None


def plan_frame(jobs: Sequence[Mapping[str, Any]]):
    """One row per job: rule, wildcards, the model's keys, its groups, status and cost."""
    import pandas as pd

    rows = []
    for job in jobs:
        w = job["wildcards"]
        on_gpu = "flops" in job
        rows.append({
            "rule": job["rule"],
            "wildcards": " ".join(f"{k}={v}" for k, v in w.items()),
            **{k: w.get(k, "") for k in MODEL_KEYS},
            "group": job["groups"][0],
            "groups": "; ".join(job["groups"]),
            "status": "done" if job["done"] else "to run",
            "gpu": on_gpu,
            "flops": job.get("flops", 0.0),
            "gpu_hours": job.get("gpu_seconds", 0.0) / 3600,
            "tflops_per_s": job["flops_per_s"] / 1e12 if on_gpu else None,
            "runtime_min": job.get("runtime_min"),
            "allocations": job.get("allocations"),
            "resumable": job.get("resumable"),
        })
    frame = pd.DataFrame(rows)
    frame["runtime_min"] = frame["runtime_min"].astype("Int64")
    frame["allocations"] = frame["allocations"].astype("Int64")
    return frame


def _hours(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:,.1f}" if value >= 1 else f"{value:.2g}"


def _requested(gpu) -> float:
    """GPU-hours the wall-time requests add up to, every allocation of a long job counted."""
    return float((gpu["runtime_min"] * gpu["allocations"]).sum()) / 60


def _table(header: list[str], rows: list[list[str]], align: str) -> list[str]:
    lines = ["| " + " | ".join(header) + " |",
             "|" + "|".join("---:" if a == "r" else "---" for a in align) + "|"]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


def _breakdown(todo, by: str, label: str) -> list[str]:
    gpu = todo[todo["gpu"]]
    total = gpu["gpu_hours"].sum() or 1.0
    rows = []
    for key, part in todo.groupby(by, sort=False):
        on_gpu = part[part["gpu"]]
        rows.append([str(key) or "–", str(len(part)), str(len(on_gpu)),
                     str(int((part["rule"] == "train").sum())), _hours(on_gpu["gpu_hours"].sum()),
                     _hours(_requested(on_gpu)),
                     f"{100 * on_gpu['gpu_hours'].sum() / total:.1f} %"])
    return _table([label, "jobs", "GPU jobs", "trainings", "GPU-hours (estimate)",
                   "GPU-hours requested", "share"], rows, "lrrrrrr")


def render_plan(frame, settings: Mapping[str, Any], retries: int | None) -> str:
    """``results/plan.md`` from the frame of :func:`plan_frame`."""
    todo = frame[frame["status"] == "to run"]
    gpu = todo[todo["gpu"]]
    cap = settings["max_runtime_min"]
    over = gpu[gpu["allocations"] > 1]
    done = len(frame) - len(todo)
    out = [
        "# The bill: what `snakemake` would run",
        "",
        f"Written by `snakemake plan` for the configured run (scale **{settings['scale']}**), "
        "from counted FLOPs (`src/robustarch/models/flops.json`"
        + ("" if settings["flops_current"] else ", stale: counted live for this plan")
        + f") and a throughput {settings['throughput']}. Nothing was trained. Per job: "
        "`results/plan.csv`.",
        "",
        f"**{len(todo)} jobs** to run ({len(gpu)} on a GPU, {int((todo['rule'] == 'train').sum())}"
        f" trainings), **{_hours(gpu['gpu_hours'].sum())} GPU-hours** estimated; the wall "
        f"times requested (estimate x {settings['safety']} + {settings['startup_min']} min "
        f"start-up, at least {settings['min_runtime_min']} min, at most {cap} min, each "
        f"allocation of a longer job) add up to "
        f"{_hours(_requested(gpu))} GPU-hours. {len(over)} jobs need longer than the cap."
        + (f" {done} jobs whose outputs exist are left out." if done else "")
        + (" At scale tiny a job's time is its start-up and per-batch overhead, which FLOPs "
           "do not measure: the estimates are lower bounds." if settings["scale"] == "tiny"
           else ""),
        "",
        "## Per output",
        "",
        "Each job counts for the first output needing it, in this order (Table 1 trains the "
        "models the studies, Table 4 and the analyses share with it).",
        "",
        *_breakdown(todo, "group", "output"),
        "",
        "## Per dataset",
        "",
        *_breakdown(todo.assign(dataset=todo["dataset"].replace("", "(none)")), "dataset",
                    "dataset"),
        "",
        "## Per rule",
        "",
        *_breakdown(todo, "rule", "rule"),
        "",
        f"## The {TOP} costliest jobs",
        "",
    ]
    top = gpu.sort_values("gpu_hours", ascending=False).head(TOP)
    out += _table(["rule", "job", "GPU-hours", "TFLOP/s assumed", "requested (min)"],
                  [[r.rule, r.wildcards, _hours(r.gpu_hours), f"{r.tflops_per_s:.1f}",
                    str(r.runtime_min)] for r in top.itertuples()], "llrrr")
    out += ["", f"## Jobs longer than the cap ({cap} min)", ""]
    if over.empty:
        out.append("None: every job fits one allocation.")
    else:
        resumable = over[over["resumable"].astype(bool)]
        stuck = over[~over["resumable"].astype(bool)]
        most = int(resumable["allocations"].max()) if len(resumable) else 1
        out.append(
            f"{len(over)} jobs. Training, AutoAttack and the corruption evaluation stop at a "
            "checkpoint ahead of the limit and resume in the next allocation (profiles/slurm), "
            f"so they need only retries: {len(resumable)} jobs, up to {most - 1} retries each "
            + (f"(the SLURM profile allows {retries}"
               + (", enough)." if retries is not None and most - 1 <= retries
                  else f"; raise it: `--retries {most - 1}`).")
               if retries is not None else "(the profile's retries could not be read).")
            + (f" {len(stuck)} jobs cannot resume and would never finish: raise "
               "ROBUSTARCH_SLURM_MAX_RUNTIME or make them smaller." if len(stuck) else ""))
        out.append("")
        out += _table(["rule", "job", "GPU-hours", "allocations", "retries needed",
                       "resumes"],
                      [[r.rule, r.wildcards, _hours(r.gpu_hours), str(r.allocations),
                        str(r.allocations - 1), "yes" if r.resumable else "**no**"]
                       for r in over.sort_values("gpu_hours", ascending=False).itertuples()],
                      "llrrrl")
    return "\n".join(out) + "\n"


def write_plan(*, jobs: Sequence[Mapping[str, Any]], settings: Mapping[str, Any],
               slurm_profile: str | Path, csv: str | Path, md: str | Path,
               log: Callable[[str], None] = print) -> None:
    frame = plan_frame(jobs)
    write_csv(frame, csv)
    write_text(render_plan(frame, settings, slurm_retries(slurm_profile)), md)
    todo = frame[(frame["status"] == "to run") & frame["gpu"]]
    log(f"{len(frame)} jobs, {todo['gpu_hours'].sum():,.0f} GPU-hours to run; wrote {csv}, {md}")
