"""Task models live as MJCF files under envs/assets (shared pieces included), open in MuJoCo
without robojax, agree with the constants the task code uses, and ship in the package."""

import subprocess
import sys
import zipfile
from pathlib import Path

import mujoco
import numpy as np
import pytest

from robojax import envs

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("name", envs.names())
def test_every_task_is_an_mjcf_file_mujoco_opens_alone(name):
    env = envs.make(name)
    module = sys.modules[type(env).__module__]
    path = Path(module.XML)
    assert path.parent == ROOT / "envs" / "assets" and path.suffix == ".xml"
    model = mujoco.MjModel.from_xml_path(str(path))  # what `python -m mujoco.viewer` loads
    assert model.nq == env.mj_model.nq and model.nu == env.mj_model.nu
    assert model.vis.global_.offwidth == 640  # from the shared include


def test_detour_model_matches_the_task_constants():
    from robojax.envs import detour

    model = envs.make("detour").mj_model
    wall = model.geom("wall").size
    np.testing.assert_allclose(wall[:2], detour.WALL_HALF)
    assert model.geom("puck").size[0] == pytest.approx(detour.PUCK_RADIUS)
    assert model.body("goal").pos[1] == pytest.approx(detour.GOAL_Y)


def test_push_t_model_matches_the_task_constants():
    from robojax.envs import push_t

    model = envs.make("push-t").mj_model
    for geom, (centre, half) in (("bar", push_t.BAR), ("stem", push_t.STEM)):
        np.testing.assert_allclose(model.geom(geom).pos[:2], centre, atol=1e-9)
        np.testing.assert_allclose(model.geom(geom).size[:2], half, atol=1e-9)
    assert model.geom("pusher").size[0] == pytest.approx(push_t.PUSHER_RADIUS)
    target = model.body("target")
    np.testing.assert_allclose(target.pos[:2], push_t.TARGET[:2], atol=1e-9)
    yaw = 2 * np.arctan2(target.quat[3], target.quat[0])
    assert yaw == pytest.approx(push_t.TARGET[2])
    np.testing.assert_allclose(model.actuator_ctrlrange, [[-push_t.REACH, push_t.REACH]] * 2)


@pytest.mark.slow
def test_a_built_wheel_ships_the_models_and_builds_every_task(tmp_path):
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-v", "-w",
                            str(tmp_path), str(ROOT)], check=True, capture_output=True, text=True)
    assert "Package would be ignored" not in build.stdout + build.stderr  # every folder declared
    (wheel,) = tmp_path.glob("robojax-*.whl")
    installed = tmp_path / "site"
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(installed)
    assert (installed / "robojax" / "envs" / "assets" / "common" / "visual.xml").exists()
    assert (installed / "robojax" / "hil" / "page" / "teleop.js").exists()  # the teleop page
    # The unpacked wheel comes first on the path, ahead of the source tree.
    script = ("import robojax, robojax.envs as envs; "
              f"assert robojax.__file__.startswith({str(installed)!r}), robojax.__file__; "
              "[envs.make(n) for n in envs.names()]; print('ok')")
    out = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, check=True,
                         capture_output=True, text=True,
                         env={"PYTHONPATH": str(installed), "JAX_PLATFORMS": "cpu",
                              "PATH": "/usr/bin:/bin"})
    assert out.stdout.strip() == "ok"
