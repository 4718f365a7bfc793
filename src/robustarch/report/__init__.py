"""Every table and figure, in the paper's layout, with the paper's published numbers beside
ours: Table 1 (:mod:`.table1`), the studies (:mod:`.studies`), Table 4 (:mod:`.table4`), the
analyses' tables (:mod:`.analysis_tables`), the figures (:mod:`.figures`) and the architectures
table (:mod:`.architectures`). Rendering only: the numbers come from the earlier stages' files.

This package imports nothing heavy itself; its modules import pandas, and the figures
matplotlib inside each function, so table jobs never pay for torch.
"""
