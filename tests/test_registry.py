import dataclasses

import pytest

from robojax import envs
from robojax.core.mjcf import MJCFError, load_mj_model


def test_unknown_env_lists_close_matches():
    with pytest.raises(KeyError, match="cartpole-balance"):
        envs.make("cartpole-balanse")


def test_config_overrides_apply_and_do_not_leak():
    env = envs.make("cartpole-balance", episode_length=50, reward_scales={"upright": 2.0})
    assert env.config.episode_length == 50
    assert env.config.reward_scales["upright"] == 2.0
    assert env.config.reward_scales["centered"] == 1.0  # merged, not replaced
    fresh = envs.get_config("cartpole-balance")
    assert fresh.episode_length == 1000 and fresh.reward_scales["upright"] == 1.0
    with pytest.raises(dataclasses.FrozenInstanceError):
        fresh.episode_length = 3


def test_unknown_override_names_the_fields():
    with pytest.raises(TypeError, match="episode_length"):
        envs.make("reacher", episode_lenght=10)


def test_registering_a_task_makes_it_buildable_by_name():
    from robojax.envs import point_mass

    assert {"cartpole-balance", "hopper", "push-t"} <= set(envs.list())
    envs.register("point-mass-short", point_mass.PointMass,
                  lambda: dataclasses.replace(point_mass.default_config(), episode_length=7))
    try:
        assert "point-mass-short" in envs.names() and envs.names() == sorted(envs.names())
        env = envs.make("point-mass-short")
        assert env.config.episode_length == 7 and env.registry_name == "point-mass-short"
        with pytest.raises(ValueError, match="already registered"):
            envs.register("point-mass-short", point_mass.PointMass, point_mass.default_config)
    finally:
        del envs._REGISTRY["point-mass-short"]


def test_module_colon_task_imports_the_module_that_registers_the_task():
    """`MODULE:TASK` reaches a task of the user's own from the CLI and from runs (as
    gymnasium's "module:Env-v0"): tests/fast_env.py registers `fast` when imported."""
    env = envs.make("fast_env:fast", episode_length=7)
    assert env.config.episode_length == 7 and env.registry_name == "fast_env:fast"
    assert envs.get_config("fast_env:fast").episode_length == 100
    assert envs.parse_overrides(["dt=0.05"], "fast_env:fast") == {"dt": 0.05}
    with pytest.raises(ImportError, match=r"cannot import 'no_such_module'.*PYTHONPATH"):
        envs.make("no_such_module:fast")
    with pytest.raises(KeyError, match=r"importing 'fast_env' registered no env 'fastt'"):
        envs.make("fast_env:fastt")


def test_malformed_mjcf_names_the_line():
    xml = "<mujoco>\n  <worldbody>\n    <body>\n      <geom type='sphere' size='0.1'/>\n" \
          "    </bodyy>\n  </worldbody>\n</mujoco>"
    with pytest.raises(MJCFError, match="line 5"):
        load_mj_model(xml)


def test_invalid_attribute_names_the_line():
    xml = "<mujoco>\n  <worldbody>\n    <geom type='sphere' sise='0.1'/>\n  </worldbody>\n" \
          "</mujoco>"
    with pytest.raises(MJCFError, match="line 3"):
        load_mj_model(xml)


def test_missing_mjcf_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="not found"):
        load_mj_model(tmp_path / "nope.xml")
