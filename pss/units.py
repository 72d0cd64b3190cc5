"""Resource kinds and their units: how costs and budgets are written and read.

The three kinds of resource a budget can constrain (PSS-Net Sec. 4: FLOPs,
parameters, latency) are named here once. Multiply-adds and parameters are
counts shown with K/M/G/T suffixes; latency is in milliseconds.
"""

from __future__ import annotations

import re

from .errors import PssError

COST_KINDS = ("macs", "params", "latency")
"""Every cost kind a budget can constrain, in the order commands list them."""
ANALYTIC_KINDS = ("macs", "params")
"""The cost kinds computed from the block spec (latency needs a measured lookup table)."""
LATENCY = "latency"
"""The measured cost kind (milliseconds, from a latency lookup table)."""

UNIT_SCALE = {"": 1.0, "K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12}
COST_UNITS = {"macs": "MACs", "params": "params", "latency": "ms"}

_NUMBER = r"([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)"


def format_quantity(value: float) -> str:
    """1.2e9 -> '1.2G', 30e6 -> '30M', 512 -> '512'."""
    for unit in ("T", "G", "M", "K"):
        if abs(value) >= UNIT_SCALE[unit]:
            return f"{value / UNIT_SCALE[unit]:.4g}{unit}"
    return f"{value:.4g}"


def format_cost(value: float, kind: str) -> str:
    """A cost with its unit: '5.352M MACs', '122.3K params', '3.21 ms' (latency is in milliseconds)."""
    if kind == LATENCY:
        return f"{value:.3g} ms" if abs(value) < 1000 else f"{value:.0f} ms"
    return f"{format_quantity(value)} {COST_UNITS.get(kind, kind)}"


def parse_quantity(text: str) -> float:
    """'30M' -> 3e7, '1.2G' -> 1.2e9, '4500' -> 4500.0, '3.2ms' -> 3.2 (latency); one-line error otherwise."""
    text = str(text)
    ms = re.fullmatch(rf"\s*{_NUMBER}\s*ms\s*\Z", text)
    if ms:
        return float(ms.group(1))
    m = re.fullmatch(rf"\s*{_NUMBER}\s*([kKmMgGtT]?)\s*\Z", text)
    if not m:
        raise PssError(
            f"malformed budget {text!r}: write a number with an optional unit K, M, G or T, e.g. 30M or 1.2G (latency: 3.2ms)"
        )
    return float(m.group(1)) * UNIT_SCALE[m.group(2).upper()]


def parse_quantities(text: str | None) -> list[float] | None:
    """'6M,8M, 10M' -> [6e6, 8e6, 1e7] (a comma list of :func:`parse_quantity` values); None stays None."""
    if text is None:
        return None
    return [parse_quantity(part.strip()) for part in str(text).split(",") if part.strip()]
