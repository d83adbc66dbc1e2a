"""metrics.csv: columns that appear part-way through a run."""

import math

from robojax.io.metrics import MetricsLogger, read_metrics


def test_a_column_first_logged_later_is_unknown_before_it_and_a_step_count_starts_at_0(tmp_path):
    logger = MetricsLogger(tmp_path, tensorboard=False, step_key="grad_steps")
    logger.log({"grad_steps": 0, "wall_time_s": 1.0, "iteration": 0, "eval/return": 5.0})
    logger.log({"grad_steps": 100, "wall_time_s": 2.0, "iteration": 1, "eval/return": 6.0,
                "env_steps": 800, "train/loss": 0.5})
    logger.log({"grad_steps": 200, "wall_time_s": 3.0, "iteration": 2, "eval/return": 7.0})
    first, second, third = read_metrics(tmp_path / "metrics.csv")
    assert list(first)[:4] == ["env_steps", "grad_steps", "wall_time_s", "iteration"]
    assert first["env_steps"] == 0 and math.isnan(first["train/loss"])
    assert second["env_steps"] == 800 and second["train/loss"] == 0.5
    assert math.isnan(third["env_steps"]) and third["eval/return"] == 7.0
