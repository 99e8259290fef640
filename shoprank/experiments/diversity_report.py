"""A diversity sweep written down: the table (screen and markdown) and the trade-off plot (PNG).

The plot puts NDCG@10 against intra-list diversity@10, one point per λ, one panel per sweep, with the
default rule's two thresholds (−1 % NDCG@10, +15 % ILD@10 against λ = 0) drawn as dashed lines.
matplotlib is imported only when a plot is written (Agg backend: no display needed).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from shoprank.evaluation.tables import markdown_table
from shoprank.experiments.diversity_sweep import MAX_NDCG_LOSS, MIN_ILD_GAIN, Choice, K, SweepResult, SweepRow

HEADERS = ("λ", f"NDCG@{K}", f"HR@{K}", f"ILD@{K}", f"category cov.@{K}", f"catalogue cov.@{K}", "novelty",
           "NDCG vs λ=0", "ILD vs λ=0")


def _change(value: float, base: float) -> str:
    if base <= 0:
        return "" if value == base else "n/a"
    return f"{value / base - 1:+.1%}".replace("-", "−").replace("%", " %")


def format_table(rows: Sequence[SweepRow]) -> str:
    """The rows as a markdown table, relative changes against the λ = 0 row (blank on that row)."""
    base = next((r for r in rows if r.lam == 0), rows[0])
    cells = [list(HEADERS)]
    for r in rows:
        same = r is base
        cells.append([f"{r.lam:g}", f"{r.ndcg:.4f}", f"{r.hr:.4f}", f"{r.ild:.4f}", f"{r.category_coverage:.4f}",
                      f"{r.catalogue_coverage:.4f}", f"{r.novelty:.3f}", "" if same else _change(r.ndcg, base.ndcg),
                      "" if same else _change(r.ild, base.ild)])
    return markdown_table(cells[0], cells[1:])


def describe(result: SweepResult) -> str:
    """One paragraph: what was measured, on what, and how λ = 0 compares with the ranker."""
    text = (f"Shop `{result.shop}`, {result.task} bundle `{result.bundle}`: a fixed random sample (seed "
            f"{result.seed}) of {result.sampled:,} of {result.available:,} {result.unit}, {result.items:,} items; "
            f"the ranker's first {result.over_fetch * K} re-ranked with the shop's rules at each λ, exploration off, "
            f"the first {K} measured. The ranker's own first {K} (no re-ranking) score NDCG@{K} "
            f"{result.ranker_ndcg:.4f}")
    if result.harness_ndcg is not None:
        text += f" (full-catalogue rank with ties averaged, as the evaluation harness: {result.harness_ndcg:.4f})"
    return text + f". {result.seconds:.0f} s."


def write_table(result: SweepResult, choice: Choice, path: str | Path, command: str | None = None) -> Path:
    """A markdown file: the description, the command that made it, the table and the default picked."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    parts = [f"# Diversity sweep: {result.task}, shop {result.shop}", "", describe(result), ""]
    if command:
        parts += ["```", command, "```", ""]
    parts += [format_table(result.rows), "",
              f"Default (≤ {MAX_NDCG_LOSS:.0%} NDCG@{K} lost, ≥ {MIN_ILD_GAIN:.0%} ILD@{K} gained): "
              + (f"**λ = {choice.lam:g}**: " if choice.lam is not None else "**none qualifies**: ") + choice.reason, ""]
    path.write_text("\n".join(parts), encoding="utf-8")
    return path


def plot_title(result: SweepResult) -> str:
    return f"{result.task}: {result.shop} ({result.sampled:,} {result.unit})"


def write_plot(curves: Mapping[str, Sequence[SweepRow]], path: str | Path) -> Path:
    """NDCG@10 against ILD@10, one point per λ, a panel per entry of ``curves`` (title -> rows)."""
    if not curves:
        raise ValueError("nothing to plot: no sweep was given")
    try:
        import matplotlib
    except ModuleNotFoundError:
        raise ModuleNotFoundError("writing the plot needs matplotlib: pip install matplotlib") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, axes = plt.subplots(1, len(curves), figsize=(6 * len(curves), 4.5), squeeze=False)
    try:
        for ax, (title, rows) in zip(axes[0], curves.items(), strict=True):
            x, y = [r.ild for r in rows], [r.ndcg for r in rows]
            ax.plot(x, y, "o-")
            for r, xi, yi in zip(rows, x, y, strict=True):
                ax.annotate(f"λ={r.lam:g}", (xi, yi), textcoords="offset points", xytext=(5, 5), fontsize=8)
            base = next((r for r in rows if r.lam == 0), rows[0])
            ax.axhline((1 - MAX_NDCG_LOSS) * base.ndcg, color="grey", ls="--", lw=0.8,
                       label=f"-{MAX_NDCG_LOSS:.0%} NDCG@{K}")
            ax.axvline((1 + MIN_ILD_GAIN) * base.ild, color="grey", ls=":", lw=0.8,
                       label=f"+{MIN_ILD_GAIN:.0%} ILD@{K}")
            ax.set_xlabel(f"intra-list diversity@{K} (1 - mean pairwise cosine, text vectors)")
            ax.set_ylabel(f"NDCG@{K}")
            ax.set_title(title)
            ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(path, dpi=120)
    finally:
        plt.close(fig)
    return path
