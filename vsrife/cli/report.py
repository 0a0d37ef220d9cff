"""Self-contained HTML for ``vsrife eval`` results: matplotlib plots embedded as base64 PNG, tables, skip counts."""

from __future__ import annotations

import base64
import html
import io
import math
from typing import Any

__all__ = ["render_html"]

_CSS = """
body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}
th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}.best{font-weight:bold}
.skip{color:#999}img{max-width:100%}code{background:#f6f6f6;padding:0 3px}
"""


def _png(fig: Any) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _plots(results: dict[str, Any]) -> list[tuple[str, str]]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    methods = results["methods"]
    triplets = results["triplets"]
    fig, ax = plt.subplots(figsize=(11, 4.5))
    for m in methods:  # NaN at skipped triplets breaks the lines there
        ax.plot(
            [t["k"] for t in triplets],
            [t["scores"][m]["psnr"] if t["kind"] == "ok" else math.nan for t in triplets],
            marker="o",
            ms=3,
            lw=1.2,
            label=m,
            ls="-" if m.startswith("rife-") else "--",
        )
    for t in results["triplets"]:
        if t["kind"] != "ok":
            ax.axvline(t["k"], color="red" if t["kind"] == "cut" else "grey", alpha=0.25, lw=3)
    ax.set_xlabel("triplet (frame k; k+1 predicted from k and k+2)")
    ax.set_ylabel("PSNR (dB)")
    ax.set_title("PSNR per triplet (red: skipped as cut, grey: skipped as near-duplicate)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, ncol=min(len(methods), 4))
    per_triplet = _png(fig)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(7, 3.2))
    margins = [results["margins_over_average"][m]["psnr"] for m in methods]
    colors = ["#2a7" if v >= 0 else "#c44" for v in margins]
    ax.barh(methods, margins, color=colors)
    ax.axvline(0, color="black", lw=0.8)
    ax.set_xlabel("mean PSNR margin over the neighbour average (dB)")
    ax.invert_yaxis()
    ax.grid(axis="x", alpha=0.3)
    margin_plot = _png(fig)
    plt.close(fig)
    return [("PSNR per triplet", per_triplet), ("Margin over the average", margin_plot)]


def _fmt(v: float, digits: int, sign: bool = False) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    return f"{v:+.{digits}f}" if sign else f"{v:.{digits}f}"


def render_html(results: dict[str, Any]) -> str:
    """The report page for ``results`` (the dict :func:`vsrife.cli.evaluate.evaluate` returns)."""
    e = html.escape
    methods = results["methods"]
    best = max(methods, key=lambda m: results["means"][m]["psnr"])
    rows = []
    for m in methods:
        mean, margin = results["means"][m], results["margins_over_average"][m]
        cls = ' class="best"' if m == best else ""
        ms = results["seconds_per_frame"].get(m, 0.0) * 1000
        rows.append(
            f"<tr{cls}><td>{e(m)}</td><td>{_fmt(mean['psnr'], 2)}</td><td>{_fmt(mean['ssim'], 4)}</td>"
            f"<td>{_fmt(margin['psnr'], 2, True)}</td><td>{_fmt(margin['ssim'], 4, True)}</td>"
            f"<td>{ms:.1f}</td></tr>"
        )
    head = "".join(f"<th>{e(m)}</th>" for m in methods)
    trows = []
    for t in results["triplets"]:
        if t["kind"] != "ok":
            trows.append(
                f'<tr class="skip"><td>{t["k"]}</td><td>{t["neighbours_psnr"]:.1f}</td>'
                f'<td colspan="{len(methods)}">skipped: {e(t["kind"])}</td></tr>'
            )
            continue
        cells = "".join(f"<td>{t['scores'][m]['psnr']:.2f} / {t['scores'][m]['ssim']:.3f}</td>" for m in methods)
        trows.append(f"<tr><td>{t['k']}</td><td>{t['neighbours_psnr']:.1f}</td>{cells}</tr>")
    plots = "".join(f"<h2>{e(title)}</h2><img alt='{e(title)}' src='{src}'>" for title, src in _plots(results))
    th = results["thresholds"]
    w, h = results["size"]
    # MVTools takes YUV: RGB video gets a lossless YUV444P16 copy (see vsrife.cli.evaluate._mvtools_source)
    mv_input = f" (motion search on {e(results['mvtools_input'])})" if results.get("mvtools_input") else ""
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>vsrife eval: {e(results["video"])}</title>
<style>{_CSS}</style></head><body>
<h1>Interpolation quality: {e(results["video"])}</h1>
<p>{w}x{h} at {e(results["fps"])} fps; frames {results["start"]}..{results["end"] - 1}, a triplet every
{results["step"]} frames; device {e(results["device"])}. Frame k+1 is predicted from frames k and k+2 (t = 1/2)
and compared with the real frame (8-bit RGB; PSNR of identical frames is shown as {th["psnr_cap"]:.0f} dB).</p>
<p><b>{results["evaluated"]}</b> triplets evaluated; skipped <b>{results["skipped"]["duplicate"]}</b> with
near-duplicate neighbours (PSNR &gt; {th["duplicate_db"]:.0f} dB) and <b>{results["skipped"]["cut"]}</b> across a
cut (PSNR &lt; {th["cut_db"]:.0f} dB).</p>
<h2>Means</h2>
<table><tr><th>method</th><th>PSNR (dB)</th><th>SSIM</th><th>PSNR vs average</th><th>SSIM vs average</th>
<th>ms / frame</th></tr>{"".join(rows)}</table>
<p>Baselines: <code>average</code> = mean of the two neighbours, <code>repeat</code> = frame k,
<code>mvtools</code> = MVTools FlowFPS at 2x{mv_input}.</p>
{plots}
<h2>All triplets (PSNR dB / SSIM)</h2>
<table><tr><th>k</th><th>neighbours dB</th>{head}</tr>{"".join(trows)}</table>
</body></html>
"""
