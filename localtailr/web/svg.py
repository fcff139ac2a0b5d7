"""Inline SVG drawn on the server: a workflow's DAG, a small line chart, a job's run history.
Text is escaped."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from markupsafe import Markup, escape

NODE_W, NODE_H, GAP_X, GAP_Y, PAD = 150, 44, 60, 22, 10


def layers(names: Sequence[str], edges: Sequence[tuple[str, str]]) -> dict[str, int]:
    """Each node's layer: the length of the longest path to it from a node with no upstream."""
    ups: dict[str, list[str]] = {n: [] for n in names}
    for u, d in edges:
        if u in ups and d in ups:
            ups[d].append(u)
    out: dict[str, int] = {}

    def depth(n: str, seen: frozenset = frozenset()) -> int:
        if n not in out:
            if n in seen:  # a cycle cannot be saved, but never loop on bad data
                return 0
            out[n] = 1 + max((depth(u, seen | {n}) for u in ups[n]), default=-1)
        return out[n]

    for n in names:
        depth(n)
    return out


def dag(
    names: Sequence[str],
    edges: Sequence[tuple[str, str]],
    states: Mapping[str, str],
    links: Mapping[str, str],
) -> Markup:
    """The DAG left to right in layers; each node coloured by its state, linked to its run."""
    layer = layers(names, edges)
    columns: dict[int, list[str]] = {}
    for n in names:
        columns.setdefault(layer[n], []).append(n)
    pos = {}
    for x, col in columns.items():
        for y, n in enumerate(col):
            pos[n] = (PAD + x * (NODE_W + GAP_X), PAD + y * (NODE_H + GAP_Y))
    width = PAD * 2 + max(columns, default=0) * (NODE_W + GAP_X) + NODE_W
    height = PAD * 2 + max((len(c) for c in columns.values()), default=1) * (NODE_H + GAP_Y) - GAP_Y
    parts = [
        f'<svg class="dag" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}"'
        f' width="{width}" height="{height}" role="img" aria-label="workflow graph">',
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7"'
        ' markerHeight="7" orient="auto"><path d="M0,0 L10,5 L0,10 z" class="arrow"/></marker></defs>',
    ]
    for u, d in edges:
        if u in pos and d in pos:
            (ux, uy), (x2, dy) = pos[u], pos[d]
            x1, y1, y2 = ux + NODE_W, uy + NODE_H / 2, dy + NODE_H / 2  # right side to left side
            mid = (x1 + x2) / 2
            parts.append(f'<path class="edge" d="M{x1},{y1} C{mid},{y1} {mid},{y2} {x2},{y2}"'
                         ' marker-end="url(#arrow)"/>')
    for n in names:
        x, y = pos[n]
        state = states.get(n, "waiting")
        label = n if len(n) <= 20 else n[:19] + "…"
        node = (
            f'<g class="node state-{escape(state)}" data-task="{escape(n)}" data-state="{escape(state)}">'
            f'<title>{escape(n)}: {escape(state)}</title>'
            f'<rect x="{x}" y="{y}" width="{NODE_W}" height="{NODE_H}" rx="6"/>'
            f'<text x="{x + 8}" y="{y + 18}" class="name">{escape(label)}</text>'
            f'<text x="{x + 8}" y="{y + 35}" class="state">{escape(state)}</text></g>'
        )
        if n in links:
            node = f'<a href="{escape(links[n])}">{node}</a>'
        parts.append(node)
    parts.append("</svg>")
    return Markup("".join(parts))


def chart(points: Sequence[tuple[float, float]], label: str, unit: str, width: int = 320,
          height: int = 80) -> Markup:
    """A small line chart of (time, value) points, with its label and the latest and peak values."""
    title = f"{label}: no samples yet"
    body = ""
    if points:
        t0, t1 = points[0][0], points[-1][0]
        top = max(v for _, v in points) or 1.0
        span = (t1 - t0) or 1.0
        xy = " ".join(
            f"{(t - t0) / span * (width - 2) + 1:.1f},{height - 1 - v / top * (height - 14):.1f}"
            for t, v in points
        )
        body = f'<polyline class="line" points="{xy}"/>'
        title = f"{label}: {_fmt(points[-1][1])} {unit} now, peak {_fmt(top)} {unit}"
    return Markup(
        f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}"'
        f' width="{width}" height="{height}" role="img" aria-label="{escape(title)}">'
        f'<rect class="frame" x="0" y="0" width="{width}" height="{height}"/>'
        f'<text x="4" y="11" class="caption">{escape(title)}</text>{body}</svg>'
    )


def _fmt(v: float) -> str:
    return f"{v:.0f}" if abs(v) >= 10 else f"{v:.2g}"


def history(runs: Sequence[dict], width: int = 480, height: int = 90) -> Markup:
    """A job's last runs as bars, oldest on the left: height is how long each ran, colour its
    state; each bar links to its run."""
    shown = [r for r in runs if r.get("run_id") is not None][::-1]  # runs come newest first
    if not shown:
        return Markup("")
    took = [max(0.0, (r["ended_at"] or 0) - (r["started_at"] or 0)) if r.get("ended_at") and r.get("started_at")
            else 0.0 for r in shown]
    top = max(took) or 1.0
    slot = (width - 2) / len(shown)
    bar = max(2.0, slot * 0.7)
    parts = [f'<svg class="history" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}"'
             f' width="{width}" height="{height}" role="img"'
             f' aria-label="the last {len(shown)} runs: duration and state">',
             f'<rect class="frame" x="0" y="0" width="{width}" height="{height}"/>',
             f'<text x="4" y="11" class="caption">last {len(shown)} runs · longest {_fmt(top)} s</text>']
    for i, (r, seconds) in enumerate(zip(shown, took)):
        h = max(2.0, seconds / top * (height - 18))
        x, y = 1 + i * slot + (slot - bar) / 2, height - 1 - h
        state = str(r.get("state") or "pending").replace(" ", "-")
        label = f"run #{r['run_id']}: {r.get('state')}, {_fmt(seconds)} s"
        parts.append(
            f'<a href="/runs/{int(r["run_id"])}"><g class="bar state-{escape(state)}" data-run="{int(r["run_id"])}"'
            f' data-seconds="{seconds:.3f}"><title>{escape(label)}</title>'
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar:.1f}" height="{h:.1f}"/></g></a>')
    parts.append("</svg>")
    return Markup("".join(parts))
