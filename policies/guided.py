"""Value-guided sampling (V-GPS, Nakamoto et al. 2024): draw several candidate chunks from a
generative policy, score each with a value function, execute the best (or one drawn by a
softmax of the scores). The policy is not retrained; the candidates are one batched call.
"""

from collections.abc import Callable

import jax
import jax.numpy as jnp


def value_guided(sample: Callable[[jax.Array, jax.Array], jax.Array],
                 score: Callable[[jax.Array, jax.Array], jax.Array], num_candidates: int,
                 temperature: float = 0.0) -> Callable[[jax.Array, jax.Array], jax.Array]:
    """`plan(cond (N, c), key) -> chunk (N, H, A)` choosing among `num_candidates` draws of
    `sample(cond, key) -> (N, H, A)` by `score(cond, chunks) -> (N,)`: the highest score with
    `temperature` 0, else a draw with probabilities softmax(score / temperature)."""
    if num_candidates < 1:
        raise ValueError(f"num_candidates must be >= 1, got {num_candidates}.")
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0, got {temperature}.")

    def plan(cond, key):
        key_draws, key_pick = jax.random.split(key)
        draws = jax.vmap(lambda k: sample(cond, k))(jax.random.split(key_draws, num_candidates))
        scores = jax.vmap(lambda chunks: score(cond, chunks))(draws)  # (n, N)
        if temperature == 0:
            pick = jnp.argmax(scores, axis=0)
        else:
            pick = jax.random.categorical(key_pick, scores.T / temperature, axis=-1)
        return draws[pick, jnp.arange(cond.shape[0])]

    return plan
