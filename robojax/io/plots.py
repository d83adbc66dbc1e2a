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
    from matplotlib.ticker import EngFormatter

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
    axes[0].xaxis.set_major_formatter(EngFormatter(sep=""))  # 200k, 1.5M
    if title:
        fig.suptitle(title)
    out_png = Path(out_png)
    fig.savefig(out_png, dpi=110)
    return out_png


def plot_interventions(metrics_csv: str | Path, out_png: str | Path, *, title: str = ""
                       ) -> Path:
    """A human-in-the-loop run: the policy's evaluation (success rate where the task reports
    one, else return) and the human's intervention rate, against env steps and against the
    human-seconds spent so far."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import EngFormatter

    rows = [r for r in read_metrics(metrics_csv) if np.isfinite(r.get("hil/intervention_rate",
                                                                      np.nan))]
    key = "eval/success_rate" if rows and "eval/success_rate" in rows[0] else \
        "eval/episode_reward"
    column = lambda name: np.array([r.get(name, np.nan) for r in rows], float)  # noqa: E731
    fig = Figure(figsize=(10, 3.8), layout="constrained")
    axes = fig.subplots(1, 2)
    for ax, x, label in ((axes[0], column("env_steps"), "env steps"),
                         (axes[1], column("hil/human_seconds_total"), "human-seconds")):
        ax.plot(x, column(key), marker="o", color="tab:blue", label=key)
        ax.set_xlabel(label)
        ax.set_ylabel(key)
        ax.grid(alpha=0.3)
        twin = ax.twinx()
        twin.plot(x, column("hil/intervention_rate"), marker=".", color="tab:red",
                  label="intervention rate")
        twin.set_ylabel("intervention rate", color="tab:red")
        twin.set_ylim(0, 1)
    axes[0].xaxis.set_major_formatter(EngFormatter(sep=""))  # 200k, 1.5M
    if title:
        fig.suptitle(title)
    out_png = Path(out_png)
    fig.savefig(out_png, dpi=110)
    return out_png
