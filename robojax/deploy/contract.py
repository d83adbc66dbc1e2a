"""`contract.json`: what an exported policy expects and promises, written beside the model.

It ties the deployed program to the trained one: the observation and action layout, the
actuator ranges and the scaling from [-1, 1], the control period, the history and chunk sizes,
the sampler and its noise inputs, the input and output names, the env and its config, hashes of
the compiled MuJoCo model and of each model file, and the versions it was exported with. The
runtime (`robojax.deploy`) checks it on load. This module needs only the standard library.

A policy that corrects each planned action as it executes (a residual run) has a second model,
described under "correction" with its own inputs, outputs and files (version 2; version 1
contracts have none and still load).
"""

import hashlib
import json
from pathlib import Path

CONTRACT = "contract.json"
VERSION = 2
READABLE_VERSIONS = (1, 2)
BATCH = "batch"
"""The symbolic batch dimension's name in input and output shapes."""
OBS, ACTIONS, COMMAND, PLANNED = "obs", "actions", "command", "planned"
NOISE_PREFIX = "noise_"
FILES = {"onnx": "policy.onnx", "stablehlo": "policy.stablehlo"}
"""Model file per format."""
CORRECTION_FILES = {"onnx": "correction.onnx", "stablehlo": "correction.stablehlo"}
"""The correction's model file per format."""


class ContractError(ValueError):
    """An exported policy does not match its contract, or the caller's expectations."""


def sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write(directory: Path, contract: dict) -> Path:
    path = Path(directory) / CONTRACT
    path.write_text(json.dumps(contract, indent=2, default=str) + "\n")
    return path


def read(directory: str | Path) -> dict:
    """The contract in `directory`, checked for the fields the runtime relies on."""
    path = Path(directory) / CONTRACT
    if not path.is_file():
        raise ContractError(f"no {CONTRACT} in {directory}: not an exported policy. Export one "
                            "with `robojax export RUN_DIR --out DIR`.")
    try:
        contract = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ContractError(f"{path} is not valid JSON ({e}); export the policy again.") from e
    missing = [k for k in ("version", "inputs", "outputs", "files", "action", "observation")
               if k not in contract]
    if missing:
        raise ContractError(f"{path} lacks {missing}; export the policy again.")
    if contract["version"] not in READABLE_VERSIONS:
        raise ContractError(f"{path} has contract version {contract['version']}, this runtime "
                            f"reads versions {READABLE_VERSIONS}; export again with this robojax "
                            "version.")
    return contract


def model_file(directory: str | Path, files: dict, fmt: str) -> Path:
    """The model file of format `fmt` among `files` (the contract's "files", or its
    correction's), checked to exist and to hash as the contract says."""
    if fmt not in files:
        raise ContractError(f"the policy in {directory} was exported as {sorted(files)}, not "
                            f"{fmt!r}; export with `--format {fmt}`.")
    path = Path(directory) / files[fmt]["path"]
    if not path.is_file():
        raise ContractError(f"{path} is missing; copy the whole export directory, or export "
                            "again.")
    digest = sha256(path)
    if digest != files[fmt]["sha256"]:
        raise ContractError(f"{path} does not match its contract (sha256 {digest[:12]}..., "
                            f"expected {files[fmt]['sha256'][:12]}...): the file was changed or "
                            "damaged after export. Export the policy again.")
    return path
