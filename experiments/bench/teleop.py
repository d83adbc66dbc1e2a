"""The teleop page under load: camera frames per second at 320x240 and key-press-to-applied-
action latency (p50/p99), in a recording session and while a HIL training run goes on; the
training run's throughput with the person's callback in its step beside the same run without it.

Playwright drives the real page in headless Chromium (Debian's, as the tests do) and presses
arrow keys at random intervals. The page measures from keydown to the status that reports the
input applied (a round trip: an upper bound); the server measures from the input's arrival to
the step that applied it.

    python experiments/bench/teleop.py [--presses 200] [--envs 64]
"""

import argparse
import dataclasses
import shutil
import tempfile
import threading
import time
from pathlib import Path

import jax
import numpy as np
from robojax.envs import make as make_env

from robojax.algos import sac

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


def _press(page, presses: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    for i in range(presses):
        key = ("ArrowLeft", "ArrowRight", "ArrowUp", "ArrowDown")[i % 4]
        page.keyboard.down(key)
        time.sleep(rng.uniform(0.03, 0.12))
        page.keyboard.up(key)
        time.sleep(rng.uniform(0.03, 0.12))


def _page_numbers(page) -> dict:
    latencies = np.asarray(page.evaluate("window.teleop.latencies"), float)
    return {"page_p50_ms": float(np.percentile(latencies, 50)),
            "page_p99_ms": float(np.percentile(latencies, 99)), "page_samples": len(latencies)}


def recording(browser, presses: int) -> dict:
    """`robojax teleop pusher` (100 Hz control, real time) with keys pressed on the page."""
    from robojax.hil.record import ServeConfig, record

    stop, urls, stats = threading.Event(), [], {}
    with tempfile.TemporaryDirectory() as tmp:
        thread = threading.Thread(target=lambda: stats.update(record(
            "pusher", Path(tmp) / "h.hdf5", 1, env_config={"episode_length": 100_000},
            serve=ServeConfig(port=0), on_ready=urls.append, stop=stop)))
        thread.start()
        while not urls:
            time.sleep(0.05)
        page = browser.new_page()
        page.goto(urls[0])
        page.wait_for_function("window.teleop.status.step > 10", timeout=60_000)
        _press(page, presses)
        numbers = _page_numbers(page)
        numbers["page_fps"] = page.evaluate("window.teleop.fps")
        page.close()
        stop.set()
        thread.join(60)
    return {**numbers, **_server(stats), "camera_fps": stats["frames_per_second"]}


def _server(latency: dict) -> dict:
    return {"server_p50_ms": latency["latency_ms_p50"],
            "server_p99_ms": latency["latency_ms_p99"]}


def _hil_config(envs: int, teleop: bool) -> sac.HILConfig:
    return sac.HILConfig(num_envs=envs, batch_size=128, grad_updates_per_step=1,
                         critic_updates_per_actor=1, rollout_length=32, learning_starts=512,
                         policy_hidden_sizes=(64, 64), critic_hidden_sizes=(64, 64),
                         num_critics=2, teleop=teleop, teleop_port=0,
                         human=dataclasses.replace(sac.HILConfig().human, attention=envs // 4))


def _compiled(envs: int, teleop: bool):
    env = make_env("pusher")
    cfg = _hil_config(envs, teleop)
    train_input = sac.make_train_input(cfg, env)
    state = sac.init(cfg, env, train_input, jax.random.PRNGKey(0))
    step = jax.jit(lambda s: sac.train_iteration(cfg, train_input, s))
    return cfg, train_input, jax.block_until_ready(step(state))[0], step  # compiled


def _train_until(step, state, done, per_iteration: int) -> int:
    steps = 0
    while not done():
        state = jax.block_until_ready(step(state))[0]
        steps += per_iteration
    return steps


def training(browser, envs: int, seconds: float, presses: int) -> dict:
    """HIL on pusher without the page, then with it joined (keys pressed, camera streaming):
    env steps per second of each, and the page's numbers."""
    cfg, _, state, step = _compiled(envs, teleop=False)
    start = time.perf_counter()
    steps = _train_until(step, state, lambda: time.perf_counter() - start > seconds,
                         cfg.steps_per_iteration())
    alone = steps / (time.perf_counter() - start)

    cfg, train_input, state, step = _compiled(envs, teleop=True)
    page = browser.new_page()
    page.goto(train_input.person.server.url)
    finished, counted = threading.Event(), []
    # Playwright's sync API is bound to this thread: press here, train in another.
    trainer = threading.Thread(target=lambda: counted.append(_train_until(
        step, state, finished.is_set, cfg.steps_per_iteration())))
    start = time.perf_counter()
    trainer.start()
    _press(page, presses)
    finished.set()
    trainer.join()
    joined = counted[0] / (time.perf_counter() - start)
    person = train_input.person
    numbers = {**_page_numbers(page), "page_fps": page.evaluate("window.teleop.fps"),
               **_server(person.operator.latency_ms()), "camera_fps": person.viewer.rate()}
    page.close()
    person.close()
    return {**numbers, "steps_per_s_alone": alone, "steps_per_s_with_page": joined}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presses", type=int, default=200)
    parser.add_argument("--envs", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=30.0)
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        rec = recording(browser, args.presses)
        run = training(browser, args.envs, args.seconds, args.presses)
        browser.close()
    print(f"# teleop page, {time.strftime('%Y-%m-%d')}, {jax.device_count()} "
          f"{jax.devices()[0].platform} device(s), {args.presses} key presses per session")
    print("| session | camera frames/s (server) | frames/s at the page | key → applied, page "
          "p50 / p99 ms | arrival → applied, server p50 / p99 ms |")
    print("|---|---|---|---|---|")
    for name, r in (("recording pusher (100 Hz, real time)", rec),
                    (f"HIL training, {args.envs} envs", run)):
        print(f"| {name} | {r['camera_fps']:.1f} | {r['page_fps']:.1f} | {r['page_p50_ms']:.1f}"
              f" / {r['page_p99_ms']:.1f} | {r['server_p50_ms']:.1f} / "
              f"{r['server_p99_ms']:.1f} |")
    alone, joined = run["steps_per_s_alone"], run["steps_per_s_with_page"]
    print(f"HIL training env steps/s: {alone:,.0f} alone, {joined:,.0f} with the page joined "
          f"(ratio {joined / alone:.2f})")


if __name__ == "__main__":
    main()
