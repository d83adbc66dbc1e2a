"""Render MuJoCo states with `mujoco.Renderer` and write them as mp4 (or gif)."""

from pathlib import Path

import mujoco
import numpy as np

import robojax
from robojax._gl import can_render

GL_HELP = ("No OpenGL backend could be created for rendering. On a headless Linux machine "
           "install Mesa's EGL (Debian/Ubuntu: `apt-get install libegl1 libgl1-mesa-dri`) and set "
           "MUJOCO_GL=egl, or install OSMesa and set MUJOCO_GL=osmesa.")


class RenderUnavailable(RuntimeError):
    """Rendering is impossible on this machine; the message says how to enable it."""


_failure: str | None = None  # a GL stack that failed once can abort the process if retried


def _check_gl() -> None:
    if _failure is not None:
        raise RenderUnavailable(_failure)
    if not can_render(robojax.GL_BACKEND):
        raise _unavailable(f"MUJOCO_GL is {robojax.GL_BACKEND or 'unset'} and there is no display")


def _unavailable(reason: str) -> RenderUnavailable:
    global _failure
    _failure = f"{GL_HELP} ({reason})"
    return RenderUnavailable(_failure)


def render_qpos(mj_model: mujoco.MjModel, qpos: np.ndarray, mocap_pos: np.ndarray | None = None,
                *, width: int = 320, height: int = 240, camera: int | str = -1) -> list[np.ndarray]:
    """Render each row of `qpos` (T, nq) with mocap bodies at `mocap_pos` (T, nmocap, 3)."""
    _check_gl()
    if camera == -1 and mj_model.ncam > 0:
        camera = 0  # the model's first named camera frames the task better than the free one
    width = min(width, mj_model.vis.global_.offwidth)
    height = min(height, mj_model.vis.global_.offheight)
    try:
        renderer = mujoco.Renderer(mj_model, height=height, width=width)
    except Exception as err:  # the GL stack raises several unrelated types
        raise _unavailable(f"error: {err}") from err
    data = mujoco.MjData(mj_model)
    frames = []
    try:
        for t in range(qpos.shape[0]):
            data.qpos[:] = qpos[t]
            if mocap_pos is not None and mj_model.nmocap:
                data.mocap_pos[:] = mocap_pos[t]
            mujoco.mj_forward(mj_model, data)
            renderer.update_scene(data, camera=camera)
            frames.append(renderer.render().copy())
    finally:
        renderer.close()
    return frames


def write_video(path: str | Path, frames: list[np.ndarray], fps: float = 30.0) -> Path:
    """Write frames to `path` (.mp4 through the bundled ffmpeg, or .gif); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".gif":
        import imageio.v3 as iio

        iio.imwrite(path, np.stack(frames), duration=1000.0 / fps, loop=0)
        return path
    import imageio_ffmpeg
    import mediapy

    mediapy.set_ffmpeg(imageio_ffmpeg.get_ffmpeg_exe())
    mediapy.write_video(str(path), frames, fps=fps)
    return path
