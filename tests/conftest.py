import os

os.environ.setdefault("MUJOCO_GL", "egl")

import jax  # noqa: E402
import pytest  # noqa: E402

import robojax  # noqa: E402,F401  (turns on the persistent compilation cache)


@pytest.fixture
def key():
    return jax.random.PRNGKey(0)
