"""Contracts every trainer keeps, whatever it learns."""

import functools

import jax
import pytest

from robojax import algos
from robojax.core.adapters import make_env
from robojax.train import TrainArgs

CASES = {
    "ppo": lambda request: TrainArgs(algo="ppo", num_envs=8),
    "apg": lambda request: TrainArgs(algo="apg"),
    "shac": lambda request: TrainArgs(algo="shac"),
    "ild": lambda request: TrainArgs(algo="ild", env="pendulum-swingup",
                                     demo=request.getfixturevalue("pendulum_demo")),
    **{f"bc-{family}": functools.partial(
        lambda family, request: TrainArgs(algo="bc", env="detour", policy=family,
                                          dataset=request.getfixturevalue("detour_demos")),
        family)
       for family in ("gaussian", "diffusion", "flow", "energy")},
}


def _aval(x) -> tuple:
    return x.shape, x.dtype, x.weak_type


@pytest.mark.parametrize("case", sorted(CASES))
def test_initial_state_has_the_types_the_train_step_returns(case, request):
    # A leaf whose type changes across the first step (e.g. a weakly typed Python float in
    # the initial parameters) makes the train step and the evaluation compile twice.
    args = CASES[case](request)
    algo, cfg = algos.get(args.algo), args.algo_config()
    env = make_env(args.env)
    state = algo.init(cfg, env, jax.random.PRNGKey(0))
    step = functools.partial(algo.train_iteration, cfg, algo.make_train_input(cfg, env))
    after, _ = jax.eval_shape(step, state)
    assert jax.tree.structure(after) == jax.tree.structure(state)
    pairs = zip(jax.tree_util.tree_leaves_with_path(state), jax.tree.leaves(after), strict=True)
    changed = [f"{jax.tree_util.keystr(path)}: {_aval(x)} -> {_aval(y)}"
               for (path, x), y in pairs if _aval(x) != _aval(y)]
    assert not changed, "\n".join(changed)
