"""localtailr's benchmarks: ``python -m bench`` (``make bench``). The row format is in ``__main__``."""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence


def spread(xs: Sequence[float]) -> float | None:
    """Half the interquartile range of ``xs`` as a fraction of their median (0.05 = ±5 %)."""
    if len(xs) < 2:
        return None
    med = statistics.median(xs)
    if not med:
        return None
    q = statistics.quantiles(xs, n=4, method="inclusive")
    return (q[2] - q[0]) / 2 / abs(med)


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
    samples: Sequence[float] | None = None,
    floor_samples: Sequence[float] | None = None,
) -> dict:
    """One figure of the table (see ``bench/__main__.py`` for the meaning of each field).

    ``samples`` and ``floor_samples`` are the rounds behind ``value`` and ``floor``
    (medians); the table shows their spread.
    """
    if value is None and samples:
        value = statistics.median(samples)
    if floor is None and floor_samples:
        floor = statistics.median(floor_samples)
    if ratio is None and value is not None and floor:
        ratio = value / floor
    return {"name": name, "value": value, "unit": unit, "floor": floor, "floor_name": floor_name,
            "ratio": ratio, "target": target, "ok": ok, "note": note,
            "spread": spread(samples or []), "floor_spread": spread(floor_samples or [])}


def skipped(name: str, reason: str) -> dict:
    """A peer's row that could not be measured here, with the one-line reason."""
    return row(name, None, note=f"skipped: {reason}")


def alternate_samples(a: Callable[[], float], b: Callable[[], float],
                      rounds: int) -> tuple[list[float], list[float]]:
    """Every round of ``a()`` and ``b()``, measured in turns (a, b, b, a, a, b ...)."""
    xs, ys = [], []
    for i in range(rounds):
        if i % 2:
            ys.append(b())
            xs.append(a())
        else:
            xs.append(a())
            ys.append(b())
    return xs, ys


def interleave(fns: Sequence[Callable[[], float]], rounds: int) -> list[list[float]]:
    """Every round of each of ``fns``, run in turns (the order reversed every other round)."""
    out: list[list[float]] = [[] for _ in fns]
    order = list(range(len(fns)))
    for i in range(rounds):
        for j in (order if i % 2 == 0 else order[::-1]):
            out[j].append(fns[j]())
    return out


def alternate(a: Callable[[], float], b: Callable[[], float], rounds: int) -> tuple[float, float]:
    """Medians of ``a()`` and ``b()`` measured in turns (a, b, b, a, a, b ...), to share the noise."""
    xs, ys = alternate_samples(a, b, rounds)
    return statistics.median(xs), statistics.median(ys)
