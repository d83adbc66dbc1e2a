"""The teleop page (`robojax teleop`, `--hil.teleop`): key maps, the operator's input checks, the
server's token, and Playwright driving the real page in headless Chromium."""

import json
import shutil
import threading
import time
import urllib.error
import urllib.request

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from robojax.envs import make as make_env

from robojax.algos import sac
from robojax.core.controller import Controller
from robojax.core.teleop import TeleopMap, default_map
from robojax.data import demos
from robojax.hil.operator import Operator
from robojax.hil.server import TeleopServer

pytestmark = pytest.mark.quick_compile  # compile-bound (tests/conftest.py)

ARROWS = default_map(2)


def _input(seq, keys=(), takeover=True, axes=()):
    return json.dumps({"type": "input", "seq": seq, "keys": list(keys), "axes": list(axes),
                       "takeover": takeover})


# -- key maps -------------------------------------------------------------------------------------
def test_keys_set_a_force_and_move_a_held_target():
    zero = np.zeros(2, np.float32)
    np.testing.assert_allclose(ARROWS.action({"ArrowRight", "ArrowUp"}, (), zero), [1, 1])
    np.testing.assert_allclose(ARROWS.action({"ArrowRight", "ArrowLeft"}, (), zero), [0, 0])
    # The left stick: x right is +, y down (the browser's) is -; small deflections are ignored.
    np.testing.assert_allclose(ARROWS.action(set(), (0.5, 0.5), zero), [0.5, -0.5])
    np.testing.assert_allclose(ARROWS.action(set(), (0.1, -0.1), zero), [0, 0])
    target = TeleopMap(keys=ARROWS.keys, integrate=True, rate=0.1)
    np.testing.assert_allclose(target.action({"ArrowLeft"}, (), np.array([0.3, 0.2])),
                               [0.2, 0.2], atol=1e-6)
    np.testing.assert_allclose(target.action({"ArrowRight"}, (), np.array([0.95, 0.0])), [1, 0])
    assert make_env("push-t").teleop_map().integrate
    assert not make_env("pusher").teleop_map().integrate
    with pytest.raises(ValueError, match="declare the task's own"):
        default_map(9)


# -- the operator ---------------------------------------------------------------------------------
GARBAGE = ["not json", "[1, 2]", json.dumps({"type": "fly"}), _input(-1),
           _input(1, keys=[7]), _input(1, axes=[2.0]), _input(1, axes=[float("nan")]),
           json.dumps({"type": "input", "seq": 1, "keys": [], "axes": [], "takeover": "yes"}),
           json.dumps({"type": "watch", "env": 5}), json.dumps({"type": "watch", "env": True}),
           json.dumps({"type": "episode", "outcome": "maybe"}), _input(1, keys=["k"] * 17),
           "x" * 5000, b"\xff\xfe"]


def test_malformed_messages_are_dropped_and_counted():
    operator = Operator(ARROWS, num_envs=2)
    for message in GARBAGE:
        assert not operator.receive(message)
    assert operator.counts["malformed"] == len(GARBAGE)
    command = operator.command(np.zeros(2))
    assert not command.takeover and command.seq == -1 and operator.watched == 0


def test_inputs_go_stale_overflow_and_end_with_a_disconnect():
    now = [0.0]
    operator = Operator(ARROWS, num_envs=3, max_age=0.5, queue_size=4, clock=lambda: now[0])
    operator.connect()
    operator.receive(_input(1, ["ArrowUp"]))
    now[0] = 1.0  # read too late: dropped
    assert not operator.command(np.zeros(2)).takeover and operator.counts["stale"] == 1
    for seq in range(2, 8):  # a queue of 4 drops the oldest two
        operator.receive(_input(seq, ["ArrowUp"]))
    command = operator.command(np.zeros(2))
    assert operator.counts["overflow"] == 2
    assert command.takeover and command.seq == 7
    np.testing.assert_allclose(command.action, [0, 1])
    assert operator.command(np.zeros(2)).takeover  # the last input holds until changed
    operator.disconnect()
    assert not operator.command(np.zeros(2)).takeover
    # Watching another env hands the first back; outcomes are read once.
    operator.connect()
    operator.receive(_input(8, ["ArrowUp"]))
    assert operator.command(np.zeros(2)).takeover
    operator.receive(json.dumps({"type": "watch", "env": 2}))
    operator.receive(json.dumps({"type": "episode", "outcome": "success"}))
    command = operator.command(np.zeros(2))
    assert not command.takeover and command.watched == 2
    assert operator.events() == ["success"] and operator.events() == []
    assert operator.latencies == [0.0, 0.0]  # inputs 7 and 8, each timed once, read at once


def test_a_held_target_starts_from_the_last_action_and_moves():
    operator = Operator(make_env("push-t").teleop_map())
    operator.receive(_input(1, ["ArrowRight"]))
    first = operator.command(np.array([0.2, -0.4]))
    second = operator.command(np.array([9.0, 9.0]))  # the held target, not this, goes on
    np.testing.assert_allclose(first.action, [0.25, -0.4], atol=1e-6)
    np.testing.assert_allclose(second.action, [0.30, -0.4], atol=1e-6)


# -- the server -----------------------------------------------------------------------------------
def _get(url):
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


@pytest.fixture
def server():
    server = TeleopServer(Operator(ARROWS), port=0)
    server.start()
    yield server
    server.stop()


def test_every_request_needs_the_token_and_only_the_page_is_served(server):
    base = f"http://127.0.0.1:{server.port}"
    status, body = _get(server.url)
    assert status == 200 and f"teleop.js?token={server.token}" in body
    assert _get(f"{base}/teleop.js?token={server.token}")[0] == 200
    for path in ("/", "/teleop.js", "/ws", f"/?token={server.token[:-1]}x"):
        status, body = _get(base + path)
        assert status == 403 and "token" in body
    for path in ("/../pyproject.toml", "/robojax/hil/server.py", "/page/index.html"):
        assert _get(f"{base}{path}?token={server.token}")[0] == 404
    assert server.refused == 4


def test_serving_beyond_loopback_must_be_asked_for():
    with pytest.raises(ValueError, match="--allow-remote"):
        TeleopServer(Operator(ARROWS), host="0.0.0.0")
    with pytest.raises(ValueError, match="16 or more"):
        TeleopServer(Operator(ARROWS), token="short")
    assert TeleopServer(Operator(ARROWS), host="0.0.0.0", allow_remote=True).allow_remote


# -- what the learner stores ----------------------------------------------------------------------
def test_rlif_reward_marks_the_policy_action_where_a_takeover_starts():
    transition = {"obs": jnp.zeros((3, 2)), "action": jnp.ones((3, 1)),
                  "reward": jnp.array([0.5, 0.5, 0.5]), "discount": jnp.ones(3),
                  "next_obs": jnp.zeros((3, 2))}
    extra = {"policy_action": jnp.full((3, 1), -0.3), "intervened": jnp.array([1, 1, 0], bool),
             "takeover_start": jnp.array([1, 0, 0], bool)}
    out = sac.rlif_relabel(transition, extra)
    np.testing.assert_allclose(out["reward"], [-1, 0, 0])
    np.testing.assert_allclose(out["action"][:, 0], [-0.3, 1, 1])
    np.testing.assert_allclose(out["discount"], [0, 1, 1])


def test_intervention_flags_survive_the_file(tmp_path):
    episode = {"obs": np.zeros((4, 3)), "actions": np.ones((4, 2)), "rewards": np.zeros(4),
               "dones": np.array([0, 0, 0, 1]), "interventions": np.array([0, 1, 1, 0], bool)}
    demos.save(tmp_path / "d.hdf5", demos.from_episodes([episode, episode], "pusher"))
    loaded = demos.load(tmp_path / "d.hdf5")
    np.testing.assert_array_equal(loaded.interventions, np.tile([0, 1, 1, 0], 2).astype(bool))


def test_nobody_watching_needs_a_person():
    cfg = sac.HILConfig(intervener="none")
    with pytest.raises(ValueError, match="--hil.teleop"):
        cfg.validate()


# -- the real page in headless Chromium -----------------------------------------------------------
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
POLICY_ACTION = np.array([-0.5, 0.5], np.float32)
POLICY = Controller(init=lambda state: (), step=lambda carry, state, key: (
    jnp.broadcast_to(jnp.asarray(POLICY_ACTION), (state.obs.shape[0], 2)), carry))


@pytest.fixture(scope="module")
def browser():
    if CHROMIUM is None:
        pytest.skip("no chromium: `make test` installs Debian's (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run"])
        yield browser
        browser.close()


class Session:
    """`robojax.hil.record.record` in a thread, recording pusher with POLICY."""

    def __init__(self, tmp_path, **kwargs):
        from robojax.hil.record import ServeConfig, record

        self.out, self.stop, self.stats, urls = tmp_path / "human.hdf5", threading.Event(), {}, []
        self.thread = threading.Thread(target=lambda: self.stats.update(record(
            "pusher", self.out, 1, env_config={"episode_length": 5000}, policy=POLICY,
            serve=ServeConfig(port=0), on_ready=urls.append, stop=self.stop, **kwargs)))
        self.thread.start()
        while not urls:
            time.sleep(0.02)
        self.url = urls[0]

    def finish(self) -> demos.Demos:
        self.stop.set()
        self.thread.join(30)
        return demos.load(self.out)


def _wait(page, condition):
    page.wait_for_function(f"(() => {{ const s = window.teleop.status; return {condition}; }})()",
                           timeout=30_000)


@pytest.mark.slow
def test_the_page_drives_the_env_and_the_file_records_what_was_pressed(browser, tmp_path):
    session = Session(tmp_path)
    try:
        refused = browser.new_page()
        assert refused.goto(session.url.split("?")[0]).status == 403
        page = browser.new_page()
        page.goto(session.url)
        _wait(page, "s.step > 20")  # the env runs, the policy acts
        # A frame is counted when it arrives and shown once the browser has decoded it.
        page.wait_for_function("document.getElementById('frame').naturalWidth === 320",
                               timeout=30_000)
        page.keyboard.down("ArrowRight")  # a mapped key takes over
        _wait(page, "s.takeover && s.intervention_steps > 10")
        page.keyboard.up("ArrowRight")
        page.keyboard.press(" ")  # and Space hands back
        _wait(page, "!s.takeover")
        held = page.evaluate("window.teleop.status.intervention_steps")
        # Garbage on the page's own socket changes nothing.
        sent = page.evaluate("""(messages) => { for (const m of messages)
            window.teleop.socket.send(m); return messages.length; }""",
                             [m if isinstance(m, str) else "\ufffd" for m in GARBAGE])
        _wait(page, f"s.counts.malformed >= {sent} && s.step > 0")
        time.sleep(0.2)
        status = page.evaluate("window.teleop.status")
        assert not status["takeover"] and status["intervention_steps"] == held
        page.keyboard.press("Enter")  # success ends the episode
        session.thread.join(30)
        recorded = demos.load(session.out)
    finally:
        session.finish()
    flags = recorded.interventions
    assert session.stats["outcomes"] == ["success"] and flags.sum() == held
    # The takeover is one stretch: keyed actions inside, the policy's outside.
    start = int(np.argmax(flags))
    assert flags[start:start + held].all()
    keyed = {tuple(a) for a in recorded.actions[flags]}
    assert (1.0, 0.0) in keyed and keyed <= {(1.0, 0.0), (0.0, 0.0)}
    np.testing.assert_array_equal(recorded.actions[~flags],
                                  np.broadcast_to(POLICY_ACTION, (int((~flags).sum()), 2)))
    assert session.stats["counts"]["malformed"] == len(GARBAGE)
    assert session.stats["latency_ms_p50"] is not None


@pytest.mark.slow
def test_a_disconnect_mid_takeover_returns_control_to_the_policy(browser, tmp_path):
    session = Session(tmp_path)
    try:
        page = browser.new_page()
        page.goto(session.url)
        _wait(page, "s.step > 5")
        page.keyboard.down("ArrowUp")
        _wait(page, "s.takeover && s.intervention_steps > 10")
        page.close()  # mid-takeover, the key still down
        time.sleep(1.0)  # ~100 steps of the policy at 100 Hz
    finally:
        recorded = session.finish()
    flags = recorded.interventions
    assert flags.any() and not flags[-20:].any()
    np.testing.assert_array_equal(recorded.actions[-20:], np.broadcast_to(POLICY_ACTION, (20, 2)))
    assert {tuple(a) for a in recorded.actions[flags]} == {(0.0, 1.0)}


FAKE_GAMEPAD = """
window.fakePad = {axes: [0, 0, 0, 0], buttons: [{pressed: false}]};
Object.defineProperty(navigator, "getGamepads", {value: () => [window.fakePad]});
"""


@pytest.mark.slow
def test_the_gamepad_is_polled_its_stick_takes_over_and_its_button_hands_back(browser,
                                                                               tmp_path):
    session = Session(tmp_path)
    try:
        context = browser.new_context()
        context.add_init_script(FAKE_GAMEPAD)  # headless Chromium has no pad: a stand-in
        page = context.new_page()
        page.goto(session.url)
        _wait(page, "s.step > 5")
        page.evaluate("window.fakePad.axes = [0.8, 0, 0, 0]")  # left stick right
        _wait(page, "s.takeover && s.intervention_steps > 10")
        page.evaluate("window.fakePad.axes = [0, 0, 0, 0]; "
                      "window.fakePad.buttons[0].pressed = true")  # A hands back
        _wait(page, "!s.takeover")
        handed_back = page.evaluate("window.teleop.status.step")
        _wait(page, f"s.step > {handed_back + 20}")
        context.close()
    finally:
        recorded = session.finish()
    flags = recorded.interventions
    stick = np.all(np.isclose(recorded.actions, [0.8, 0.0]), axis=1)
    centred = np.all(recorded.actions == 0.0, axis=1)
    assert stick[flags].any() and np.all(stick[flags] | centred[flags])
    assert not flags[-20:].any()


@pytest.mark.slow
def test_a_person_joins_a_training_run_on_the_env_they_watch(browser):
    cfg = sac.HILConfig(num_envs=4, batch_size=8, learning_starts=8, buffer_capacity=8192,
                        intervention_capacity=8192, grad_updates_per_step=1, rollout_length=8,
                        critic_updates_per_actor=1, num_critics=2, policy_hidden_sizes=(8,),
                        critic_hidden_sizes=(4,), num_eval_envs=2, episode_length=200,
                        intervener="none", teleop=True, teleop_port=0)
    env = make_env("point-mass")
    train_input = sac.make_train_input(cfg, env)
    person = train_input.person
    # The collection step alone: it is where the person joins (a program with a host callback
    # is compiled anew each time, so the test keeps it small).
    collect = jax.jit(lambda s, k: sac.collect(cfg, train_input, s, k))
    rows = []
    try:
        state = sac.init(cfg, env, train_input, jax.random.PRNGKey(0))
        page = browser.new_page()
        page.goto(person.server.url)
        state, _, _ = collect(state, jax.random.PRNGKey(1))
        _wait(page, "s.mode === 'train' && s.num_envs === 4")
        page.fill("#watch", "2")
        page.dispatch_event("#watch", "change")
        page.keyboard.down("ArrowLeft")
        deadline = time.monotonic() + 20
        for i in range(1000):
            state, steps, info = collect(state, jax.random.PRNGKey(i))
            rows.append(jax.tree.map(lambda x: np.asarray(x).reshape(-1, *x.shape[2:]), steps))
            if person.person_steps >= 40 or time.monotonic() > deadline:
                break
        page.keyboard.up("ArrowLeft")
    finally:
        person.close()
    data = {k: np.concatenate([r[k] for r in rows]) for k in rows[0]}
    taken = np.flatnonzero(data["intervened"])
    assert len(taken) >= 40 and set(taken % 4) == {2}  # rows are (step, env) flattened
    assert {tuple(a) for a in data["action"][taken]} == {(-1.0, 0.0)}
    assert not np.allclose(data["policy_action"][taken], -1.0)  # the policy's own, kept
    assert int(info["hil/intervention_steps"]) == data["intervened"][-cfg.rollout_length * 4:].sum()
    assert person.viewer.frames > 0


def test_a_person_joins_one_run_not_several_seeds():
    from robojax.runs import TrainArgs

    args = TrainArgs(algo="hil", env="pusher", num_seeds=2, hil=sac.HILConfig(teleop=True))
    with pytest.raises(ValueError, match="drop --num-seeds 2"):
        args.validate()


def test_the_person_overrides_only_the_env_they_watch_while_their_page_is_open():
    from types import SimpleNamespace

    from robojax.hil.live import join

    answers = []
    person = SimpleNamespace(exchange=lambda *arrays: answers[-1])
    env_state = SimpleNamespace(data=SimpleNamespace(qpos=jnp.zeros((3, 2)),
                                                     mocap_pos=jnp.zeros((3, 0, 3))),
                                reward=jnp.zeros(3), done=jnp.zeros(3, bool))
    policy = jnp.full((3, 2), 0.5)
    simulated = (jnp.array([True, True, False]), policy.at[:2].set(-0.2))  # mask, executed
    keyed = np.array([1.0, 0.0], np.float32)
    run = jax.jit(lambda: join(person, env_state, policy, *simulated))
    for watched, takeover, mask, row0, row1 in (
            (-1, True, [1, 1, 0], -0.2, -0.2),  # no page: the simulated human's, as it was
            (1, True, [1, 1, 0], -0.2, 1.0),  # env 1 is the person's: their keyed action
            (0, False, [0, 1, 0], 0.5, -0.2)):  # held by nobody: the policy's own
        answers.append((np.int32(watched), np.bool_(takeover), keyed))
        got_mask, executed = run()
        np.testing.assert_array_equal(got_mask, np.array(mask, bool))
        assert executed[0, 0] == pytest.approx(row0) and executed[1, 0] == pytest.approx(row1)
