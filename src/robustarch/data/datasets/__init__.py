"""The datasets, one module each. Importing this package registers every module in it (modules
starting with ``_`` hold shared code).

Adding a dataset: write ``<name>.py`` here with its decoding function decorated by
:func:`robustarch.data.registry.register_dataset` (see ``cifar10.py``), giving its archive (or
None when bundled), sample counts, image size, classes, normalization, augmentation defaults,
attack budgets per norm, published corrupted test set if any, and its cluster resource hints.
Import torch, NumPy and PIL inside the decoding function only: planning the workflow imports
this module. Then name the dataset in ``run.datasets``; the config's ``datasets.<name>`` and
``attacks.<attack>.eps.<name>`` only override the module's facts. Test the decoder on an
archive the test builds itself (tests/test_data.py).
"""

import importlib
import pkgutil

for _mod in pkgutil.iter_modules(__path__):
    if not _mod.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_mod.name}")
