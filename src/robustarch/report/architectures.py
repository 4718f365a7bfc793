"""The architectures table: parameters of every configured model against the paper's count."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import pandas as pd

COLUMNS = ["name", "category", "dataset", "image_size", "scale", "params_m", "paper_params_m",
           "rel_diff"]


def architecture_table(names: Iterable[str], datasets: Mapping[str, Mapping[str, int]],
                       scale: str) -> pd.DataFrame:
    """One row per (architecture, dataset): parameters in millions at the dataset's image size
    and class count. ``paper_params_m`` is Table 1's count, measured by the paper at 32×32 with
    10 classes; ``rel_diff`` compares against it only for rows built that way at paper scale."""
    from ..models import count_params, create_model, model_info

    rows = []
    for name in names:
        info = model_info(name)
        for dataset, spec in datasets.items():
            size, classes = spec["image_size"], spec["num_classes"]
            params = count_params(create_model(name, classes, size, scale)) / 1e6
            comparable = (scale == "paper" and size == 32 and classes == 10
                          and info.paper_params_m is not None)
            rows.append({
                "name": name, "category": info.category, "dataset": dataset, "image_size": size,
                "scale": scale, "params_m": round(params, 4),
                "paper_params_m": info.paper_params_m,
                "rel_diff": round((params - info.paper_params_m) / info.paper_params_m, 4)
                if comparable else None,
            })
    return pd.DataFrame(rows, columns=COLUMNS)


def markdown_summary(scale: str = "paper") -> str:
    """A Markdown table of every base architecture at 32×32, 10 classes, against Table 1."""
    from ..models import list_models, model_info

    names = [n for n in list_models() if model_info(n).paper_params_m is not None
             and model_info(n).family == n]
    table = architecture_table(names, {"cifar10": {"image_size": 32, "num_classes": 10}}, scale)
    lines = ["| architecture | category | params (M) | paper (M) | gap |",
             "|---|---|---:|---:|---:|"]
    for row in table.sort_values(["category", "name"]).itertuples():
        lines.append(f"| `{row.name}` | {row.category} | {row.params_m:.4f} | "
                     f"{row.paper_params_m:.2f} | {100 * row.rel_diff:+.2f} % |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(markdown_summary())
