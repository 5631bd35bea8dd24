"""The data-flow diagram as inline SVG, drawn by our own layout so reports open offline.

Layout: columns follow the flow order (longest path from the sources, cycles
broken), and each trust boundary is a horizontal lane, nested lanes indented
inside their parent. Lanes never overlap, so a reader sees at a glance which
flows cross a boundary. Findings are pinned to elements as a coloured count.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any
from xml.sax.saxutils import escape

__all__ = ["render_diagram"]

COL_W, NODE_W, NODE_H, ROW_GAP = 240, 164, 46, 18
LANE_PAD, LANE_HEAD, MARGIN = 14, 24, 20
SEVERITY_COLOUR = {
    "critical": "#7b1fa2",
    "high": "#c62828",
    "medium": "#ef6c00",
    "low": "#f9a825",
    "info": "#607d8b",
}
TRUST_FILL = {
    "untrusted": "#fdecea",
    "partner": "#fff4e5",
    "internal": "#e8f4fd",
    "restricted": "#edf7ed",
}


@dataclass
class _Box:
    id: str
    label: str
    type: str
    x: float = 0.0
    y: float = 0.0


def _ranks(ids: list[str], edges: list[tuple[str, str]]) -> dict[str, int]:
    """Longest-path layering; back edges found by DFS are ignored."""
    succ: dict[str, list[str]] = defaultdict(list)
    for a, b in edges:
        succ[a].append(b)
    state: dict[str, int] = {}
    order: list[str] = []
    back: set[tuple[str, str]] = set()
    for root in ids:
        if root in state:
            continue
        stack: list[tuple[str, int]] = [(root, 0)]
        state[root] = 1
        while stack:
            node, i = stack.pop()
            if i < len(succ[node]):
                stack.append((node, i + 1))
                nxt = succ[node][i]
                if state.get(nxt) == 1:
                    back.add((node, nxt))
                elif nxt not in state:
                    state[nxt] = 1
                    stack.append((nxt, 0))
            else:
                state[node] = 2
                order.append(node)
    rank = dict.fromkeys(ids, 0)
    for node in reversed(order):
        for nxt in succ[node]:
            if (node, nxt) not in back:
                rank[nxt] = max(rank[nxt], rank[node] + 1)
    return rank


def _lanes(system: dict[str, Any], ids: list[str]) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """Boundaries as a tree (list of roots with 'children'), and element → innermost lane."""
    bounds = {b["id"]: {**b, "children": []} for b in system.get("boundaries", [])}
    roots = []
    for b in bounds.values():
        parent = b.get("parent")
        if parent in bounds:
            bounds[parent]["children"].append(b)
        else:
            roots.append(b)

    def depth(b: dict[str, Any]) -> int:
        d, cur = 0, b.get("parent")
        while cur in bounds and d <= len(bounds):
            d, cur = d + 1, bounds[cur].get("parent")
        return d

    home: dict[str, str] = {}
    for el in ids:
        holders = [b for b in bounds.values() if el in b.get("contains", [])]
        if holders:
            home[el] = max(holders, key=depth)["id"]
    return roots, home


def render_diagram(system: dict[str, Any], worst: dict[str, tuple[str, int]]) -> str:
    """SVG markup; `worst` maps element id → (worst severity, finding count)."""
    elements = system.get("elements", [])
    boxes = {e["id"]: _Box(e["id"], e.get("name") or e["id"], e["type"]) for e in elements}
    ids = list(boxes)
    edges = [(f["from"], f["to"]) for f in system.get("flows", [])]
    rank = _ranks(ids, edges)
    roots, home = _lanes(system, ids)
    unboxed = [i for i in ids if i not in home]
    lanes_svg: list[str] = []
    y: float = MARGIN
    width = MARGIN * 2 + (max(rank.values(), default=0) + 1) * COL_W + 4 * LANE_PAD

    def place(members: list[str], top: float, indent: float) -> float:
        per_col: dict[int, int] = defaultdict(int)
        for m in members:
            row = per_col[rank[m]]
            per_col[rank[m]] += 1
            boxes[m].x = MARGIN + 2 * LANE_PAD + rank[m] * COL_W + (COL_W - NODE_W) / 2
            boxes[m].y = top + row * (NODE_H + ROW_GAP)
        rows = max(per_col.values(), default=0)
        return rows * (NODE_H + ROW_GAP)

    def lane(b: dict[str, Any], top: float, depth: int) -> float:
        indent = depth * LANE_PAD
        members = [i for i in ids if home.get(i) == b["id"]]
        inner = top + LANE_HEAD
        inner += place(members, inner, indent)
        for child in b["children"]:
            inner += lane(child, inner, depth + 1) + ROW_GAP / 2
        height = inner - top + LANE_PAD / 2
        fill = TRUST_FILL.get(b.get("trust", ""), "#f5f5f5")
        title = escape(f"{b.get('name') or b['id']} — {b.get('trust', '?')}")
        lanes_svg.insert(
            0,
            f'<g class="lane"><rect x="{MARGIN + indent}" y="{top}" '
            f'width="{width - 2 * MARGIN - 2 * indent}" height="{height}" rx="8" '
            f'fill="{fill}" stroke="#90a4ae" stroke-dasharray="6 4"/>'
            f'<text x="{MARGIN + indent + 8}" y="{top + 16}" class="lane-title">{title}</text></g>',
        )
        return height

    if unboxed:
        y += place(unboxed, y, 0) + ROW_GAP
    for root in roots:
        y += lane(root, y, 0) + ROW_GAP
    height = y + MARGIN
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" role="img" aria-label="data-flow diagram" '
        f'class="dfd">',
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" '
        'markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" '
        'fill="#455a64"/></marker></defs>',
        *lanes_svg,
    ]
    for flow in system.get("flows", []):
        parts.append(_edge(boxes[flow["from"]], boxes[flow["to"]], flow.get("carries", "")))
    for box in boxes.values():
        parts.append(_node(box, worst.get(box.id)))
    parts.append("</svg>")
    return "\n".join(parts)


def _edge(a: _Box, b: _Box, label: str) -> str:
    if b.x > a.x:
        x1, y1, x2, y2 = a.x + NODE_W, a.y + NODE_H / 2, b.x, b.y + NODE_H / 2
        bend = (x2 - x1) / 2
        d = f"M{x1},{y1} C{x1 + bend},{y1} {x2 - bend},{y2} {x2},{y2}"
    else:
        x1, y1, x2, y2 = a.x + NODE_W / 2, a.y + NODE_H, b.x + NODE_W / 2, b.y + NODE_H
        drop = max(y1, y2) + 30
        d = f"M{x1},{y1} C{x1},{drop} {x2},{drop} {x2},{y2}"
    mx, my = (x1 + x2) / 2, (y1 + y2) / 2 - 4
    # Labels only where there is room; every flow keeps its label as a tooltip.
    roomy = b.x - a.x >= COL_W and abs(y2 - y1) < NODE_H
    text = f'<text x="{mx}" y="{my}" class="flow-label">{escape(label)}</text>' if roomy else ""
    return (
        f'<g class="flow"><title>{escape(a.label)} → {escape(b.label)}: {escape(label)}</title>'
        f'<path d="{d}" fill="none" stroke="#455a64" stroke-width="1.4" '
        f'marker-end="url(#arrow)"/>{text}</g>'
    )


def _node(box: _Box, worst: tuple[str, int] | None) -> str:
    rx = 22 if box.type == "actor" else 6
    label = box.label if len(box.label) <= 21 else box.label[:20] + "…"
    out = [
        f'<g class="node node-{escape(box.type)}" id="node-{escape(box.id)}">'
        f"<title>{escape(box.label)} ({escape(box.type)})</title>"
        f'<rect x="{box.x}" y="{box.y}" width="{NODE_W}" height="{NODE_H}" rx="{rx}"/>'
        f'<text x="{box.x + NODE_W / 2}" y="{box.y + 20}" class="node-label">{escape(label)}</text>'
        f'<text x="{box.x + NODE_W / 2}" y="{box.y + 36}" class="node-type">'
        f"{escape(box.type.replace('_', ' '))}</text>"
    ]
    if worst is not None:
        sev, count = worst
        colour = SEVERITY_COLOUR.get(sev, "#607d8b")
        cx, cy = box.x + NODE_W - 2, box.y + 2
        out.append(
            f'<a href="#el-{escape(box.id)}"><circle cx="{cx}" cy="{cy}" r="11" fill="{colour}"/>'
            f'<text x="{cx}" y="{cy + 4}" class="badge">{count}</text></a>'
        )
    out.append("</g>")
    return "".join(out)
