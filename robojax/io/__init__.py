"""Run outputs: checkpoints, metrics, plots and videos."""
