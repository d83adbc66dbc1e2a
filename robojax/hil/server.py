"""The teleop page's server: the page's three files and one websocket, on aiohttp, in a thread of
its own so that neither a control loop nor a learner ever waits for a browser.

    server = TeleopServer(operator)           # 127.0.0.1, a random token
    url = server.start()                      # http://127.0.0.1:8765/?token=...
    server.publish(frame=jpeg_bytes, status={...})   # from any thread; only the latest is sent

Every request, the websocket's included, must carry the token (`?token=`); nothing but the
page's own files is served. Binding to an address other than loopback needs `allow_remote`,
and prints a warning: anyone who can reach the port and holds the URL drives the robot.
"""

import asyncio
import hmac
import json
import re
import secrets
import threading
from pathlib import Path

from robojax.hil.operator import Operator

PAGE = Path(__file__).parent / "page"
ASSETS = {"/": ("index.html", "text/html"), "/teleop.js": ("teleop.js", "text/javascript"),
          "/teleop.css": ("teleop.css", "text/css")}
LOOPBACK = ("127.0.0.1", "localhost", "::1")


def _aiohttp():
    try:
        from aiohttp import web
    except ImportError as err:
        raise ImportError("robojax teleop serves its page with aiohttp: pip install "
                          "'robojax[teleop]' (or pip install aiohttp).") from err
    return web


class TeleopServer:
    def __init__(self, operator: Operator, *, host: str = "127.0.0.1", port: int = 8765,
                 token: str | None = None, allow_remote: bool = False):
        if host not in LOOPBACK and not allow_remote:
            raise ValueError(f"--host {host} would open the teleop page (and control of the "
                             "envs) to other machines; pass --allow-remote to mean it, or keep "
                             "the default 127.0.0.1.")
        if token is not None and not re.fullmatch(r"[A-Za-z0-9_-]{16,}", token):
            raise ValueError("a teleop token must be 16 or more letters, digits, '-' or '_'; "
                             "leave it out for a random one.")
        self.operator, self.host, self.port = operator, host, port
        self.token = token or secrets.token_urlsafe(16)
        self.allow_remote = host not in LOOPBACK
        self.refused = 0
        self._frame: bytes | None = None
        self._frame_id = 0
        self._status: dict = {}
        self._version = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Condition | None = None
        self._runner = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/?token={self.token}"

    def start(self, timeout: float = 10.0) -> str:
        """Serve in a daemon thread; returns the page's URL once the port is bound."""
        web = _aiohttp()
        ready, failure = threading.Event(), []

        def serve():
            self._loop = asyncio.new_event_loop()
            asyncio.set_event_loop(self._loop)
            try:
                self._loop.run_until_complete(self._bind(web))
            except Exception as err:  # noqa: BLE001 - handed to the starting thread
                failure.append(err)
                ready.set()
                return
            ready.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=serve, name="teleop-server", daemon=True)
        self._thread.start()
        if not ready.wait(timeout):
            raise TimeoutError(f"the teleop server did not start within {timeout} s.")
        if failure:
            raise OSError(f"the teleop server could not listen on {self.host}:{self.port} "
                          f"({failure[0]}); pick another --port.") from failure[0]
        return self.url

    def stop(self) -> None:
        if self._loop is None or not self._loop.is_running():
            return
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def publish(self, *, frame: bytes | None = None, status: dict | None = None) -> None:
        """Hand the page a new camera frame (JPEG) and/or status; a page that is behind gets
        only the latest."""
        if frame is not None:
            self._frame, self._frame_id = frame, self._frame_id + 1
        if status is not None:
            self._status = {**self._status, **status}
        self._version += 1
        if self._loop is not None and self._wake is not None:
            self._loop.call_soon_threadsafe(lambda: asyncio.ensure_future(self._notify()))

    # -- inside the server's loop ---------------------------------------------------------------
    async def _bind(self, web) -> None:
        self._wake = asyncio.Condition()
        app = web.Application(middlewares=[self._check_token(web)], client_max_size=8192)
        app.router.add_get("/ws", self._websocket)
        for path in ASSETS:
            app.router.add_get(path, self._asset)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # the bound one, when 0 was asked

    def _check_token(self, web):
        @web.middleware
        async def check(request, handler):
            given = request.query.get("token", "")
            if not hmac.compare_digest(given.encode(), self.token.encode()):
                self.refused += 1
                raise web.HTTPForbidden(text="missing or wrong token: open the URL that "
                                        "robojax teleop printed.")
            return await handler(request)
        return check

    async def _asset(self, request):
        web = _aiohttp()
        name, content_type = ASSETS[request.path]
        body = (PAGE / name).read_text().replace("{{token}}", self.token)
        return web.Response(text=body, content_type=content_type,
                            headers={"Cache-Control": "no-store"})

    async def _notify(self) -> None:
        async with self._wake:
            self._wake.notify_all()

    async def _websocket(self, request):
        web = _aiohttp()
        ws = web.WebSocketResponse(max_msg_size=8192, heartbeat=5.0)
        await ws.prepare(request)
        self.operator.connect()
        sender = asyncio.ensure_future(self._send_updates(ws))
        try:
            async for message in ws:
                if message.type in (web.WSMsgType.TEXT, web.WSMsgType.BINARY):
                    self.operator.receive(message.data)
        finally:
            sender.cancel()
            self.operator.disconnect()
        return ws

    async def _send_updates(self, ws) -> None:
        """Send the latest frame and status whenever they change, skipping what a slow page
        missed."""
        seen, frame_sent = -1, 0
        while not ws.closed:
            async with self._wake:
                await self._wake.wait_for(lambda seen=seen: self._version != seen or ws.closed)
            seen = self._version
            try:
                if self._frame_id != frame_sent:
                    frame_sent = self._frame_id
                    await ws.send_bytes(self._frame)
                status = {**self._status, **self._operator_status()}
                await ws.send_str(json.dumps(status))
            except (ConnectionError, RuntimeError):
                return

    def _operator_status(self) -> dict:
        op = self.operator
        return {"watched": op.watched, "num_envs": op.num_envs, "counts": dict(op.counts),
                "keys": op.keymap.describe(), "integrate": op.keymap.integrate}
