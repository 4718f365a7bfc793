"""Architectures. Importing this package registers every family module in it.

Family modules are discovered rather than listed so that adding an architecture means adding
one file (see README, "Adding an architecture").
"""

import importlib
import pkgutil

from .registry import (
    CATEGORIES,
    SCALES,
    ModelInfo,
    NormalizedModel,
    UnknownModelError,
    count_params,
    create_model,
    list_models,
    model_info,
    register_model,
)

for _mod in pkgutil.iter_modules(__path__):
    if not _mod.name.startswith("_") and _mod.name != "registry":
        importlib.import_module(f"{__name__}.{_mod.name}")

__all__ = [
    "CATEGORIES",
    "SCALES",
    "ModelInfo",
    "NormalizedModel",
    "UnknownModelError",
    "count_params",
    "create_model",
    "list_models",
    "model_info",
    "register_model",
]
