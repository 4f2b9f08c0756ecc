"""The InsightFlow report's three charts, drawn offline to small PNGs with matplotlib's Agg renderer.

matplotlib rather than a browser-based library: Agg rasterises in-process with the fonts matplotlib
ships (DejaVu Sans), so nothing is fetched at install or run time and no browser or JavaScript
engine is needed on a worker. Figures are built with the object API (``Figure`` + ``FigureCanvasAgg``)
so this module never touches pyplot's global backend or figure registry (safe inside a flow process
that also serves other tasks). tasks/core/charts.py encodes them (a 128-colour palette PNG, under
150 KB each) the same way as the football report's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from matplotlib.figure import Figure
from matplotlib.patches import Patch

from tasks.core.charts import figure_png

DPI = 100
# Okabe-Ito: distinguishable with the common colour-vision deficiencies.
COLOURS = {
    "sales": "#000000",
    "volume": "#0072B2",
    "ron95": "#009E73",
    "ron97": "#CC79A7",
    "diesel": "#D55E00",
    "up": "#009E73",
    "down": "#D55E00",
    "neutral": "#B0B0B0",
    "ron97_bar": "#56B4E9",
}
DIESEL_FLOAT_DATE = date(2024, 6, 10)
DIESEL_FLOAT_LABEL = "10 Jun 2024: Peninsular diesel\nsubsidy targeted"


@dataclass(frozen=True)
class IndexSeries:
    """One line of chart 1: values by month, already indexed to 100 at the base month."""

    label: str
    colour_key: str
    points: list[tuple[date, float]]
    dashed: bool = False


def _png(fig: Figure) -> bytes:
    return figure_png(fig, f"chart {fig.get_label()!r}")


def _figure(label: str, width: float, height: float, title: str, source: str) -> tuple[Figure, object]:
    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    fig.set_label(label)
    ax = fig.add_subplot()
    # A figure title, not an axes title: long group names on the y axis would push an axes title off the right edge.
    fig.suptitle(title, x=0.01, ha="left", fontsize=13, fontweight="bold")
    # supxlabel, unlike fig.text, gets room from the constrained layout: the source line never overlaps the axis label.
    fig.supxlabel(f"Source: {source}", x=0.01, ha="left", fontsize=8, color="#555555")
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    return fig, ax


def prices_vs_sales_chart(series: Sequence[IndexSeries], base_month: date, source: str) -> bytes:
    """Chart 1: headline sales value and volume against average pump prices, all indexed to 100 at ``base_month``."""
    fig, ax = _figure("prices-vs-sales", 9, 5.4, "Retail & wholesale trade vs pump prices, indexed", source)
    for line in series:
        xs, ys = zip(*line.points, strict=True)
        ax.plot(
            xs,
            ys,
            label=line.label,
            color=COLOURS[line.colour_key],
            linewidth=1.8,
            linestyle="--" if line.dashed else "-",
        )
    ax.axhline(100, color="#888888", linewidth=0.8)
    ax.axvline(DIESEL_FLOAT_DATE, color=COLOURS["diesel"], linewidth=1, linestyle=":")
    top = ax.get_ylim()[1]
    ax.annotate(
        DIESEL_FLOAT_LABEL,
        xy=(DIESEL_FLOAT_DATE, top),
        xytext=(-6, -4),
        textcoords="offset points",
        ha="right",
        va="top",
        fontsize=8.5,
        color=COLOURS["diesel"],
    )
    ax.set_ylabel(f"Index ({base_month:%b %Y} = 100)")
    ax.set_xlabel(
        "Month (monthly averages of weekly prices; sales in RM million, volume 2015 = 100 before indexing)",
        fontsize=8.5,
    )
    ax.grid(axis="y", color="#E5E5E5")
    ax.legend(loc="upper left", fontsize=9, frameon=False)
    return _png(fig)


def correlation_chart(rows: Sequence[dict], source: str) -> bytes:
    """Chart 2: per MSIC group, r of monthly sales growth with the diesel and RON97 price change, sorted by diesel r.

    ``rows``: dicts with ``label``, ``diesel_r``, ``ron97_r`` (either may be None) and ``n``.
    """
    ordered = sorted(rows, key=lambda r: (r["diesel_r"] is None, r["diesel_r"] if r["diesel_r"] is not None else 0))
    height = max(4.5, 1.4 + 0.36 * len(ordered))
    fig, ax = _figure(
        "correlations", 9, height, "Same-month correlation: sales growth vs pump price change, by MSIC group", source
    )
    positions = range(len(ordered))
    bar = 0.38
    diesel = [r["diesel_r"] or 0.0 for r in ordered]
    ron97 = [r["ron97_r"] or 0.0 for r in ordered]
    ax.barh([p + bar / 2 for p in positions], diesel, height=bar, color=COLOURS["diesel"], label="Diesel")
    ax.barh([p - bar / 2 for p in positions], ron97, height=bar, color=COLOURS["ron97_bar"], label="RON97")
    ax.set_yticks(list(positions), [f"{r['label']}  (n={r['n']})" for r in ordered], fontsize=8.5)
    ax.axvline(0, color="#444444", linewidth=0.8)
    reach = max([abs(v) for v in diesel + ron97] + [0.1]) * 1.2
    ax.set_xlim(-reach, reach)
    ax.set_xlabel("Pearson r (−1 to 1): month-on-month sales growth (%) vs price change (%)")
    ax.grid(axis="x", color="#E5E5E5")
    ax.legend(loc="lower right", fontsize=9, frameon=False, title="Price", title_fontsize=9)
    return _png(fig)


def yoy_growth_chart(rows: Sequence[dict], month: date, source: str, highlight: int = 5) -> bytes:
    """Chart 3: year-on-year sales growth by MSIC group in ``month``; the top and bottom ``highlight`` coloured.

    ``rows``: dicts with ``label`` and ``growth_pct``, any order.
    """
    ordered = sorted(rows, key=lambda r: r["growth_pct"])
    height = max(4.5, 1.4 + 0.3 * len(ordered))
    fig, ax = _figure(
        "yoy-growth",
        9,
        height,
        f"Sales growth by MSIC group, {month:%B %Y} vs {month.replace(year=month.year - 1):%B %Y}",
        source,
    )
    count = len(ordered)
    colours = [
        COLOURS["down"] if i < highlight else COLOURS["up"] if i >= count - highlight else COLOURS["neutral"]
        for i in range(count)
    ]
    values = [r["growth_pct"] for r in ordered]
    ax.barh(range(count), values, color=colours, height=0.7)
    ax.set_yticks(list(range(count)), [r["label"] for r in ordered], fontsize=8.5)
    for i, value in enumerate(values):
        ax.annotate(
            f"{value:+.1f}%",
            xy=(value, i),
            xytext=(3 if value >= 0 else -3, 0),
            textcoords="offset points",
            ha="left" if value >= 0 else "right",
            va="center",
            fontsize=8,
        )
    low, high = min([*values, 0.0]), max([*values, 0.0])
    pad = (high - low) * 0.12 or 1.0
    ax.set_xlim(low - pad if low < 0 else 0, high + pad)
    ax.axvline(0, color="#444444", linewidth=0.8)
    ax.set_xlabel("Year-on-year change in sales (RM, current prices), %")
    ax.grid(axis="x", color="#E5E5E5")
    ax.legend(
        handles=[
            Patch(color=COLOURS["up"], label=f"Top {highlight}"),
            Patch(color=COLOURS["down"], label=f"Bottom {highlight}"),
        ],
        loc="lower right",
        fontsize=9,
        frameon=False,
    )
    return _png(fig)
