#!/usr/bin/env python3
"""Draws attention time per call against T, as an SVG, from the rows `bench/report --workloads attention --json OUT`
joined: one panel per (batch, mask), log-log axes, one line per implementation (Eigenformer's reference and flash
kernels, PyTorch). Plain SVG text: needs nothing but Python 3.

Usage (from the repository root):
  bench/report --workloads attention --json /tmp/attention.json
  tools/plot_attention.py /tmp/attention.json [-o docs/attention.svg] [--batches 1,8] [--masks none,causal]
"""

import argparse
import json
import math
import os
import sys
from html import escape

COLOURS = {"reference": "#1f77b4", "flash": "#d62728", "torch": "#2ca02c", "torch_unset": "#9467bd"}
OTHER_COLOURS = ("#ff7f0e", "#8c564b", "#e377c2", "#7f7f7f")
PANEL_W, PANEL_H = 420, 300                # one panel's plotting area, in px
LEFT, RIGHT, TOP, BOTTOM = 80, 30, 40, 55  # space around each plotting area (axis labels, panel title)
HEADER = 90                                # title, subtitle and legend above the panels


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("joined", help="JSON written by bench/report --workloads attention --json")
    p.add_argument("-o", "--output", default=os.path.join("docs", "attention.svg"),
                   help="SVG to write (default docs/attention.svg)")
    p.add_argument("--batches", default="1,8", help="comma-separated batch sizes, one row of panels each (default 1,8)")
    p.add_argument("--masks", default="none,causal",
                   help="comma-separated masks (none, causal, padding), one column of panels each (default none,causal)")
    return p.parse_args()


def time_label(us):
    for unit, scale in (("s", 1e6), ("ms", 1e3), ("µs", 1.0)):
        if us >= scale:
            return f"{us / scale:g} {unit}"
    return f"{us:g} µs"


def panel(x0, y0, rows, impls, colours, title):
    """SVG elements of one panel whose plotting area's top left corner is (x0, y0)."""
    ts = sorted({r["T"] for r in rows})
    times = [t for r in rows for k, t in r["us"].items() if k in impls]
    lo, hi = math.floor(math.log10(min(times))), math.ceil(math.log10(max(times)))
    hi = max(hi, lo + 1)
    lx0, lx1 = math.log2(ts[0]), math.log2(ts[-1])

    def x(t):
        return x0 + (math.log2(t) - lx0) / max(1e-9, lx1 - lx0) * PANEL_W

    def y(us):
        return y0 + PANEL_H - (math.log10(us) - lo) / (hi - lo) * PANEL_H

    out = [f'<text x="{x0 + PANEL_W / 2}" y="{y0 - 14}" class="panel">{escape(title)}</text>',
           f'<rect x="{x0}" y="{y0}" width="{PANEL_W}" height="{PANEL_H}" class="frame"/>']
    for e in range(lo, hi + 1):  # decades, with grid lines at 2 and 5 in between
        out.append(f'<line x1="{x0}" x2="{x0 + PANEL_W}" y1="{y(10 ** e):.1f}" y2="{y(10 ** e):.1f}" class="grid"/>')
        out.append(f'<text x="{x0 - 6}" y="{y(10 ** e) + 4:.1f}" class="ytick">{time_label(10 ** e)}</text>')
        if e < hi:
            out += [f'<line x1="{x0}" x2="{x0 + PANEL_W}" y1="{y(m * 10 ** e):.1f}" y2="{y(m * 10 ** e):.1f}" '
                    'class="minor"/>' for m in (2, 5)]
    for t in ts:
        out.append(f'<line x1="{x(t):.1f}" x2="{x(t):.1f}" y1="{y0}" y2="{y0 + PANEL_H}" class="grid"/>')
        out.append(f'<text x="{x(t):.1f}" y="{y0 + PANEL_H + 16}" class="xtick">{t}</text>')
    out.append(f'<text x="{x0 + PANEL_W / 2}" y="{y0 + PANEL_H + 38}" class="axis">T (queries = keys)</text>')
    out.append(f'<text transform="translate({x0 - 62},{y0 + PANEL_H / 2}) rotate(-90)" class="axis">'
               'time per call (log)</text>')
    for impl in impls:
        pts = [(x(r["T"]), y(r["us"][impl])) for r in sorted(rows, key=lambda r: r["T"]) if impl in r["us"]]
        if not pts:
            continue
        path = " ".join(f"{px:.1f},{py:.1f}" for px, py in pts)
        out.append(f'<polyline points="{path}" fill="none" stroke="{colours[impl]}" stroke-width="2"/>')
        out += [f'<circle cx="{px:.1f}" cy="{py:.1f}" r="3" fill="{colours[impl]}"/>' for px, py in pts]
    return out


def main():
    args = parse_args()
    with open(args.joined) as f:
        joined = json.load(f)
    batches = [int(b) for b in args.batches.split(",")]
    masks = [m.strip() for m in args.masks.split(",")]
    rows = joined.get("attention", [])
    present = [(b, m) for b in batches for m in masks if any(r["B"] == b and r["mask"] == m for r in rows)]
    if not present:
        sys.exit(f"plot_attention.py: no attention rows for batches {batches} and masks {masks} in {args.joined}")
    batches = [b for b in batches if any(pb == b for pb, _ in present)]
    masks = [m for m in masks if any(pm == m for _, pm in present)]

    names = joined.get("implementations", {})
    impls = [k for k in ("reference", "flash", "torch", "torch_unset") if any(k in r["us"] for r in rows)]
    impls += sorted({k for r in rows for k in r["us"]} - set(impls))
    extra = iter(OTHER_COLOURS * 4)
    colours = {k: COLOURS.get(k) or next(extra) for k in impls}

    cell_w, cell_h = LEFT + PANEL_W + RIGHT, TOP + PANEL_H + BOTTOM
    width, height = cell_w * len(masks), HEADER + cell_h * len(batches)
    svg = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" font-family="DejaVu Sans, Helvetica, Arial, sans-serif" font-size="12">',
           "<style>.frame{fill:none;stroke:#333}.grid{stroke:#ccc}.minor{stroke:#eee}"
           ".xtick{text-anchor:middle}.ytick{text-anchor:end}.axis{text-anchor:middle;font-size:13px}"
           ".panel{text-anchor:middle;font-size:14px;font-weight:bold}.title{font-size:17px;font-weight:bold}"
           ".sub{fill:#555}</style>",
           f'<rect width="{width}" height="{height}" fill="white"/>',
           f'<text x="{LEFT}" y="26" class="title">Attention core: time per call against sequence length T</text>',
           f'<text x="{LEFT}" y="46" class="sub">{escape(attention_subtitle(joined))}</text>']
    lx, ly = LEFT, 68
    for impl in impls:  # legend: one line, wrapped when it would leave the picture
        label = names.get(impl, impl)
        if lx > LEFT and lx + 30 + 7 * len(label) > width:
            lx, ly = LEFT, ly + 18
        svg.append(f'<line x1="{lx}" x2="{lx + 24}" y1="{ly}" y2="{ly}" stroke="{colours[impl]}" stroke-width="2"/>')
        svg.append(f'<circle cx="{lx + 12}" cy="{ly}" r="3" fill="{colours[impl]}"/>')
        svg.append(f'<text x="{lx + 30}" y="{ly + 4}">{escape(label)}</text>')
        lx += 30 + 7 * len(label) + 24
    for i, b in enumerate(batches):
        for j, m in enumerate(masks):
            sel = [r for r in rows if r["B"] == b and r["mask"] == m]
            if sel:
                title = f"B = {b}, {'no mask' if m == 'none' else m + ' mask'}"
                svg += panel(j * cell_w + LEFT, HEADER + i * cell_h + TOP, sel, impls, colours, title)
    svg.append("</svg>")
    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    with open(args.output, "w") as f:
        f.write("\n".join(svg) + "\n")
    print(f"wrote {args.output}: {len(batches)} x {len(masks)} panels, {', '.join(impls)}")


def attention_subtitle(joined):
    parts = ["12 heads of 64, float32, 2 threads, S = T", joined.get("machine", "")]
    if joined.get("generated"):
        parts.append(f"measured {joined['generated'][:10]}")
    return "; ".join(p for p in parts if p)


if __name__ == "__main__":
    main()
