"""Contracts every trainer keeps, whatever it learns."""

import functools

import jax
import pytest

from robojax import algos, cli
from robojax.core.adapters import make_env
from robojax.train import TrainArgs


@pytest.fixture(scope="module")
def demos(tmp_path_factory):
    root = tmp_path_factory.mktemp("demos")
    cli.main(["collect", "--env", "detour", "--episodes", "4", "--out", str(root / "d.hdf5")])
    cli.main(["collect", "--env", "pendulum-swingup", "--episodes", "1", "--out",
              str(root / "p.hdf5")])
    return root


CASES = {
    "ppo": lambda d: TrainArgs(algo="ppo", num_envs=8),
    "apg": lambda d: TrainArgs(algo="apg"),
    "shac": lambda d: TrainArgs(algo="shac"),
    "ild": lambda d: TrainArgs(algo="ild", env="pendulum-swingup", demo=d / "p.hdf5"),
    **{f"bc-{family}": functools.partial(
        lambda family, d: TrainArgs(algo="bc", env="detour", dataset=d / "d.hdf5",
                                    policy=family), family)
       for family in ("gaussian", "diffusion", "flow", "energy")},
}


def _aval(x) -> tuple:
    return x.shape, x.dtype, x.weak_type


@pytest.mark.parametrize("case", sorted(CASES))
def test_initial_state_has_the_types_the_train_step_returns(case, demos):
    # A leaf whose type changes across the first step (e.g. a weakly typed Python float in
    # the initial parameters) makes the train step and the evaluation compile twice.
    args = CASES[case](demos)
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
