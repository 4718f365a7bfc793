"""Error helpers shared by every stage."""


def describe_error(exc: BaseException) -> str:
    """``Type: first line of the message`` (torch's load errors run to a page)."""
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {first[:200]}"
