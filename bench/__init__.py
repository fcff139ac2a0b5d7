"""localtailr's benchmarks: ``python -m bench`` (``make bench``). The row format is in ``__main__``."""

from __future__ import annotations

import statistics
from collections.abc import Callable


def row(
    name: str,
    value: float | None,
    unit: str = "",
    floor: float | None = None,
    floor_name: str = "",
    ratio: float | None = None,
    target: str = "",
    ok: bool | None = None,
    note: str = "",
) -> dict:
    """One figure of the table (see ``bench/__main__.py`` for the meaning of each field)."""
    if ratio is None and value is not None and floor:
        ratio = value / floor
    return {"name": name, "value": value, "unit": unit, "floor": floor, "floor_name": floor_name,
            "ratio": ratio, "target": target, "ok": ok, "note": note}


def alternate(a: Callable[[], float], b: Callable[[], float], rounds: int) -> tuple[float, float]:
    """Medians of ``a()`` and ``b()`` measured in turns (a, b, b, a, a, b ...), to share the noise."""
    xs, ys = [], []
    for i in range(rounds):
        if i % 2:
            ys.append(b())
            xs.append(a())
        else:
            xs.append(a())
            ys.append(b())
    return statistics.median(xs), statistics.median(ys)
