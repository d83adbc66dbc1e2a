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


def open_renderer(mj_model: mujoco.MjModel, width: int = 320, height: int = 240
                  ) -> tuple[mujoco.Renderer, mujoco.MjData]:
    """A renderer (within the model's offscreen size) and scratch data for `draw`; raises
    RenderUnavailable with the fix where no GL context can be made."""
    _check_gl()
    width = min(width, mj_model.vis.global_.offwidth)
    height = min(height, mj_model.vis.global_.offheight)
    try:
        renderer = mujoco.Renderer(mj_model, height=height, width=width)
    except Exception as err:  # the GL stack raises several unrelated types
        raise _unavailable(f"error: {err}") from err
    return renderer, mujoco.MjData(mj_model)


def draw(renderer: mujoco.Renderer, data: mujoco.MjData, qpos: np.ndarray,
         mocap_pos: np.ndarray | None = None, camera: int | str = -1) -> np.ndarray:
    """One frame (H, W, 3) of the model at `qpos` with mocap bodies at `mocap_pos`."""
    model = renderer.model
    if camera == -1 and model.ncam > 0:
        camera = 0  # the model's first named camera frames the task better than the free one
    data.qpos[:] = qpos
    if mocap_pos is not None and model.nmocap:
        data.mocap_pos[:] = mocap_pos
    mujoco.mj_forward(model, data)
    renderer.update_scene(data, camera=camera)
    return renderer.render().copy()


def render_qpos(mj_model: mujoco.MjModel, qpos: np.ndarray, mocap_pos: np.ndarray | None = None,
                *, width: int = 320, height: int = 240, camera: int | str = -1) -> list[np.ndarray]:
    """Render each row of `qpos` (T, nq) with mocap bodies at `mocap_pos` (T, nmocap, 3)."""
    renderer, data = open_renderer(mj_model, width, height)
    try:
        return [draw(renderer, data, qpos[t], None if mocap_pos is None else mocap_pos[t],
                     camera) for t in range(qpos.shape[0])]
    finally:
        renderer.close()


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
