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
    from .models import count_params, create_model, model_info

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
