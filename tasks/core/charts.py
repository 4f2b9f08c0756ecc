"""Charts as small PNGs: how both reports turn a matplotlib figure into bytes and into a data URI.

Each PNG is reduced to a 128-colour palette: the charts are flat colours and anti-aliased text, and the
palette keeps an image well under the 150 KB the Prefect API database should have to store per image
(an artifact embeds it as a ``data:`` URI; measured sizes in the README). A chart over the budget is a
bug (too many series, a wrong figure size), so it raises instead of bloating every artifact.
"""

from __future__ import annotations

import base64
import io
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from matplotlib.figure import Figure

MAX_PNG_BYTES = 150_000
PALETTE_COLOURS = 128


def figure_png(fig: Figure, what: str, max_bytes: int = MAX_PNG_BYTES) -> bytes:
    """``fig`` rendered offline (Agg) to a palette PNG with no timestamped metadata; raise if over ``max_bytes``."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from PIL import Image

    FigureCanvasAgg(fig)  # the object API: pyplot's global backend and figure registry stay untouched
    raw = io.BytesIO()
    fig.savefig(raw, format="png", metadata={"Software": None})
    raw.seek(0)
    with Image.open(raw) as image:
        palette = image.convert("RGB").quantize(colors=PALETTE_COLOURS, method=Image.Quantize.MEDIANCUT)
    out = io.BytesIO()
    palette.save(out, format="PNG", optimize=True)
    data = out.getvalue()
    if len(data) > max_bytes:
        raise ValueError(f"{what} is {len(data)} bytes, over the {max_bytes}-byte budget")
    return data


def png_data_uri(png: bytes) -> str:
    """A PNG as a ``data:`` URI, the form markdown and HTML artifacts embed."""
    return "data:image/png;base64," + base64.b64encode(png).decode()
