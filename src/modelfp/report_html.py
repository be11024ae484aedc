"""The visual report of `modelfp identify --report out.html`: one self-contained HTML file.

Nothing outside the file is needed to view it (no scripts, styles, fonts or images fetched): the
thumbnails are inlined as base64 PNG data URIs and the map is inline SVG. It shows, per gallery
model and for "unknown", a grid of the images attributed to it with their scores (best first), each
captioned with its path relative to the input it was found through (`vae/00025.png` for
`identify q200/`) and shown at THUMB pixels (small images enlarged without smoothing, so their
pixels stay visible; large ones shrunk), the images that could not be used, a summary per folder
(per sub-folder when a folder of folders is given), and a 2-D map: the first two principal
components (scikit-learn PCA) of the gallery models' fingerprints and the queries'.

Reading order: constants and the item record, thumbnails, the map, the page.
"""

from __future__ import annotations

import base64
import html
import io
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from .attributor import Identification, summarize
from .cliutil import counted

THUMB = 128                     # thumbnail side shown, pixels (larger images shrunk to fit in the PNG,
                                # smaller ones enlarged by the browser without smoothing: `pixelated`)
MAP_W, MAP_H, MAP_PAD, LABEL_ROOM = 720, 460, 36, 90     # LABEL_ROOM: right of the plot, for labels
# Tableau 10: distinct on screen and in print; models beyond ten reuse colours (labels tell them apart)
PALETTE = ("#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7",
           "#9c755f", "#bab0ac")
UNKNOWN_COLOUR = "#555555"
STYLE = """
body{font-family:system-ui,sans-serif;margin:24px;color:#222;background:#fff}
h1{font-size:22px}h2{font-size:18px;margin-top:28px;border-bottom:1px solid #ccc}
table{border-collapse:collapse;max-width:100%%}
td,th{padding:3px 10px;border-bottom:1px solid #eee;text-align:left;overflow-wrap:anywhere}
.grid{display:flex;flex-wrap:wrap;gap:10px}
figure{margin:0;width:%(box)dpx;font-size:11px;text-align:center}
figure img{display:block;margin:0 auto 3px;border:1px solid #bbb;width:%(thumb)dpx;height:%(thumb)dpx;
object-fit:contain;image-rendering:pixelated;background:#f4f4f4}
figcaption{overflow-wrap:anywhere}.swatch{display:inline-block;width:12px;height:12px;margin-right:6px}
.muted{color:#777}
""" % {"thumb": THUMB, "box": THUMB + 16}     # object-fit + pixelated: enlarged to THUMB, no smoothing


@dataclass
class ReportItem:
    """One query of the report: its answer, its thumbnail (PNG bytes) and unit fingerprint (None
    for an image that could not be used)."""
    identification: Identification
    thumbnail: bytes | None = None
    fingerprint: torch.Tensor | None = None


def thumbnail(image: torch.Tensor, size: int = THUMB) -> bytes:
    """PNG bytes of a uint8 (3,H,W) image shrunk to fit size x size (aspect kept; never enlarged
    here: the page enlarges small ones without smoothing)."""
    im = Image.fromarray(image.permute(1, 2, 0).contiguous().numpy())
    im.thumbnail((size, size))
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return buf.getvalue()


def colours(names: list[str]) -> dict[str, str]:
    return {**{n: PALETTE[i % len(PALETTE)] for i, n in enumerate(names)}, "unknown": UNKNOWN_COLOUR}


# ---------------------------------------------------------------------------------------------
# The map

def pca_2d(gallery: np.ndarray, queries: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The first two principal components of the gallery fingerprints and the queries together
    (fitted on both): (M, 2) and (N, 2). Fewer than two points or dimensions: what there is, padded
    with zeros."""
    from sklearn.decomposition import PCA
    points = np.concatenate([gallery, queries]).astype(np.float64)
    n_comp = min(2, len(points), points.shape[1]) if len(points) > 1 else 0
    xy = np.zeros((len(points), 2))
    if n_comp:
        xy[:, :n_comp] = PCA(n_components=n_comp, random_state=0).fit_transform(points)
    return xy[:len(gallery)], xy[len(gallery):]


def map_svg(names: list[str], gallery_xy: np.ndarray, items: list[ReportItem], query_xy: np.ndarray) -> str:
    """Inline SVG: queries as dots in the colour of their answer (grey: unknown), gallery models as
    labelled diamonds, each with a tooltip."""
    col = colours(names)
    allxy = np.concatenate([gallery_xy, query_xy]) if len(query_xy) else gallery_xy
    lo, hi = allxy.min(0), allxy.max(0)
    span = np.where(hi - lo > 1e-12, hi - lo, 1.0)

    def at(p):
        x = MAP_PAD + (p[0] - lo[0]) / span[0] * (MAP_W - 2 * MAP_PAD - LABEL_ROOM)
        y = MAP_H - MAP_PAD - (p[1] - lo[1]) / span[1] * (MAP_H - 2 * MAP_PAD)
        return x, y

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{MAP_W}" height="{MAP_H}" '
           f'viewBox="0 0 {MAP_W} {MAP_H}" role="img" aria-label="PCA map of the fingerprints">',
           f'<rect width="{MAP_W}" height="{MAP_H}" fill="#fafafa" stroke="#ccc"/>',
           f'<text x="{MAP_W / 2}" y="{MAP_H - 8}" text-anchor="middle" font-size="12" fill="#777">PC 1</text>',
           f'<text x="12" y="{MAP_H / 2}" font-size="12" fill="#777" '
           f'transform="rotate(-90 12 {MAP_H / 2})" text-anchor="middle">PC 2</text>']
    for item, p in zip(items, query_xy):
        r = item.identification
        x, y = at(p)
        out.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="4" fill="{col.get(r.model, UNKNOWN_COLOUR)}" '
                   f'fill-opacity="0.75"><title>{html.escape(r.path)}: {html.escape(r.model)} '
                   f'{r.score:.3f}</title></circle>')
    for name, p in zip(names, gallery_xy):
        x, y = at(p)
        out.append(f'<path d="M{x:.1f},{y - 9:.1f} l9,9 l-9,9 l-9,-9 z" fill="{col[name]}" stroke="#000" '
                   f'stroke-width="1.5"><title>gallery model {html.escape(name)}</title></path>'
                   f'<text x="{x + 11:.1f}" y="{y + 4:.1f}" font-size="13" font-weight="bold">'
                   f'{html.escape(name)}</text>')
    out.append("</svg>")
    return "\n".join(out)


# ---------------------------------------------------------------------------------------------
# The page

def _figure(item: ReportItem) -> str:
    r = item.identification
    src = "data:image/png;base64," + base64.b64encode(item.thumbnail).decode("ascii")
    extra = f"<br><span class=muted>nearest {html.escape(r.nearest)}</span>" if r.model == "unknown" else ""
    extra += f"<br><span class=muted>{html.escape(r.note)}</span>" if r.note else ""
    name = html.escape(r.name or os.path.basename(r.path))
    return (f'<figure title="{html.escape(r.path)}"><img src="{src}" alt="{name}">'
            f"<figcaption>{name}<br><b>{r.score:.4f}</b>{extra}</figcaption></figure>")


def render(items: list[ReportItem], names: list[str], prints: torch.Tensor, *, gallery: str, extractor: str,
           threshold: float, unknown_rule: str | None = None) -> str:
    """The report page (HTML text) of identification `items` against the gallery models `names`
    with unit fingerprints `prints` (M, dim); `unknown_rule`: what makes an answer unknown (default:
    under `threshold`)."""
    col = colours(names)
    answered = [it for it in items if it.identification.error is None]
    failed = [it.identification for it in items if it.identification.error is not None]
    esc = html.escape
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
             f"<title>modelfp identify: {counted(len(items), 'image')}</title><style>{STYLE}</style></head><body>",
             "<h1>Which model made each image</h1>",
             f"<p>{counted(len(items), 'image')} against {counted(len(names), 'gallery model')} "
             f"({esc(gallery)}), extractor {esc(extractor)}. Score: the cosine similarity of fingerprints; "
             + (f"{esc(unknown_rule)}.</p>" if unknown_rule else
                f"below the threshold {threshold:.4f} the answer is <i>unknown</i>.</p>"),
             "<h2>Summary per folder</h2>",
             "<table><tr><th>folder</th><th>images</th><th>answers</th></tr>"]
    for s in summarize(it.identification for it in items):
        answers = [f"{esc(m)} {n}" for m, n in s.models.items()] + [f"unknown {s.unknown}"] * bool(s.unknown) \
            + [f"could not be used {s.failed}"] * bool(s.failed)
        parts.append(f"<tr><td>{esc(s.folder)}</td><td>{s.images}</td><td>{', '.join(answers)}</td></tr>")
    parts.append("</table>")
    parts.append("<h2>Map of the fingerprints (PCA)</h2>")
    if answered:
        g_xy, q_xy = pca_2d(prints.float().cpu().numpy(),
                            torch.stack([it.fingerprint for it in answered]).float().cpu().numpy())
        legend = " ".join(f'<span class=swatch style="background:{col[n]}"></span>{esc(n)}'
                          for n in [*names, "unknown"])
        parts += [f"<p class=muted>Diamonds: gallery models; dots: the images, coloured by their answer. "
                  f"{legend}</p>", map_svg(names, g_xy, answered, q_xy)]
    else:
        parts.append("<p class=muted>No image could be used: nothing to map.</p>")
    for name in [*names, "unknown"]:
        group = sorted((it for it in answered if it.identification.model == name),
                       key=lambda it: -it.identification.score)
        parts.append(f'<h2 id="model-{esc(name)}"><span class=swatch style="background:{col[name]}"></span>'
                     f"{esc(name)}: {counted(len(group), 'image')}</h2>")
        parts.append('<div class="grid">' + "".join(_figure(it) for it in group) + "</div>"
                     if group else "<p class=muted>none</p>")
    if failed:
        parts.append(f"<h2>Could not be used: {len(failed)}</h2><table>")
        parts += [f"<tr><td>{esc(r.path)}</td><td>{esc(r.error)}</td></tr>" for r in failed]
        parts.append("</table>")
    parts.append("</body></html>")
    return "\n".join(parts)


def write(text: str, path) -> None:
    """Write the page atomically (a temporary name in the same folder, then a rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
