"""MuJoCo's OpenGL backend, chosen before `import mujoco` (which reads `MUJOCO_GL` once)."""

import ctypes.util
import os

# Headless backends in order of preference, with the library each one loads.
_HEADLESS = (("egl", "EGL"), ("osmesa", "OSMesa"))


def choose_gl_backend() -> str | None:
    """Set `MUJOCO_GL` on a machine without a display; return the backend, None if none exists.

    A user's `MUJOCO_GL` is kept. Without a display, GLFW cannot open a context, so the first
    headless backend whose library is installed is chosen. Asking mujoco for EGL where libEGL is
    missing breaks `import mujoco` itself, so when neither library exists nothing is set and
    rendering reports itself unavailable instead.
    """
    if "MUJOCO_GL" in os.environ:
        return os.environ["MUJOCO_GL"]
    if os.environ.get("DISPLAY"):
        return "glfw"
    for backend, library in _HEADLESS:
        if ctypes.util.find_library(library):
            os.environ["MUJOCO_GL"] = backend
            os.environ.setdefault("PYOPENGL_PLATFORM", backend)
            return backend
    return None


def can_render(backend: str | None) -> bool:
    """Whether `backend` can open a context here (GLFW needs a display)."""
    return backend is not None and (backend != "glfw" or bool(os.environ.get("DISPLAY")))
