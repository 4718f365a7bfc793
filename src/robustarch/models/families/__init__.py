"""The architecture families. Importing this package registers every family module in it
(modules starting with ``_`` hold shared building blocks)."""

import importlib
import pkgutil

for _mod in pkgutil.iter_modules(__path__):
    if not _mod.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_mod.name}")
