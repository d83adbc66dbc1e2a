"""A person at the teleop page, as the learner or the recorder sees them: what arrives from the
browser goes through a bounded queue, is checked, and is read without ever waiting.

    operator = Operator(env.teleop_map(), num_envs=1)
    operator.receive(text)                    # from the websocket, any thread
    command = operator.command(previous)      # from the control loop, once per step
    if command.takeover: action = command.action

A message is JSON: {"type": "input", "seq": n, "keys": [...], "axes": [...], "takeover": bool}
on each change of the keys, the takeover switch or the gamepad (polled); {"type": "watch",
"env": i}; {"type": "episode", "outcome": "success" | "failure"}. Anything else, or a field
out of range, is dropped and counted; inputs older than `max_age` seconds when the control
loop reads them are dropped and counted as stale; a full queue drops its oldest. A disconnect
hands control back to the policy.
"""

import collections
import dataclasses
import json
import math
import threading
import time

import numpy as np

from robojax.core.teleop import TeleopMap

MAX_KEYS = 16
MAX_AXES = 8
MAX_MESSAGE = 4096
"""Bytes of the longest message accepted."""


@dataclasses.dataclass(frozen=True)
class Command:
    takeover: bool
    """Whether the person holds the watched env this step."""
    action: np.ndarray | None
    """Their action (normalized), None when they do not hold it."""
    seq: int
    """The sequence number of the input it came from (-1: none yet)."""
    watched: int
    """The env the person watches."""


class Operator:
    """The person's latest input, the env they watch and the events they raised (thread-safe:
    the server writes, the control loop reads)."""

    def __init__(self, keymap: TeleopMap, num_envs: int = 1, *, max_age: float = 0.5,
                 queue_size: int = 64, clock=time.monotonic):
        self.keymap, self.num_envs, self.max_age, self._clock = keymap, num_envs, max_age, clock
        self._queue = collections.deque(maxlen=queue_size)
        self._lock = threading.Lock()
        self._pressed: frozenset[str] = frozenset()
        self._axes: tuple[float, ...] = ()
        self._takeover = False
        self._held: np.ndarray | None = None  # an integrated target while taking over
        self._seq, self._arrived, self._timed_seq = -1, 0.0, -1
        self.latencies: list[float] = []
        """Seconds from each input's arrival to the first command that carried it (the control
        loop applies a command on the step it reads it)."""
        self._events: list[str] = []
        self.watched = 0
        self.connected = 0
        self.counts = {"received": 0, "malformed": 0, "stale": 0, "overflow": 0}

    # -- the server's side ----------------------------------------------------------------------
    def receive(self, text: str | bytes) -> bool:
        """Queue one message from the page; False (and counted) when it is malformed."""
        message = _parse(text, self.num_envs)
        with self._lock:
            self.counts["received"] += 1
            if message is None:
                self.counts["malformed"] += 1
                return False
            if message["type"] == "watch":
                self.watched = message["env"]
                self._release()
            elif message["type"] == "episode":
                self._events.append(message["outcome"])
            else:
                if len(self._queue) == self._queue.maxlen:
                    self.counts["overflow"] += 1
                self._queue.append((self._clock(), message))
            return True

    def connect(self) -> None:
        with self._lock:
            self.connected += 1

    def disconnect(self) -> None:
        """A page went away: control returns to the policy."""
        with self._lock:
            self.connected = max(0, self.connected - 1)
            if not self.connected:
                self._queue.clear()
                self._release()

    # -- the control loop's side ----------------------------------------------------------------
    def command(self, previous: np.ndarray) -> Command:
        """The person's command for this step, given the action `previous`ly executed in the
        watched env; never blocks on the page."""
        with self._lock:
            now = self._clock()
            while self._queue:
                arrived, message = self._queue.popleft()
                if now - arrived > self.max_age:
                    self.counts["stale"] += 1
                    continue
                self._apply(message, arrived)
            if self._seq != self._timed_seq:
                self.latencies.append(now - self._arrived)
                self._timed_seq = self._seq
            if not self._takeover:
                return Command(False, None, self._seq, self.watched)
            start = previous if self._held is None else self._held
            action = self.keymap.action(self._pressed, self._axes, start)
            self._held = action if self.keymap.integrate else None
            return Command(True, action, self._seq, self.watched)

    def latency_ms(self) -> dict:
        """p50/p99 of `latencies` in milliseconds (None before any input)."""
        if not self.latencies:
            return {"latency_ms_p50": None, "latency_ms_p99": None}
        ms = 1000 * np.asarray(self.latencies)
        return {"latency_ms_p50": float(np.percentile(ms, 50)),
                "latency_ms_p99": float(np.percentile(ms, 99))}

    def events(self) -> list[str]:
        """The episode outcomes the person declared since the last call."""
        with self._lock:
            events, self._events = self._events, []
            return events

    def _apply(self, message: dict, arrived: float) -> None:
        self._pressed, self._axes = frozenset(message["keys"]), tuple(message["axes"])
        self._seq, self._arrived = message["seq"], arrived
        if not message["takeover"]:
            self._release()
        self._takeover = message["takeover"]

    def _release(self) -> None:
        self._takeover, self._held = False, None
        self._pressed, self._axes = frozenset(), ()


def _parse(text: str | bytes, num_envs: int) -> dict | None:
    """The message as a checked dict, None when anything about it is wrong."""
    if len(text) > MAX_MESSAGE:
        return None
    try:
        message = json.loads(text)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(message, dict):
        return None
    kind = message.get("type")
    if kind == "watch":
        env = message.get("env")
        ok = _is_int(env) and 0 <= env < num_envs
        return {"type": "watch", "env": env} if ok else None
    if kind == "episode":
        outcome = message.get("outcome")
        return {"type": "episode", "outcome": outcome} if outcome in ("success",
                                                                      "failure") else None
    if kind != "input":
        return None
    keys, axes = message.get("keys", []), message.get("axes", [])
    seq, takeover = message.get("seq"), message.get("takeover")
    if not (_is_int(seq) and seq >= 0 and isinstance(takeover, bool)
            and isinstance(keys, list) and len(keys) <= MAX_KEYS
            and all(isinstance(k, str) and 0 < len(k) <= 32 for k in keys)
            and isinstance(axes, list) and len(axes) <= MAX_AXES
            and all(_is_number(a) and -1.0 <= a <= 1.0 for a in axes)):
        return None
    return {"type": "input", "seq": seq, "keys": keys, "axes": [float(a) for a in axes],
            "takeover": takeover}


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
