"""`robojax export`: a run's policy as ONNX and StableHLO programs with a `contract.json`.

    from robojax.export import export_run
    export_run("runs/cartpole", "exported/cartpole", formats=("onnx", "stablehlo"))

Each program is the whole policy (normalizer, sampler loop, chunk slicing, actuator scaling)
with fixed input and output names and a symbolic batch dimension; randomness is an input. A
residual run adds a second program, its per-step correction of the planned actions.
Load it with `robojax.deploy.Policy` (ONNX, numpy and onnxruntime only) or
`robojax.export.formats.load_stablehlo` (jax only). `export_program` writes the models of a
`PolicyProgram` built in code, without a run directory.
"""

import dataclasses
import hashlib
import importlib.metadata
import inspect
from collections.abc import Sequence
from pathlib import Path

import jax
import mujoco
import numpy as np

from robojax.core.mjx_env import require_command_actions
from robojax.core.program import PolicyProgram
from robojax.deploy import contract as contract_io
from robojax.export.formats import ONNX_OPSET, SERIALIZERS
from robojax.export.graph import (
    Signature,
    correction_function,
    correction_signature,
    policy_function,
    signature,
)

FORMATS = tuple(SERIALIZERS)


def export_run(run_dir: str | Path, out: str | Path, *, formats: Sequence[str] = FORMATS,
               steps: int | None = None, seed_index: int = 0, unroll: bool = True) -> Path:
    """Export the latest checkpoint of `run_dir` to `out`; returns the contract's path.

    `steps` overrides the sampler's steps (denoising, Euler or descent) of a generative policy;
    `unroll=False` keeps the ONNX sampler a Loop node (see `formats.onnx`).
    """
    from robojax.runs import load_run

    formats = _check_formats(formats)
    run = load_run(run_dir, seed_index=seed_index)
    contract = export_program(_program(run, steps), run.env.unwrapped, out, formats,
                              unroll=unroll)
    origin = {"algo": run.args.algo, "checkpoint_step": int(run.step), "seed_index": seed_index,
              "dir": str(Path(run_dir).resolve())}
    return contract_io.write(out, {"version": contract["version"], "env": _env_entry(run),
                                   **contract, "run": origin})


def export_program(program: PolicyProgram, env, out: str | Path,
                   formats: Sequence[str] = FORMATS, *, unroll: bool = True) -> dict:
    """Write `program`'s models for `env` into `out`; returns the contract less what only a
    run knows (the task's name and episode length, the checkpoint), which `export_run` adds."""
    formats = _check_formats(formats)
    require_command_actions(env, "an export")
    obs_size, action_size = env.observation_spec.size, env.action_spec.size
    low, high = _ctrl_range(env)
    sig = signature(program, obs_size, action_size)
    out = Path(out)
    files = write_models(policy_function(program, low, high), sig, out, formats, unroll=unroll)
    if "onnx" in files:
        files["onnx"]["sampler_loop"] = "unrolled" if unroll else "loop"
    contract = {
        "version": contract_io.VERSION,
        "observation": {"size": obs_size, "history": program.n_obs_steps,
                        "layout": observation_layout(env),
                        "last_actions": last_actions(env)},
        "action": {"size": action_size,
                   "names": _actuator_names(getattr(env, "mj_model", None), action_size),
                   "ctrl_low": low.tolist(), "ctrl_high": high.tolist(),
                   "scaling": "command = low + (clip(action, -1, 1) + 1) / 2 * (high - low)",
                   "per_call": program.n_action_steps},
        "control_dt": float(env.dt),
        "sampler": program.sampler,
        **io_spec(program, sig),
        "files": files,
        "versions": _versions(),
    }
    if program.correction is not None:
        sig = correction_signature(obs_size, action_size)
        files = write_models(correction_function(program, low, high), sig, out, formats,
                             names=contract_io.CORRECTION_FILES)
        contract["correction"] = {**io_spec(program, sig), "files": files}
    return contract


def write_models(policy, sig: Signature, out: Path, formats: Sequence[str], *,
                 unroll: bool = True, names: dict = contract_io.FILES) -> dict:
    """Serialize `policy` in each format into `out` (file names from `names`); returns the
    contract's "files" entry."""
    out.mkdir(parents=True, exist_ok=True)
    files = {}
    for fmt in formats:
        path = out / names[fmt]
        path.write_bytes(SERIALIZERS[fmt](policy, sig, unroll=unroll))
        files[fmt] = {"path": path.name, "sha256": contract_io.sha256(path)}
    return files


def _program(run, steps: int | None):
    if steps is None:
        return run.algo.program(run.cfg, run.state)
    if "steps" not in inspect.signature(run.algo.program).parameters:
        raise ValueError(f"--steps sets a generative policy's sampling steps; the {run.args.algo}"
                         " policy has none. Leave --steps out.")
    return run.algo.program(run.cfg, run.state, steps=steps)


def _ctrl_range(env) -> tuple[np.ndarray, np.ndarray]:
    if hasattr(env, "ctrl_range"):
        return env.ctrl_range
    size = env.action_spec.size  # an env without actuator metadata takes [-1, 1] as is
    return -np.ones(size, np.float32), np.ones(size, np.float32)


def _check_formats(names: Sequence[str]) -> tuple[str, ...]:
    unknown = [n for n in names if n not in FORMATS]
    if unknown or not names:
        raise ValueError(f"unknown export format {unknown or names!r}; choose from {FORMATS}.")
    return tuple(dict.fromkeys(names))


def _env_entry(run) -> dict:
    """The contract's "env": the task, its config, its compiled model's hash, its episode
    length."""
    from robojax.algos.acting import episode_length

    env = run.env.unwrapped
    model = getattr(env, "mj_model", None)
    config = getattr(env, "config", None)
    return {"name": run.args.env,
            "config": dataclasses.asdict(config) if dataclasses.is_dataclass(config) else {},
            "mjcf_sha256": model_sha256(model) if model is not None else None,
            "episode_length": episode_length(run.cfg, env)}


def last_actions(env) -> int:
    """How many of the policy's last actions end its observation (`observe_last_actions`):
    the runtime appends them itself, so the robot's observation leaves them out."""
    return int(getattr(getattr(env, "config", None), "observe_last_actions", 0))


def observation_layout(env) -> list[dict]:
    """Each part of the observation: its name, [start, stop) slice and unit."""
    if hasattr(env, "observation_parts"):
        parts = env.observation_parts()
    elif hasattr(env, "observation_layout"):
        parts = env.observation_layout()
    else:
        parts = [("obs", env.observation_spec.size, "")]
    layout, start = [], 0
    for name, size, unit in parts:
        layout.append({"name": name, "slice": [start, start + size], "unit": unit})
        start += size
    if start != env.observation_spec.size:
        raise ValueError(f"{type(env).__name__}.observation_layout() covers {start} values, "
                         f"its observation has {env.observation_spec.size}; fix the layout.")
    return layout


def io_spec(program, sig: Signature) -> dict:
    """The contract's "inputs" and "outputs": names, shapes with the symbolic batch first,
    dtypes, and each noise input's distribution."""
    noise = {contract_io.NOISE_PREFIX + name: spec.kind for name, spec in program.noise.items()}
    entry = lambda name, shape: {"name": name, "shape": [contract_io.BATCH, *shape],  # noqa: E731
                                 "dtype": "float32",
                                 **({"noise": noise[name]} if name in noise else {})}
    return {"inputs": [entry(name, shape) for name, shape in sig.inputs.items()],
            "outputs": [entry(name, shape) for name, shape in sig.outputs.items()]}


def _actuator_names(model, size: int) -> list[str]:
    if model is None:
        return [f"a{i}" for i in range(size)]
    return [mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_ACTUATOR, i) or f"a{i}"
            for i in range(model.nu)]


def model_sha256(model: mujoco.MjModel) -> str:
    """Hash of the compiled MuJoCo model (MJB bytes): geometry, dynamics and timestep."""
    buffer = np.zeros(mujoco.mj_sizeModel(model), np.uint8)
    mujoco.mj_saveModel(model, None, buffer)
    return hashlib.sha256(buffer.tobytes()).hexdigest()


def _versions() -> dict:
    versions = {"jax": jax.__version__, "mujoco": mujoco.__version__,
                "onnx_opset": ONNX_OPSET}
    for package in ("robojax", "jax2onnx", "onnx"):
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            pass
    return versions
