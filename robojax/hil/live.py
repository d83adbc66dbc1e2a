"""A person at the teleop page joining a training run (`--hil.teleop`): every step of the
compiled rollout shows them the env they watch and takes their command through one host
callback, which reads the latest input and returns at once; the learner never waits for the
browser. The person overrides the watched env alone; the simulated human (or nobody) covers the
others.

    person = LivePerson.serve(env, num_envs, port=8765)   # prints the page's URL
    mask, executed = join(person, env_state, policy_action, mask, executed)   # in the step
"""

import atexit
import time

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import io_callback

from robojax.hil.operator import Operator
from robojax.hil.server import TeleopServer
from robojax.hil.viewer import Viewer


class LivePerson:
    """The host side: the operator's inputs, the camera and the page's stats."""

    def __init__(self, operator: Operator, server: TeleopServer, viewer: Viewer,
                 status_every: float = 0.05):
        self.operator, self.server, self.viewer = operator, server, viewer
        self.status_every = status_every
        self.steps = self.person_steps = self.episodes = 0
        self.episode_return, self.last_return = 0.0, None
        self._last_status = 0.0

    @classmethod
    def serve(cls, env, num_envs: int, *, host: str = "127.0.0.1", port: int = 8765,
              allow_remote: bool = False, fps: float = 20.0, on_ready=None) -> "LivePerson":
        """Start the page for `num_envs` envs of `env` and print its URL (or hand it to
        `on_ready`)."""
        from robojax.io.progress import console

        operator = Operator(env.unwrapped.teleop_map(), num_envs)
        server = TeleopServer(operator, host=host, port=port, allow_remote=allow_remote)
        url = server.start()
        viewer = Viewer(env.unwrapped.mj_model, server.publish, fps=fps).start()
        (on_ready or (lambda u: console.print(f"teleop page (join the training run): {u}")))(url)
        person = cls(operator, server, viewer)
        atexit.register(person.close)  # the camera's GL context goes before the interpreter
        return person

    def close(self) -> None:
        self.viewer.stop()
        self.server.stop()

    def exchange(self, qpos, mocap_pos, policy_action, reward, done):
        """One step, called from the compiled rollout: show the watched env, return (watched
        env, -1 while no page is open; whether the person holds it; their action)."""
        # JAX hands callbacks device arrays; indexing those would dispatch a computation each.
        qpos, mocap_pos, policy_action, reward, done = (
            np.asarray(x) for x in (qpos, mocap_pos, policy_action, reward, done))
        watched = self.operator.watched
        self.viewer.show(qpos[watched], mocap_pos[watched])
        command = self.operator.command(policy_action[watched])
        self._count(command, float(reward[watched]), bool(done[watched]))
        action = command.action if command.takeover else policy_action[watched]
        # With no page open the watched env is nobody's: the simulated human keeps it.
        return (np.int32(watched if self.operator.connected else -1),
                np.bool_(command.takeover), np.asarray(action, np.float32))

    def _count(self, command, reward: float, done: bool) -> None:
        self.steps += 1
        self.person_steps += int(command.takeover)
        self.episode_return += reward
        if done:
            self.episodes, self.last_return, self.episode_return = (
                self.episodes + 1, self.episode_return, 0.0)
        now = time.monotonic()
        if now - self._last_status >= self.status_every:
            self._last_status = now
            self.server.publish(status={
                "mode": "train", "step": self.steps, "return": self.episode_return,
                "takeover": command.takeover, "intervention_steps": self.person_steps,
                "applied_seq": command.seq, "episodes_seen": self.episodes})


def join(person: LivePerson, env_state, policy_action: jax.Array, mask: jax.Array,
         executed: jax.Array) -> tuple[jax.Array, jax.Array]:
    """The takeover mask and executed actions with the person's command applied to the env
    they watch (replacing the simulated human's there while their page is open)."""
    action_shape = jax.ShapeDtypeStruct(policy_action.shape[1:], jnp.float32)
    shapes = (jax.ShapeDtypeStruct((), jnp.int32), jax.ShapeDtypeStruct((), jnp.bool_),
              action_shape)
    data = env_state.data
    watched, takeover, action = io_callback(
        person.exchange, shapes, data.qpos, data.mocap_pos, policy_action, env_state.reward,
        env_state.done)
    theirs = jnp.arange(mask.shape[0]) == watched  # all False while no page is open
    mask = jnp.where(theirs, takeover, mask)
    executed = jnp.where(theirs[:, None], jnp.where(takeover, action, policy_action), executed)
    return mask, executed
