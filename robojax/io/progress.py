"""A live progress bar for training: steps, throughput, train and eval figures, ETA."""

import time

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

console = Console(stderr=True)


class TrainProgress:
    """Rich progress bar over steps (env or gradient steps); a no-op when `enabled` is False.

    `train_label` / `eval_label` name the two figures shown (e.g. "r" and "eval").
    """

    def __init__(self, total_steps: int, enabled: bool = True, *, unit: str = "steps",
                 train_label: str = "r", eval_label: str = "eval"):
        self.enabled = enabled
        self.total = total_steps
        self.unit, self.eval_label = unit, eval_label
        self._fields = {"sps": "-", "train": "-", "eval": "-", "status": ""}
        self._last = None
        if enabled:
            self._progress = Progress(
                TextColumn("[bold blue]{task.fields[status]:>9}"), BarColumn(),
                TextColumn(f"{{task.completed:>9,.0f}} {unit}"),
                TextColumn("[cyan]{task.fields[sps]}/s"),
                TextColumn(f"{train_label} {{task.fields[train]}}"),
                TextColumn(f"[green]{eval_label} {{task.fields[eval]}}"),
                TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(),
                console=console, refresh_per_second=4)
            self._task = self._progress.add_task("train", total=total_steps, **self._fields)

    def __enter__(self):
        if self.enabled:
            self._progress.__enter__()
        return self

    def __exit__(self, *exc):
        if self.enabled:
            self._progress.__exit__(*exc)

    def update(self, steps: int, *, train_value=None, eval_value=None, status=None) -> None:
        now = time.perf_counter()
        if self._last is not None and steps > self._last[1]:
            self._fields["sps"] = f"{(steps - self._last[1]) / (now - self._last[0]):,.0f}"
        self._last = (now, steps)
        if train_value is not None:
            self._fields["train"] = f"{train_value:.3f}"
        if eval_value is not None:
            self._fields["eval"] = f"{eval_value:.4g}"
        if status is not None:
            self._fields["status"] = status
        if self.enabled:
            self._progress.update(self._task, completed=steps, **self._fields)
        elif eval_value is not None:
            console.print(f"{steps:>11,} {self.unit}  {self.eval_label} {eval_value:.4g}")
