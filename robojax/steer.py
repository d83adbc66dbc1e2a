"""Steering cloned generative policies at test time, without retraining them.

- `robojax compose RUN_A RUN_B` mixes two behaviour-cloned policies of one family at every
  sampling step (`robojax.policies.compose`) and picks the weight by a short evaluation search.
- `robojax vgps RUN` fits a Q(observation history, executed actions) on Monte-Carlo returns of
  the policy's own rollouts, then lets it choose each chunk among several draws
  (`robojax.policies.guided`, V-GPS).
"""

import dataclasses
import json
from collections.abc import Sequence
from pathlib import Path

import jax
import jax.numpy as jnp
import optax

from robojax.algos import acting
from robojax.core.controller import Controller
from robojax.io.progress import console
from robojax.policies.chunking import chunk_controller, encode_history
from robojax.policies.compose import compose
from robojax.policies.guided import value_guided
from robojax.policies.networks import MLP, compiled_init
from robojax.rollout import evaluate_episodes
from robojax.runs import Run, load_run, read_args
from robojax.stats import wilson


def _cloned(run_dir: Path, use: str = "composition mixes") -> Run:
    args = read_args(run_dir)
    policy = args.algo_config().policy if args.algo == "bc" else None
    if policy not in ("diffusion", "flow"):
        family = f" --policy {policy}" if policy else ""
        raise ValueError(f"{run_dir} is a `--algo {args.algo}{family}` run; {use} "
                         "behaviour-cloned diffusion or flow policies (`robojax train "
                         "--algo bc --policy diffusion|flow`).")
    return load_run(run_dir)


def _evaluate_each(run: Run, controllers: Sequence[Controller], num_episodes: int,
                   seed: int) -> list[dict]:
    """Success (with its Wilson interval) and return of each controller over the same
    `num_episodes` episodes of the run's env."""
    env = acting.make_eval_env(dataclasses.replace(run.cfg, num_eval_envs=num_episodes),
                               run.env)
    key_reset, key_act = jax.random.split(jax.random.PRNGKey(seed))
    rows = []
    for controller in controllers:
        metrics = jax.jit(lambda c=controller: evaluate_episodes(
            env, c, key_reset, key_act, track_success=True))()
        row = {"success_rate": None, "success_ci": None,  # a task without a success metric
               "episode_reward": float(metrics["eval/episode_reward"])}
        if "eval/success_rate" in metrics:
            success = float(metrics["eval/success_rate"])
            row |= {"success_rate": success,
                    "success_ci": list(wilson(round(success * num_episodes), num_episodes))}
        rows.append(row)
    return rows


def _ranking(row: dict) -> tuple[float, float]:
    """Success first, then return; on a task without a success metric, the return alone."""
    return (row["success_rate"] or 0.0, row["episode_reward"])


def _summary(row: dict) -> str:
    reward = f"return {row['episode_reward']:.1f}"
    if row["success_rate"] is None:
        return reward
    low, high = row["success_ci"]
    return f"success {row['success_rate']:.3f} [{low:.3f}, {high:.3f}], {reward}"


def composed_controller(first: Run, second: Run, weight: float,
                        steps: int | None = None) -> Controller:
    """`weight` * first + (1 - weight) * second at every sampling step, acting with the first
    run's chunking; each network sees the history normalized its own way."""
    if first.args.env != second.args.env:
        raise ValueError(f"the runs were trained on {first.args.env!r} and "
                         f"{second.args.env!r}; compose runs of one env.")
    if first.cfg.chunks != second.cfg.chunks:
        raise ValueError(f"the runs chunk differently ({first.cfg.chunks} and "
                         f"{second.cfg.chunks}); compose runs trained with the same chunks.")
    a, b = first.state, second.state
    policy, params = compose(first.cfg.make_policy(), a.ema_params, second.cfg.make_policy(),
                             b.ema_params, weight, a.obs_mean.size * first.cfg.chunks.n_obs_steps)
    steps = steps or first.cfg.inference_steps

    def plan(history, key):
        cond = jnp.concatenate([_encode(a, history), _encode(b, history)], axis=-1)
        return policy.sample(params, cond, key, steps=steps)

    return chunk_controller(first.cfg.chunks, a.action_size, plan)


def search(first_dir: Path, second_dir: Path, weights: Sequence[float], *,
           num_episodes: int = 256, seed: int = 1, steps: int | None = None) -> dict:
    """Success (with its Wilson interval) and return of the composition at each weight, on the
    same episodes; writes compose.json beside the first run and names the best weight."""
    first, second = _cloned(first_dir), _cloned(second_dir)
    rows = [{"weight": float(weight), **row} for weight, row in zip(weights, _evaluate_each(
        first, [composed_controller(first, second, w, steps) for w in weights], num_episodes,
        seed), strict=True)]
    for row in rows:
        console.print(f"weight {row['weight']:.2f}: {_summary(row)}")
    best = max(rows, key=_ranking)
    result = {"first": str(first_dir), "second": str(second_dir), "episodes": num_episodes,
              "seed": seed, "weights": rows, "best_weight": best["weight"]}
    (Path(first_dir) / "compose.json").write_text(json.dumps(result, indent=2))
    console.print(f"best weight {best['weight']:.2f} (1 = {first_dir} alone, 0 = {second_dir} "
                  f"alone): {_summary(best)}")
    return result


# Value-guided sampling ----------------------------------------------------------------------

def _encode(state, history: jax.Array) -> jax.Array:
    return encode_history(history, state.obs_mean, state.obs_std)


def q_network(hidden_sizes: Sequence[int] = (256, 256)) -> MLP:
    """Q(observation history, executed actions) of a chunked policy."""
    return MLP(tuple(hidden_sizes), 1, "relu")


def _executed(run: Run, chunks: jax.Array) -> jax.Array:
    """The actions a chunk (..., H, A) executes, flattened (..., Ta * A)."""
    executed = run.cfg.chunks.executed(chunks)
    return executed.reshape(*executed.shape[:-2], -1)


def collect_returns(run: Run, num_episodes: int, key: jax.Array, discount: float = 0.99
                    ) -> dict:
    """Roll the cloned policy out (its own sampler, one episode per env) and record, per
    decision, the encoded history, the executed actions and the discounted return from there
    on; `valid` marks decisions taken before the episode ended."""
    cfg, state = run.cfg, run.state
    to, ta = cfg.chunks.n_obs_steps, cfg.chunks.n_action_steps
    env = acting.make_eval_env(dataclasses.replace(cfg, num_eval_envs=num_episodes), run.env)
    policy = cfg.make_policy()
    decisions = -(-env.env.episode_length // ta)

    def decide(carry, key_decision):
        env_state, history, alive = carry
        cond = _encode(state, history)
        chunks = policy.sample(state.ema_params, cond, key_decision,
                               steps=cfg.inference_steps)

        def act(inner, action):
            env_state, history, still, reward, weight = inner
            env_state = env.step(env_state, action)
            reward = reward + still * weight * env_state.reward
            still = still * (1.0 - env_state.done)
            history = jnp.concatenate([history[:, 1:], env_state.obs[:, None]], axis=1)
            return (env_state, history, still, reward, weight * discount), None

        inner = (env_state, history, alive, jnp.zeros_like(alive), 1.0)
        (env_state, history, still, reward, _), _ = jax.lax.scan(
            act, inner, jnp.moveaxis(cfg.chunks.executed(chunks), 1, 0))
        return (env_state, history, still), (cond, _executed(run, chunks), reward, alive)

    @jax.jit
    def rollout(key):
        key_reset, key_act = jax.random.split(key)
        first = env.reset(key_reset)
        history = jnp.repeat(first.obs[:, None], to, axis=1)
        carry = (first, history, jnp.ones(num_episodes))
        _, (cond, actions, reward, valid) = jax.lax.scan(
            decide, carry, jax.random.split(key_act, decisions))
        step_discount = discount ** ta

        def back(future, inputs):
            r, v = inputs
            value = v * (r + step_discount * future)
            return value, value

        _, returns = jax.lax.scan(back, jnp.zeros(num_episodes), (reward, valid), reverse=True)
        return {"cond": cond, "actions": actions, "target": returns, "valid": valid}

    return jax.tree.map(lambda x: x.reshape(-1, *x.shape[2:]), rollout(key))


def train_q(data: dict, key: jax.Array, *, grad_steps: int = 3000, batch_size: int = 512,
            learning_rate: float = 1e-3, hidden_sizes: Sequence[int] = (256, 256)) -> dict:
    """Regress Q(cond, executed actions) on the Monte-Carlo returns of the valid decisions."""
    keep = jnp.flatnonzero(data["valid"] > 0)
    inputs = jnp.concatenate([data["cond"], data["actions"]], axis=-1)[keep]
    target = data["target"][keep]
    net = q_network(hidden_sizes)
    key_init, key_batches = jax.random.split(key)
    params = compiled_init(net.init)(key_init, inputs[:1])
    optimizer = optax.adam(learning_rate)

    def loss(params, idx):
        return jnp.mean((net.apply(params, inputs[idx])[..., 0] - target[idx]) ** 2)

    def step(carry, key_batch):
        params, opt_state = carry
        idx = jax.random.randint(key_batch, (batch_size,), 0, inputs.shape[0])
        value, grads = jax.value_and_grad(loss)(params, idx)
        updates, opt_state = optimizer.update(grads, opt_state)
        return (optax.apply_updates(params, updates), opt_state), value

    run_steps = jax.jit(lambda p, o, k: jax.lax.scan(step, (p, o), jax.random.split(k, grad_steps)))
    (params, _), losses = run_steps(params, optimizer.init(params), key_batches)
    return {"params": params, "hidden_sizes": tuple(hidden_sizes),
            "final_mse": float(losses[-100:].mean()), "samples": int(keep.size)}


def value_guided_controller(run: Run, q: dict, num_candidates: int, temperature: float = 0.0
                            ) -> Controller:
    """The cloned policy choosing each chunk among `num_candidates` draws by `q`."""
    cfg, state = run.cfg, run.state
    policy, net = cfg.make_policy(), q_network(q["hidden_sizes"])

    def sample(cond, key):
        return policy.sample(state.ema_params, cond, key, steps=cfg.inference_steps)

    def score(cond, chunks):
        inputs = jnp.concatenate([cond, _executed(run, chunks)], axis=-1)
        return net.apply(q["params"], inputs)[..., 0]

    plan = value_guided(sample, score, num_candidates, temperature)
    return chunk_controller(cfg.chunks, state.action_size,
                            lambda history, key: plan(_encode(state, history), key))


def value_guided_search(run_dir: Path, *, num_candidates: Sequence[int] = (1, 4, 16),
                        temperature: float = 0.0, q_episodes: int = 1024,
                        num_episodes: int = 512, seed: int = 1,
                        env_config: dict | None = None) -> dict:
    """Fit Q on `q_episodes` rollouts of the cloned policy, then evaluate it choosing among
    each number of candidates (1 = the policy alone) on the same `num_episodes` episodes
    (other than the fitting ones); writes RUN_DIR/vgps.json."""
    _cloned(run_dir, "value-guided sampling draws from")
    run = load_run(run_dir, env_config=env_config)
    key_data, key_q = jax.random.split(jax.random.PRNGKey(seed + 1_000))
    q = train_q(collect_returns(run, q_episodes, key_data), key_q)
    console.print(f"Q fitted on {q['samples']:,} decisions of {q_episodes} episodes "
                  f"(final MSE {q['final_mse']:.4f})")
    rows = [{"candidates": n, **row} for n, row in zip(num_candidates, _evaluate_each(
        run, [value_guided_controller(run, q, n, temperature) for n in num_candidates],
        num_episodes, seed), strict=True)]
    for row in rows:
        console.print(f"{row['candidates']:3d} candidate(s): {_summary(row)}")
    result = {"run": str(run_dir), "temperature": temperature, "q_episodes": q_episodes,
              "q_final_mse": q["final_mse"], "episodes": num_episodes, "seed": seed,
              "env_config": {k: repr(v) for k, v in (env_config or {}).items()}, "rows": rows}
    (Path(run_dir) / "vgps.json").write_text(json.dumps(result, indent=2))
    return result
