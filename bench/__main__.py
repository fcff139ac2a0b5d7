"""``make bench`` = ``python -m bench [NAME ...] [--strict]``: run every benchmark, print one table.

Every module ``bench/bench_*.py`` that defines ``run()`` is a benchmark; it is
imported and ``run()`` is called (NAME arguments keep only the modules whose name
contains one of them). ``run()`` measures localtailr against a floor or a peer
*in the same run* (alternating the two to beat noise) and returns a list of
rows, one dict a figure::

    {
        "name":   "KV get/s",            # the figure, as the issue names it
        "value":  41000.0,               # localtailr's figure (a number)
        "unit":   "ops/s",               # unit of value and floor: ops/s, s, ms, MB, MiB/s ...
        "floor":  62000.0,               # the floor's or peer's figure, same unit; None if absolute
        "floor_name": "raw sqlite3",     # what the floor is (shown beside its figure)
        "ratio":  0.66,                  # how localtailr compares, in the target's terms
                                         # (higher-is-better figures: value / floor;
                                         # costs: value / floor too, with a "<=" target); or None
        "target": ">= 0.5x",             # the target as text, shown as is
        "ok":     True,                  # target met? None when there is no target
        "note":   "...",                 # optional: one short remark (conditions, cold figure)
        "spread": 0.03, "floor_spread": 0.05,  # half the IQR of the rounds / their median
    }

Figures are medians of rounds run in turns with their peer; the "spread" column is
±(half the interquartile range) of localtailr's rounds / of the peer's. A peer that
cannot be installed here gives a row with no figure and "skipped: <reason>".

``bench.row(...)`` builds one with defaults. Modules should keep one run under a
few minutes and clean up what they create. A module that raises is reported as a
failed row; the others still run. Exit status is 0 unless ``--strict`` is given
and a target is missed (or a module failed).
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
import time
import traceback
from pathlib import Path

from bench import row

COLUMNS = ("figure", "localtailr", "floor/peer", "ratio", "spread", "target", "pass/fail")


def modules(selected: list[str]) -> list[str]:
    folder = Path(__file__).resolve().parent
    names = sorted(m.name for m in pkgutil.iter_modules([str(folder)]) if m.name.startswith("bench_"))
    if selected:
        names = [n for n in names if any(s in n for s in selected)]
    return names


def fmt(value, unit: str = "") -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if value == 0 or abs(value) >= 100:
            text = f"{value:,.0f}"
        elif abs(value) >= 1:
            text = f"{value:.2f}"
        else:
            text = f"{value:.3g}"
    else:
        text = str(value)
    return f"{text} {unit}".strip()


def cells(r: dict) -> list[str]:
    floor = fmt(r.get("floor"), r.get("unit", ""))
    if r.get("floor_name"):
        floor = f"{floor} ({r['floor_name']})" if r.get("floor") is not None else r["floor_name"]
    ok = r.get("ok")
    verdict = "-" if ok is None else ("pass" if ok else "FAIL")
    ratio = r.get("ratio")
    pct = lambda s: "?" if s is None else f"±{s * 100:.0f}%"
    spread = "-"
    if r.get("spread") is not None or r.get("floor_spread") is not None:
        spread = pct(r.get("spread")) + ("" if r.get("floor") is None else " / " + pct(r.get("floor_spread")))
    return [
        str(r.get("name", "?")),
        fmt(r.get("value"), r.get("unit", "")),
        floor,
        "-" if ratio is None else f"{ratio:.3g}x",
        spread,
        str(r.get("target") or "-"),
        verdict,
    ]


def table(rows: list[dict]) -> str:
    body = [cells(r) for r in rows]
    widths = [max(len(c), *(len(b[i]) for b in body)) if body else len(c) for i, c in enumerate(COLUMNS)]
    line = lambda values: "  ".join(v.ljust(w) for v, w in zip(values, widths)).rstrip()
    out = [line(COLUMNS), line(["-" * w for w in widths])]
    out += [line(b) for b in body]
    notes = [f"  {r['name']}: {r['note']}" for r in rows if r.get("note")]
    if notes:
        out += ["", "notes:", *notes]
    return "\n".join(out)


def main(argv: list[str]) -> int:
    strict = "--strict" in argv
    selected = [a for a in argv if not a.startswith("-")]
    rows: list[dict] = []
    for name in modules(selected):
        started = time.perf_counter()
        try:
            module = importlib.import_module(f"bench.{name}")
            run = getattr(module, "run", None)
            if run is None:
                continue
            print(f"running {name} ...", file=sys.stderr, flush=True)
            got = run() or []
        except Exception as exc:  # one broken module must not hide the others' figures
            traceback.print_exc()
            got = [row(f"{name} (crashed)", None, ok=False, note=f"{type(exc).__name__}: {exc}")]
        for r in got:
            r.setdefault("module", name)
        rows += got
        print(f"  {name}: {time.perf_counter() - started:.1f} s", file=sys.stderr, flush=True)
    print(table(rows))
    failed = [r for r in rows if r.get("ok") is False]
    print(f"\n{len(rows)} figures, {len(failed)} below target")
    return 1 if strict and failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
