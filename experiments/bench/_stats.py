"""The confidence intervals the benchmarks report live in `robojax.stats`."""

from robojax.stats import bootstrap_mean, overlap, wilson

__all__ = ["bootstrap_mean", "overlap", "wilson"]
