"""Architectures: a string-keyed registry in the style of timm (``create_model("vit")``).

Each family is one module of :mod:`robustarch.models.families`, discovered rather than listed,
so adding an architecture means adding one file (docs/layout.md, "Adding an architecture").

Importing this package imports neither torch nor the families: planning the workflow reads the
architectures' names from :mod:`robustarch.models.catalog`. The registry's names below load it
(and every family) on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

_FROM_REGISTRY = ("CATEGORIES", "REGULARIZERS", "SCALES", "ModelInfo", "NormalizedModel",
                  "count_params", "create_model", "list_models", "model_info",
                  "register_family", "register_model", "Variant")


def __getattr__(name: str) -> Any:
    if name in _FROM_REGISTRY:
        return getattr(importlib.import_module(f"{__name__}.registry"), name)
    if name == "UnknownModelError":
        from ..errors import UnknownModelError

        return UnknownModelError
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [*_FROM_REGISTRY, "UnknownModelError"]
