"""User-facing errors.

A :class:`PssError` carries a one-line message that names the problem and the
fix. The CLI prints it and exits with code 2; library callers can catch it.
"""


class PssError(Exception):
    """Bad input from the user (config, dataset, run directory, budget...)."""
