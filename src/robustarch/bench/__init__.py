"""Benchmark runner: ``python -m robustarch.bench [--quick | --full] [--gpu | --no-gpu]``.

Side-by-side, interleaved comparisons of our code paths with conventional or third-party
references (adversarial training loop, PGD attacks, workflow planning), the bf16 evaluation
check, and GPU throughput figures when CUDA is available. Writes ``docs/benchmarks.json``
(``machine``, ``versions``, ``records``: ``{name, ours, reference, unit, ratio}``, ratio > 1
meaning ours is faster) and ``docs/benchmarks.md``.

Modules: :mod:`.records` (records, ratio, JSON), :mod:`.timing` (interleaved rounds),
:mod:`.conventional` (the reference training loop), :mod:`.training`, :mod:`.attacks`,
:mod:`.planning`, :mod:`.precision`, :mod:`.gpu` (the comparisons), :mod:`.goals`,
:mod:`.markdown`, :mod:`.runner` (quick/full sizes and the suite).
"""

from robustarch.bench.records import Record, speedup

__all__ = ["Record", "speedup"]
