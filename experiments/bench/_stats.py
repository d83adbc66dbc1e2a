"""The confidence intervals the benchmarks report live in `robojax.stats`."""

from robojax.stats import bootstrap_mean, overlap, wilson

__all__ = ["bootstrap_mean", "overlap", "pooled_success", "wilson"]


def pooled_success(rates: list[float], episodes: int) -> tuple[float, float, float]:
    """Success over all seeds' episodes (`episodes` per seed at the given rates) and its
    Wilson 95% interval."""
    wins, total = round(sum(rates) * episodes), episodes * len(rates)
    return (wins / total, *wilson(wins, total))
