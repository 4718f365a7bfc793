"""Interleaved timing: every contender runs once per round, with warm-up rounds first.

On a shared machine the load drifts over seconds; running the contenders back to back in each
round, and in reversed order every other round, exposes them to the same drift, and the medians
over rounds drop the rounds that another process disturbed.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

# A contender runs one unit of work. It may return its own measurement in seconds (to exclude
# setup it cannot avoid, e.g. building a model); None means "time the whole call".
Contender = Callable[[], float | None]


def interleaved(contenders: Mapping[str, Contender], *, warmup: int, repeats: int,
                progress: Callable[[str], None] | None = None) -> dict[str, list[float]]:
    """Seconds per round of each contender, warm-up rounds excluded.

    Round ``r`` runs the contenders in the given order when ``r`` is even and reversed when odd,
    so neither side systematically runs first (caches warmed by the other, thermal state).
    """
    if repeats < 1 or warmup < 0:
        raise ValueError("need repeats >= 1 and warmup >= 0")
    names = list(contenders)
    seconds: dict[str, list[float]] = {name: [] for name in names}
    for round_index in range(warmup + repeats):
        order = names if round_index % 2 == 0 else names[::-1]
        last: dict[str, float] = {}
        for name in order:
            start = time.perf_counter()
            own = contenders[name]()
            elapsed = time.perf_counter() - start
            if own is not None and not isinstance(own, float):
                raise TypeError(f"contender {name!r} returned {own!r}: return its own seconds "
                                "as a float, or None")
            last[name] = elapsed if own is None else own
            if round_index >= warmup:
                seconds[name].append(last[name])
        if progress is not None:
            label = "warm-up" if round_index < warmup else f"round {round_index - warmup + 1}"
            progress(f"  {label}: " + ", ".join(f"{n} {last[n]:.2f}s" for n in names))
    return seconds


def throughputs(seconds: list[float], items: int) -> list[float]:
    """Items per second of each round."""
    return [items / s for s in seconds]
