"""Error helpers shared by every stage."""


def describe_error(exc: BaseException) -> str:
    """``Type: first line of the message`` (torch's load errors run to a page)."""
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {first[:200]}"


class UnknownModelError(KeyError):
    """An architecture name that the registry does not have."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0])


def unknown_model(name: str, known: list[str]) -> UnknownModelError:
    """The error for an unregistered architecture ``name``: the valid names and the fix."""
    return UnknownModelError(
        f"unknown architecture {name!r}; registered architectures are: {', '.join(known)}. "
        "Add one with @register_model (see README, 'Adding an architecture')."
    )
