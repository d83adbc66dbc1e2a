"""robojax: vectorized MuJoCo MJX environments and fused, jit-compiled learning for robots."""

import os

# Headless machines have no display for GLFW; EGL renders offscreen. Must precede `import mujoco`.
if "MUJOCO_GL" not in os.environ and not os.environ.get("DISPLAY"):
    os.environ["MUJOCO_GL"] = "egl"
    os.environ.setdefault("PYOPENGL_PLATFORM", "egl")

from robojax._cache import enable_compilation_cache  # noqa: E402

__version__ = "0.1.0"

enable_compilation_cache()

__all__ = ["__version__", "enable_compilation_cache"]
