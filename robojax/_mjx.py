"""MJX's first import, without its notice about the optional Warp backend."""

import contextlib
import importlib.util
import io
import sys

_NOTICES = ("Failed to import warp:", "Failed to import mujoco_warp:")


def import_mjx_quietly() -> None:
    """Import `mujoco.mjx` once, dropping the two lines it prints when warp-lang (MJX's optional
    NVIDIA-GPU backend, which robojax does not use) is not installed: "Failed to import warp:
    No module named 'warp'" and the same for mujoco_warp. Anything else it prints goes through."""
    if "mujoco.mjx" in sys.modules or importlib.util.find_spec("warp") is not None:
        return
    printed = io.StringIO()
    try:
        with contextlib.redirect_stdout(printed):
            import mujoco.mjx  # noqa: F401
    except ImportError:  # no MJX (e.g. a robot's install): the env modules name what is missing
        pass
    lines = printed.getvalue().splitlines(keepends=True)
    sys.stdout.write("".join(line for line in lines if not line.startswith(_NOTICES)))
