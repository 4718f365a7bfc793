"""Analyses of trained models: weight sparsity (paper Figs. 1-2), the weight loss landscape
(Fig. 4) and the empirical local Lipschitz constant (ours). See docs/analysis.md.

The submodules are imported on their own (``from robustarch.analysis.sparsity import ...``):
this package imports nothing, so that table and figure jobs never pay for torch.
"""

# Weight components (robustarch.analysis.sparsity), in the order of tables and figures.
COMPONENTS = ("conv", "qkv", "attn_other", "ffn", "other")
