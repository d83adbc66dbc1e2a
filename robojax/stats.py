"""95% confidence intervals for results over seeds or episodes: Wilson for success rates, a
percentile bootstrap for mean returns."""

import numpy as np


def wilson(successes: int, trials: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval of a success rate."""
    if trials == 0:
        return 0.0, 1.0
    p = successes / trials
    centre = (p + z * z / (2 * trials)) / (1 + z * z / trials)
    half = z * np.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / (1 + z * z / trials)
    return max(0.0, centre - half), min(1.0, centre + half)


def bootstrap_mean(values, resamples: int = 10_000, seed: int = 0) -> tuple[float, float]:
    """Percentile-bootstrap interval of the mean of `values`."""
    values = np.asarray(values, float)
    draws = np.random.default_rng(seed).choice(values, (resamples, len(values)))
    return tuple(np.percentile(draws.mean(axis=1), [2.5, 97.5]))


def overlap(a: tuple[float, float], b: tuple[float, float]) -> bool:
    """Whether two intervals overlap (then the comparison does not separate the two)."""
    return a[0] <= b[1] and b[0] <= a[1]
