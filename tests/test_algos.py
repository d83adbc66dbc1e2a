"""Contracts every trainer keeps, whatever it learns."""

import functools
import inspect

import jax
import pytest
from robojax.envs import make as make_env

from robojax import algos
from robojax.algos.base import ENV_STEPS, GRAD_STEPS, AlgoConfig, Algorithm
from robojax.runs import TrainArgs

pytestmark = pytest.mark.quick_compile  # compile-bound (tests/conftest.py)

CASES = {
    "ppo": lambda request: TrainArgs(algo="ppo", num_envs=8),
    "apg": lambda request: TrainArgs(algo="apg"),
    "shac": lambda request: TrainArgs(algo="shac"),
    "sac": lambda request: TrainArgs(algo="sac", env="pendulum-swingup", num_envs=4),
    "rlpd": lambda request: TrainArgs(algo="rlpd", env="pendulum-swingup",
                                      dataset=request.getfixturevalue("pendulum_demo")),
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


@pytest.mark.parametrize("case", [case if case in ("ppo", "bc-gaussian", "sac") else pytest.param(
    case, marks=pytest.mark.slow) for case in sorted(CASES)])
def test_initial_state_has_the_types_the_train_step_returns(case, request):
    # A leaf whose type changes across the first step (e.g. a weakly typed Python float in
    # the initial parameters) makes the train step and the evaluation compile twice.
    args = CASES[case](request)
    algo, cfg = algos.get(args.algo), args.algo_config()
    env = make_env(args.env)
    train_input = algo.make_train_input(cfg, env)
    state = algo.init(cfg, env, train_input, jax.random.PRNGKey(0))
    step = functools.partial(algo.train_iteration, cfg, train_input)
    after, _ = jax.eval_shape(step, state)
    assert jax.tree.structure(after) == jax.tree.structure(state)
    pairs = zip(jax.tree_util.tree_leaves_with_path(state), jax.tree.leaves(after), strict=True)
    changed = [f"{jax.tree_util.keystr(path)}: {_aval(x)} -> {_aval(y)}"
               for (path, x), y in pairs if _aval(x) != _aval(y)]
    assert not changed, "\n".join(changed)


_CONTRACT = {name: len(inspect.signature(getattr(Algorithm, name)).parameters) - 1  # self
             for name in ("make_train_input", "init", "train_iteration", "evaluate",
                          "controller")}


def _required_positional(function) -> int:
    return sum(p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
               for p in inspect.signature(function).parameters.values())


@pytest.mark.parametrize("name", algos.names())
def test_every_registered_algorithm_meets_the_contract(name):
    algo = algos.get(name)
    assert isinstance(algo, Algorithm)
    for function, arity in _CONTRACT.items():
        assert _required_positional(getattr(algo, function)) == arity, function
    assert issubclass(algo.Config, AlgoConfig)
    assert algo.PROGRESS_UNIT in (ENV_STEPS, GRAD_STEPS)
    assert algo.TRAIN_KEY.startswith("train/") and algo.PLOT_KEY.startswith("eval/")
    cfg = algo.Config()
    assert cfg.num_iterations() >= 1 and cfg.steps_per_iteration() >= 1
    # The CLI has its flags: `--<name>.<field>` for every field of its config.
    assert isinstance(getattr(TrainArgs(), name), algo.Config)


def test_an_unknown_algorithm_names_close_matches():
    with pytest.raises(KeyError, match="Did you mean 'ppo'"):
        algos.get("ppoo")


def test_renamed_flags_keep_working(tmp_path):
    from robojax.cli import _rename_old_flags

    argv = ["train", "--ppo.unroll-length", "8", "--shac.horizon=16", "--ild.horizon", "64"]
    assert _rename_old_flags(argv) == ["train", "--ppo.rollout-length", "8",
                                       "--shac.rollout-length=16", "--ild.demo-length", "64"]
    # And a run directory written before the renames loads under the new names.
    from robojax.io import run

    run.write_config(tmp_path, TrainArgs())
    saved = (tmp_path / run.CONFIG).read_text().replace('"rollout_length": 32',
                                                        '"unroll_length": 8', 1)
    (tmp_path / run.CONFIG).write_text(saved)
    assert run.read_config(tmp_path, TrainArgs).ppo.rollout_length == 8
