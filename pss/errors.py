"""User-facing errors.

A :class:`PssError` carries a one-line message that names the problem and the
fix. The CLI prints it and exits with code 2; library callers can catch it.
"""


class PssError(Exception):
    """Bad input from the user (config, dataset, run directory, budget...)."""


def one_line(exc: BaseException, limit: int = 160) -> str:
    """An exception as one short line, whatever its message (some have none, some span many lines)."""
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text[:limit]}" if text else type(exc).__name__
