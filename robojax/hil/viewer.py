"""The teleop page's camera: a thread that renders the watched env's latest state with MuJoCo's
renderer (headless EGL or OSMesa) at a steady rate and hands JPEG frames to the server, however
fast or slow the envs step."""

import io
import threading
import time

import mujoco
import numpy as np

from robojax.io import video


class Viewer:
    def __init__(self, mj_model: mujoco.MjModel, publish, *, fps: float = 20.0,
                 width: int = 320, height: int = 240, quality: int = 80):
        self.mj_model, self._publish, self.fps = mj_model, publish, fps
        self.width, self.height, self.quality = width, height, quality
        self._view: tuple[np.ndarray, np.ndarray | None] | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.frames = 0
        self.error: str | None = None
        self.started: float | None = None  # the first frame's time

    def show(self, qpos: np.ndarray, mocap_pos: np.ndarray | None = None) -> None:
        """The state to render next (the latest wins)."""
        self._view = (np.asarray(qpos), None if mocap_pos is None else np.asarray(mocap_pos))

    def start(self) -> "Viewer":
        self._thread = threading.Thread(target=self._run, name="teleop-viewer", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)

    def rate(self) -> float:
        """Frames per second since the first one."""
        if self.started is None or self.frames < 2:
            return 0.0
        return (self.frames - 1) / max(time.monotonic() - self.started, 1e-9)

    def _run(self) -> None:
        try:
            renderer, data = video.open_renderer(self.mj_model, self.width, self.height)
        except video.RenderUnavailable as err:
            self.error = str(err)
            self._publish(status={"camera_error": self.error})
            return
        period = 1.0 / self.fps
        try:
            while not self._stop.is_set():
                tick = time.monotonic()
                if self._view is not None:
                    self._publish(frame=self._jpeg(video.draw(renderer, data, *self._view)))
                    self.started = self.started or time.monotonic()
                    self.frames += 1
                self._stop.wait(max(0.0, period - (time.monotonic() - tick)))
        finally:
            renderer.close()

    def _jpeg(self, frame: np.ndarray) -> bytes:
        from PIL import Image

        buffer = io.BytesIO()
        Image.fromarray(frame).save(buffer, "JPEG", quality=self.quality)
        return buffer.getvalue()
