"""Learning-curve figures from a run's metrics.csv."""

from pathlib import Path

import numpy as np

from robojax.io.metrics import read_metrics


def plot_learning_curve(metrics_csv: str | Path, out_png: str | Path, *, title: str = "",
                        key: str = "eval/episode_reward", step_key: str = "env_steps") -> Path:
    """An eval metric against steps (`step_key`) and against wall-clock time, side by side."""
    # A bare Figure draws without pyplot, so the caller's backend (a notebook's inline one)
    # is left alone.
    from matplotlib.figure import Figure

    rows = read_metrics(metrics_csv)
    steps = np.array([r[step_key] for r in rows], dtype=float)
    wall = np.array([r["wall_time_s"] for r in rows], dtype=float)
    reward = np.array([r.get(key, np.nan) for r in rows], dtype=float)
    spread = np.array([r.get(f"{key}_std", np.nan) for r in rows], dtype=float)
    fig = Figure(figsize=(10, 3.8), layout="constrained")
    axes = fig.subplots(1, 2)
    panels = ((axes[0], steps, step_key.replace("_", " ")), (axes[1], wall, "wall time (s)"))
    for ax, x, label in panels:
        ax.plot(x, reward, marker="o", color="tab:blue")
        if np.isfinite(spread).any():
            ax.fill_between(x, reward - spread, reward + spread, alpha=0.2, color="tab:blue")
        ax.set_xlabel(label)
        ax.set_ylabel(key)
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    out_png = Path(out_png)
    fig.savefig(out_png, dpi=110)
    return out_png
