"""The errors every stage may raise, and how they are worded.

Each message names the problem and the fix: a week-long run that stops must say what to do.
"""

from __future__ import annotations

from collections.abc import Iterable


def describe_error(exc: BaseException) -> str:
    """``Type: first line of the message`` (torch's load errors run to a page)."""
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {first[:200]}"


class _ReadableKeyError(KeyError):
    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0])


class UnknownModelError(_ReadableKeyError):
    """An architecture name that the registry does not have."""


class UnknownDatasetError(_ReadableKeyError):
    """A dataset name that no dataset module registers."""


class ConfigError(ValueError):
    """The configuration is invalid; the message lists every problem found."""


class CorruptFileError(ValueError):
    """A model or checkpoint file cannot be read."""


def unknown_model(name: str, known: Iterable[str]) -> UnknownModelError:
    """The error for an unregistered architecture ``name``: the valid names and the fix."""
    return UnknownModelError(
        f"unknown architecture {name!r}; registered architectures are: {', '.join(known)}. "
        "Add one as a module of robustarch/models/families/ (see docs/layout.md, 'Adding an "
        "architecture')."
    )


def unknown_dataset(name: str, known: Iterable[str]) -> UnknownDatasetError:
    """The error for an unregistered dataset ``name``: the valid names and the fix."""
    return UnknownDatasetError(
        f"unknown dataset {name!r}; registered datasets are: {', '.join(known)}. Add one as a "
        "module of robustarch/data/datasets/ (see docs/layout.md, 'Adding a dataset')."
    )
