"""Draw the plots that pages embed from the recipes' own code (`make plots`).

    python scripts/plots.py     # writes docs/assets/plots/*.png, English and Japanese

docs/assets/plots/schedulers-resume.png (.ja.png): the learning rate of each step for four
scheduler families, uninterrupted, resumed, and resumed without the scheduler's state.
The curves come from the `families` section of snippets/changes/schedulers.py, the code the
page shows; tests/changes/test_schedulers.py checks the data (`scheduler_curves`), not the image.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "hooks"), str(ROOT / "snippets" / "lib")]  # as pytest.ini

from cookbook_testing.pages import SNIPPETS, section_source  # noqa: E402

OUT = ROOT / "docs" / "assets" / "plots"
FAMILIES = ["OneCycleLR", "CosineAnnealingWarmRestarts", "SequentialLR", "ReduceLROnPlateau"]
LABELS = {
    "en": {"uninterrupted": "uninterrupted", "resumed": "resumed (state loaded)",
           "forgotten": "resumed without the scheduler's state",
           "stop": "stopped and resumed", "x": "step", "y": "learning rate"},
    "ja": {"uninterrupted": "中断しなかった学習", "resumed": "再開（状態を読み込み）",
           "forgotten": "スケジューラの状態を読み込まずに再開",
           "stop": "中断・再開", "x": "ステップ", "y": "学習率"},
}


def scheduler_curves() -> tuple[dict[str, dict[str, list[float]]], int]:
    """{family: {"uninterrupted" | "resumed" | "forgotten": learning rate of each step}}
    and the step where the run was resumed, computed by the page's own code."""
    namespace: dict = {}
    path = SNIPPETS / "changes" / "schedulers.py"
    cwd = os.getcwd()
    with tempfile.TemporaryDirectory() as tmp:  # checkpoint_at writes checkpoint.pt
        os.chdir(tmp)
        try:
            exec(compile(section_source(path, "families"), str(path), "exec"), namespace)
            data = {}
            for name in FAMILIES:
                runs = namespace["curves"](name)
                data[name] = {kind: [lr for lr, beta1 in run]
                              for kind, run in zip(("uninterrupted", "resumed", "forgotten"), runs)}
        finally:
            os.chdir(cwd)
    return data, namespace["STOP"]


def plot_schedulers(out: Path = OUT) -> list[Path]:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    data, stop = scheduler_curves()
    paths = []
    for lang, suffix in (("en", ".png"), ("ja", ".ja.png")):
        if lang == "ja":
            import matplotlib_fontja  # noqa: F401 - sets a Japanese font (IPAexGothic), bundled
        labels = LABELS[lang]
        fig, axes = plt.subplots(2, 2, figsize=(8, 5.2), dpi=110, sharex=True)
        for ax, (name, runs) in zip(axes.flat, data.items()):
            steps = range(len(runs["uninterrupted"]))
            ax.plot(steps, runs["forgotten"], color="#c2410c", lw=1.6, ls="--",
                    label=labels["forgotten"])
            ax.plot(steps, runs["uninterrupted"], color="#1d4ed8", lw=3, alpha=0.45,
                    label=labels["uninterrupted"])
            ax.plot(steps, runs["resumed"], color="#111827", lw=1.1, marker=".", ms=3,
                    label=labels["resumed"])
            ax.axvline(stop, color="#6b7280", lw=0.8, ls=":")
            ax.set_title(name, fontsize=9)
            ax.tick_params(labelsize=7)
        for ax in axes[1]:
            ax.set_xlabel(labels["x"], fontsize=8)
        for ax in axes[:, 0]:
            ax.set_ylabel(labels["y"], fontsize=8)
        handles, names = axes.flat[0].get_legend_handles_labels()
        fig.legend(handles, names, loc="lower center", ncol=3, fontsize=7.5, frameon=False)
        fig.text(0.995, 0.995, f"{labels['stop']}: step {stop}" if lang == "en"
                 else f"{labels['stop']}：ステップ {stop}", ha="right", va="top", fontsize=7)
        fig.tight_layout(rect=(0, 0.06, 1, 0.97))
        out.mkdir(parents=True, exist_ok=True)
        path = out / f"schedulers-resume{suffix}"
        fig.savefig(path, metadata={"Software": None})
        plt.close(fig)
        paths.append(path)
    return paths


def main() -> int:
    for path in plot_schedulers():
        print(path.relative_to(ROOT))
    return 0


if __name__ == "__main__":
    sys.exit(main())
