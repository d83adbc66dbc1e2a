"""Metrics to `metrics.csv` (one row per log point) and TensorBoard event files."""

import csv
import math
from pathlib import Path

STEP_COLUMNS = ("env_steps", "grad_steps")
FIRST_COLUMNS = (*STEP_COLUMNS, "wall_time_s", "iteration")
INT_COLUMNS = (*STEP_COLUMNS, "iteration")


class MetricsLogger:
    """Appends rows to `run_dir/metrics.csv` and scalars to `run_dir/tb/`.

    Rows are indexed by `step_key` (env steps for RL, gradient steps for learning from data);
    on resume, rows past the resumed step are dropped so the file reads as one clean run.
    """

    def __init__(self, run_dir: str | Path, resume_step: int | None = None,
                 tensorboard: bool = True, step_key: str = "env_steps"):
        self.path = Path(run_dir) / "metrics.csv"
        self.step_key = step_key
        self.columns: list[str] | None = None
        self.last_wall_time = 0.0
        if resume_step is not None and self.path.exists():
            rows = [r for r in read_metrics(self.path) if r[step_key] <= resume_step]
            self._rewrite(rows)
            if rows:
                self.last_wall_time = rows[-1]["wall_time_s"]
        elif self.path.exists():
            self.path.unlink()
        self._tb = None
        if tensorboard:
            from tensorboardX import SummaryWriter

            self._tb = SummaryWriter(str(Path(run_dir) / "tb"))

    def _rewrite(self, rows: list[dict]) -> None:
        if not rows:
            self.path.unlink(missing_ok=True)
            return
        self.columns = list(rows[0])
        with self.path.open("w", newline="") as f:
            writer = csv.DictWriter(f, self.columns)
            writer.writeheader()
            writer.writerows(rows)

    def log(self, row: dict[str, float]) -> None:
        row = {k: int(v) if k in INT_COLUMNS else float(v) for k, v in row.items()}
        if self.columns is None or set(row) - set(self.columns):
            # New metric names: rewrite the (small) file with the union of columns.
            previous = read_metrics(self.path) if self.path.exists() else []
            names = set(row) | set(self.columns or ())
            self.columns = [c for c in FIRST_COLUMNS if c in names] + sorted(
                names - set(FIRST_COLUMNS))
            with self.path.open("w", newline="") as f:
                writer = csv.DictWriter(f, self.columns)
                writer.writeheader()
                writer.writerows({c: r.get(c, _missing(c, r)) for c in self.columns}
                                 for r in previous)
        with self.path.open("a", newline="") as f:
            csv.DictWriter(f, self.columns, extrasaction="ignore").writerow(
                {c: row.get(c, math.nan) for c in self.columns})
        if self._tb is not None:
            step = int(row.get(self.step_key, 0))
            for k, v in row.items():
                if k not in STEP_COLUMNS and math.isfinite(v):
                    self._tb.add_scalar(k, v, step)
            self._tb.flush()

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()


def _missing(column: str, row: dict) -> float:
    """An earlier row's value of a column first logged later: a step count that a learner
    reports from its first iteration on (HG-DAgger's env steps) was 0 before training, any
    other metric is unknown there."""
    return 0 if column in STEP_COLUMNS and row.get("iteration") == 0 else math.nan


def read_metrics(path: str | Path) -> list[dict[str, float]]:
    """Rows of a metrics.csv as dicts of floats (step counts and iteration as ints)."""
    with Path(path).open(newline="") as f:
        rows = []
        for raw in csv.DictReader(f):
            row = {k: float(v) if v not in ("", None) else math.nan for k, v in raw.items()}
            for k in INT_COLUMNS:
                if k in row and math.isfinite(row[k]):
                    row[k] = int(row[k])
            rows.append(row)
        return rows
