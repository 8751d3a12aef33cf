"""The pipeline report: ``report.md`` and a self-contained ``report.html`` (plots inline).

One table in the seed READMEs' form (model, batch, precision, top-1, top-5, images/s,
latency p50/p99, agreement with the references), the spec and AIPP config used, a latency
histogram, top-1 per class, the most confused class pairs, and thumbnails of misclassified
images with their predicted and true labels. A run of a few images (a handful of photos)
is also listed image by image: a thumbnail, the true class, every row's top-1 class and its
probability, and whether each row names what the fp32 ONNX model and eager torch name.
"""

from __future__ import annotations

import base64
import html
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from infer_kit.fsutil import write_text_atomic
from infer_kit.pipeline.rows import REFERENCE_ROW, TORCH_ROW, Row


@dataclass(frozen=True)
class Misclassified:
    image: Path | None
    key: str
    true: str
    predicted: str


@dataclass(frozen=True)
class ImageRow:
    """One image: its true class and, per row, the top-1 (class name, probability, index)."""

    image: Path | None
    key: str
    true: str
    label: int | None
    predicted: dict[str, tuple[str, float, int]]

    def agreement(self, reference: str) -> str:
        """Which rows name another class than ``reference`` does ("" when the reference did not run)."""
        if reference not in self.predicted:
            return ""
        want = self.predicted[reference][2]
        differ = [row for row, (_, _, index) in self.predicted.items() if row != reference and index != want]
        return "all rows" if not differ else "not " + ", ".join(differ)


@dataclass(frozen=True)
class ReportData:
    title: str
    model_label: str
    rows: list[Row]
    spec: str
    aipp_config: str | None
    main_row: str
    headline: list[str] = field(default_factory=list)
    per_class: list[tuple[str, float, int]] = field(default_factory=list)  # (class, top-1 %, images)
    confusions: list[tuple[str, str, int]] = field(default_factory=list)  # (true, predicted, count)
    misclassified: list[Misclassified] = field(default_factory=list)
    images: list[ImageRow] = field(default_factory=list)  # only for runs of a few images
    stages: list[tuple[str, str, float]] = field(default_factory=list)  # (stage, "ran"|"cached", seconds)
    provenance: dict[str, Any] = field(default_factory=dict)
    layers: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # (row, per-layer comparison JSON)
    agreement_gate: float | None = None  # percent


TABLE_HEADER = ("model", "backend", "batch", "precision", "top-1 %", "top-5 %", "Δ top-1", "Δ top-5", "agree %",
                "images/s", "p50 ms", "p99 ms")
TORCH_HEADER = "agree torch %"


def table_header(data: ReportData) -> tuple[str, ...]:
    with_torch = any(row.agreement_torch is not None for row in data.rows)
    return TABLE_HEADER + ((TORCH_HEADER,) if with_torch else ())


def _delta(value: float | None) -> str:
    return "-" if value is None else f"{value:+.2f}"


def table_rows(data: ReportData) -> list[tuple[str, ...]]:
    with_torch = len(table_header(data)) > len(TABLE_HEADER)
    out = []
    for row in data.rows:
        agree = "-" if row.agreement is None else f"{row.agreement:.2f}"
        top5 = "-" if row.top5 is None else f"{row.top5:.2f}"
        cells = (data.model_label, row.backend, str(row.batch), row.precision, f"{row.top1 or 0.0:.2f}", top5,
                 _delta(row.delta_top1), _delta(row.delta_top5), agree, f"{row.images_per_s:.1f}",
                 f"{row.latency_p50_ms:.2f}", f"{row.latency_p99_ms:.2f}")
        if with_torch:
            cells += ("-" if row.agreement_torch is None else f"{row.agreement_torch:.2f}",)
        out.append(cells)
    return out


def image_columns(data: ReportData) -> list[str]:
    """The per-image table's row columns, in the results table's order."""
    return [row.name for row in data.rows if any(row.name in image.predicted for image in data.images)]


def _image_cells(image: ImageRow, columns: list[str]) -> list[str]:
    cells = [image.key, image.true]
    for column in columns:
        found = image.predicted.get(column)
        mark = "" if found is None or image.label is None else (" ✓" if found[2] == image.label else " ✗")
        cells.append("-" if found is None else f"{found[0]} ({found[1]:.3f}){mark}")
    cells += [image.agreement(REFERENCE_ROW) or "-", image.agreement(TORCH_ROW) or "-"]
    return cells


IMAGE_HEADER_END = ("same top-1 as fp32 ONNX", "same top-1 as torch")


def range_lines(data: ReportData) -> list[tuple[str, str, bool]]:
    """(row, range check summary, warns) for the rows whose precision mode was checked."""
    return [(row.name, row.range_check, row.range_warning) for row in data.rows if row.range_check]


def layer_lines(name: str, layers: dict[str, Any], shown: int = 5) -> list[str]:
    """Markdown lines for one per-layer comparison: the first diverging layer and the worst ones."""
    first = layers.get("first_divergence")
    lines = [f"first diverging layer: `{first['node']}` ({first['op_type']}) -> `{first['tensor']}`, "
             f"rel L2 {first['rel_l2']:.3g}" if first else "no layer diverges (no error jump)", ""]
    worst = sorted(layers.get("layers", []), key=lambda d: -d["rel_l2"])[:shown]
    lines += ["| tensor | op | cosine | max abs | rel L2 |", "|---|---|---:|---:|---:|"]
    lines += [f"| `{d['tensor']}` | {d['op_type']} | {d['cosine']:.6f} | {d['max_abs']:.3g} | {d['rel_l2']:.3g} |"
              for d in worst]
    return lines


def write_report(data: ReportData, md_path: Path, html_path: Path) -> None:
    """Write the Markdown and the self-contained HTML report."""
    write_text_atomic(md_path, render_markdown(data))
    write_text_atomic(html_path, render_html(data, _figures(data)))


def render_markdown(data: ReportData) -> str:
    lines = [f"# {data.title}", ""] + [f"- {h}" for h in data.headline] + ([""] if data.headline else [])
    header = table_header(data)
    lines += ["| " + " | ".join(header) + " |",
             "|" + "|".join(":---:" for _ in header) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in table_rows(data)]
    lines += ["", f"Preprocessing: {data.spec}", ""]
    if data.images:
        columns = image_columns(data)
        names = ["image", "true class", *(f"{c}: top-1 (p)" for c in columns), *IMAGE_HEADER_END]
        lines += ["## Image by image", "", "| " + " | ".join(names) + " |", "|" + "|".join("---" for _ in names) + "|"]
        lines += ["| " + " | ".join(_image_cells(image, columns)) + " |" for image in data.images]
        lines.append("")
    if data.aipp_config:
        lines += ["AIPP config:", "", "```", data.aipp_config.rstrip(), "```", ""]
    checks = range_lines(data)
    if checks:
        lines += ["## Range check (float16 / bfloat16)", ""]
        lines += [f"- {'**warning** ' if warns else ''}{name}: {text}" for name, text, warns in checks]
        lines.append("")
    for name, layers in data.layers:
        lines += [f"## Per-layer error: {name} (agreement below the gate)", ""] + layer_lines(name, layers) + [""]
    if data.per_class:
        lines += [f"## Top-1 per class ({data.main_row})", "", "| class | top-1 % | images |", "|---|---:|---:|"]
        lines += [f"| {name} | {acc:.2f} | {count} |" for name, acc, count in data.per_class]
        lines.append("")
    if data.confusions:
        lines += ["## Most confused pairs", "", "| true | predicted | images |", "|---|---|---:|"]
        lines += [f"| {t} | {p} | {n} |" for t, p, n in data.confusions]
        lines.append("")
    if data.misclassified:
        lines += ["## Misclassified examples", ""]
        lines += [f"- `{m.key}`: true **{m.true}**, predicted **{m.predicted}**" for m in data.misclassified]
        lines.append("")
    if data.stages:
        lines += ["## Stages", "", "| stage | status | seconds |", "|---|---|---:|"]
        lines += [f"| {s} | {status} | {sec:.1f} |" for s, status, sec in data.stages]
        lines.append("")
    if data.provenance:
        lines += ["## Provenance", ""] + [f"- {k}: `{v}`" for k, v in data.provenance.items()] + [""]
    return "\n".join(lines)


def render_html(data: ReportData, figures: dict[str, str]) -> str:
    esc = html.escape
    head = "".join(f"<th>{esc(h)}</th>" for h in table_header(data))
    body = "".join("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in row) + "</tr>" for row in table_rows(data))
    parts = [
        "<!DOCTYPE html>", "<html lang=\"en\"><head><meta charset=\"utf-8\">",
        f"<title>{esc(data.title)}</title>", f"<style>{_CSS}</style></head><body>",
        f"<h1>{esc(data.title)}</h1>",
        "<ul class=\"headline\">" + "".join(f"<li>{esc(h)}</li>" for h in data.headline) + "</ul>",
        f"<table class=\"results\"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>",
        f"<p class=\"spec\"><b>Preprocessing</b>: {esc(data.spec)}</p>",
    ]
    if data.aipp_config:
        parts.append(f"<details><summary>AIPP config</summary><pre>{esc(data.aipp_config)}</pre></details>")
    if data.images:
        parts.append(_image_table_html(data))
    checks = range_lines(data)
    if checks:
        warn = ' class="warn"'
        items = "".join(f"<li{warn if warns else ''}>{esc(name)}: {esc(text)}</li>" for name, text, warns in checks)
        parts.append(f"<h2>Range check (float16 / bfloat16)</h2><ul class=\"range\">{items}</ul>")
    captions = [(f"layers_{name}", f"Per-layer error of {name} against the fp32 model (agreement below the gate)")
                for name, _ in data.layers]
    for key, caption in (("latency", "Latency per batch"), *captions,
                         ("per_class", f"Top-1 per class ({data.main_row})"),
                         ("misclassified", "Misclassified examples")):
        if key in figures:
            parts.append(f"<figure id=\"{key}\"><img alt=\"{esc(caption)}\" src=\"data:image/png;base64,"
                         f"{figures[key]}\"><figcaption>{esc(caption)}</figcaption></figure>")
    if data.confusions:
        rows = "".join(f"<tr><td>{esc(t)}</td><td>{esc(p)}</td><td>{n}</td></tr>" for t, p, n in data.confusions)
        parts.append("<h2>Most confused pairs</h2><table class=\"confusions\"><thead><tr><th>true</th>"
                     f"<th>predicted</th><th>images</th></tr></thead><tbody>{rows}</tbody></table>")
    if data.stages:
        rows = "".join(f"<tr><td>{esc(s)}</td><td>{esc(st)}</td><td>{sec:.1f}</td></tr>" for s, st, sec in data.stages)
        parts.append("<h2>Stages</h2><table class=\"stages\"><thead><tr><th>stage</th><th>status</th>"
                     f"<th>seconds</th></tr></thead><tbody>{rows}</tbody></table>")
    if data.provenance:
        items = "".join(f"<li>{esc(str(k))}: <code>{esc(str(v))}</code></li>" for k, v in data.provenance.items())
        parts.append(f"<h2>Provenance</h2><ul>{items}</ul>")
    parts.append("</body></html>")
    return "\n".join(parts)


def _image_table_html(data: ReportData) -> str:
    esc = html.escape
    columns = image_columns(data)
    names = ["photo", "image", "true class", *(f"{c}: top-1 (p)" for c in columns), *IMAGE_HEADER_END]
    rows = []
    for image in data.images:
        thumb = _thumbnail(image.image)
        photo = f"<img class=\"thumb\" alt=\"{esc(image.key)}\" src=\"data:image/png;base64,{thumb}\">" if thumb \
            else ""
        rows.append(f"<tr><td>{photo}</td>" + "".join(f"<td>{esc(c)}</td>" for c in _image_cells(image, columns))
                    + "</tr>")
    head = "".join(f"<th>{esc(n)}</th>" for n in names)
    return (f"<h2>Image by image</h2><table class=\"images\"><thead><tr>{head}</tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table>")


def _thumbnail(path: Path | None, side: int = 96) -> str | None:
    """A small PNG of the image, base64 (None when it cannot be read)."""
    if path is None or not path.is_file():
        return None
    from PIL import Image

    try:
        with Image.open(path) as image:
            small = image.convert("RGB")
            small.thumbnail((side, side))
            buffer = io.BytesIO()
            small.save(buffer, format="PNG")
    except OSError:
        return None
    return base64.b64encode(buffer.getvalue()).decode()


_CSS = (
    "body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222}"
    "table{border-collapse:collapse;margin:1em 0}th,td{border:1px solid #ccc;padding:4px 10px;text-align:right}"
    "th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}"
    "figure{margin:1.5em 0}figure img{max-width:100%}figcaption{color:#555;font-size:90%}"
    "pre{background:#f7f7f7;padding:1em;overflow:auto}li.warn{color:#a40000}"
    "table.images td{text-align:left;vertical-align:middle}img.thumb{display:block;max-height:96px}"
)


def _figures(data: ReportData) -> dict[str, str]:
    import matplotlib

    matplotlib.use("Agg")
    figures = {}
    if any(r.latencies_ms for r in data.rows):
        figures["latency"] = _latency_histogram(data.rows)
    for name, layers in data.layers:
        if layers.get("layers"):
            figures[f"layers_{name}"] = _layer_errors(name, layers)
    if data.per_class:
        figures["per_class"] = _per_class_bars(data.per_class)
    if any(m.image is not None and m.image.is_file() for m in data.misclassified):
        figures["misclassified"] = _thumbnails(data.misclassified)
    return figures


def _png(fig: Any) -> str:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode()


def _latency_histogram(rows: list[Row]) -> str:
    import matplotlib.pyplot as plt

    with_data = [r for r in rows if r.latencies_ms]
    fig, axes = plt.subplots(1, len(with_data), figsize=(4 * len(with_data), 3), squeeze=False)
    for ax, row in zip(axes[0], with_data, strict=True):
        ax.hist(row.latencies_ms, bins=min(40, max(5, len(row.latencies_ms) // 3)), color="#3b7dd8")
        ax.axvline(row.latency_p50_ms, color="k", linestyle="--", linewidth=1, label=f"p50 {row.latency_p50_ms:.2f}")
        ax.axvline(row.latency_p99_ms, color="r", linestyle=":", linewidth=1, label=f"p99 {row.latency_p99_ms:.2f}")
        ax.set_title(f"{row.name} (batch {row.batch})", fontsize=9)
        ax.set_xlabel("ms per batch")
        ax.legend(fontsize=7)
    return _png(fig)


def _layer_errors(name: str, layers: dict[str, Any]) -> str:
    """Relative L2 error of every matched tensor in graph order (log scale), the first divergence marked."""
    import matplotlib.pyplot as plt

    rows = layers["layers"]
    errors = [max(d["rel_l2"], 1e-9) for d in rows]
    fig, ax = plt.subplots(figsize=(max(6.0, 0.08 * len(rows)), 3.2))
    ax.semilogy(range(len(rows)), errors, marker=".", linewidth=1, color="#3b7dd8")
    first = layers.get("first_divergence")
    if first:
        index = next((i for i, d in enumerate(rows) if d["tensor"] == first["tensor"]), None)
        if index is not None:
            ax.axvline(index, color="r", linestyle="--", linewidth=1)
            ax.annotate(f"first divergence: {first['node']}", (index, errors[index]), fontsize=7, color="r",
                        xytext=(5, 5), textcoords="offset points")
    ax.set_xlabel("tensor (reference graph order)")
    ax.set_ylabel("relative L2 error")
    ax.set_title(f"{name}: per-layer error on {layers.get('samples')} image(s)", fontsize=9)
    return _png(fig)


def _per_class_bars(per_class: list[tuple[str, float, int]]) -> str:
    import matplotlib.pyplot as plt

    names = [n for n, _, _ in per_class]
    fig, ax = plt.subplots(figsize=(max(5, 0.45 * len(names)), 3.2))
    ax.bar(range(len(names)), [a for _, a, _ in per_class], color="#4c9a5f")
    ax.set_xticks(range(len(names)), names, rotation=60, ha="right", fontsize=7)
    ax.set_ylim(0, 100)
    ax.set_ylabel("top-1 %")
    return _png(fig)


def _thumbnails(items: list[Misclassified]) -> str:
    import matplotlib.pyplot as plt
    from PIL import Image

    shown = [m for m in items if m.image is not None and m.image.is_file()][:12]
    cols = min(6, len(shown))
    rows = (len(shown) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(2 * cols, 2.3 * rows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, item in zip(axes.ravel(), shown, strict=False):
        with Image.open(item.image) as image:
            ax.imshow(image.convert("RGB"))
        ax.set_title(f"true: {item.true}\npred: {item.predicted}", fontsize=7)
    return _png(fig)
