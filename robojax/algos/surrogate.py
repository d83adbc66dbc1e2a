"""PPO's clipped surrogate and its shuffled minibatch epochs, shared by the on-policy learners
(PPO over env steps, ReinFlow and DPPO over sampling chains, residual RL)."""

from collections.abc import Callable

import jax
import jax.numpy as jnp
import optax


def clipped_surrogate(log_prob: jax.Array, old_log_prob: jax.Array, advantage: jax.Array,
                      clip_epsilon: float) -> tuple[jax.Array, dict]:
    """The negated clipped objective, averaged, with the approximate KL and the share of
    clipped ratios. `advantage` broadcasts against the log-probabilities (e.g. one advantage
    per chunk over its denoising steps)."""
    ratio = jnp.exp(log_prob - old_log_prob)
    advantage = jnp.broadcast_to(advantage, ratio.shape)
    clipped = jnp.clip(ratio, 1 - clip_epsilon, 1 + clip_epsilon)
    loss = -jnp.minimum(ratio * advantage, clipped * advantage).mean()
    return loss, {"loss/policy": loss, "loss/approx_kl": jnp.mean(old_log_prob - log_prob),
                  "loss/clip_fraction": jnp.mean(jnp.abs(ratio - 1) > clip_epsilon)}


def actor_critic_loss(policy, value_net, params: dict, batch: dict, clip_epsilon: float,
                      value_cost: float, entropy_cost: float) -> tuple[jax.Array, dict]:
    """PPO's loss on a minibatch: the clipped surrogate of `policy` (params["policy"]) on
    `batch["obs"]`/`["action"]` with standardized advantages, plus the value MSE of
    `value_net` (params["value"]) on `batch["value_obs"]` (default: the policy's input)
    against `batch["target"]`, minus the entropy bonus."""
    log_prob = policy.log_prob(params["policy"], batch["obs"], batch["action"])
    policy_loss, info = clipped_surrogate(log_prob, batch["log_prob"],
                                          standardize(batch["advantage"]), clip_epsilon)
    values = value_net.apply(params["value"], batch.get("value_obs", batch["obs"]))[..., 0]
    value_loss = 0.5 * jnp.mean((values - batch["target"]) ** 2)
    entropy = policy.entropy(params["policy"], batch["obs"]).mean()
    total = policy_loss + value_cost * value_loss - entropy_cost * entropy
    return total, {**info, "loss/value": value_loss, "loss/entropy": entropy}


def standardize(advantage: jax.Array) -> jax.Array:
    return (advantage - advantage.mean()) / (advantage.std() + 1e-8)


def minibatch_epochs(grad_fn: Callable, optimizer: optax.GradientTransformation, params,
                     opt_state, batch: dict, key: jax.Array, num_epochs: int,
                     num_minibatches: int) -> tuple:
    """`num_epochs` shuffled passes of `num_minibatches` gradient steps over `batch` (leading
    axis: samples). `grad_fn(params, minibatch) -> (grads, info)`. Returns the new params and
    optimizer state and the metrics averaged over all steps (with the gradient norm)."""

    def minibatch_step(carry, minibatch):
        params, opt_state = carry
        grads, info = grad_fn(params, minibatch)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        info["loss/grad_norm"] = optax.global_norm(grads)
        return (optax.apply_updates(params, updates), opt_state), info

    def epoch(carry, key_epoch):
        size = jax.tree.leaves(batch)[0].shape[0]
        order = jax.random.permutation(key_epoch, size)
        shuffled = jax.tree.map(
            lambda x: x[order].reshape((num_minibatches, -1, *x.shape[1:])), batch)
        return jax.lax.scan(minibatch_step, carry, shuffled)

    (params, opt_state), info = jax.lax.scan(epoch, (params, opt_state),
                                             jax.random.split(key, num_epochs))
    return params, opt_state, jax.tree.map(jnp.mean, info)
