"""Training across processes with JAX's multi-controller runtime.

Every process runs the same program on its own devices. `jax.distributed` connects them
(process 0 hosts the coordinator), after which `jax.devices()` lists every process's devices and
one compiled step runs over all of them: the env batch is split across the global mesh
(`robojax.core.sharding`) and XLA inserts the cross-process all-reduces of the update (gloo on
CPU, NCCL on GPU, ICI/DCN on TPU). Nothing here is specific to one backend.

Besides starting the runtime, this module holds the few host-side steps that differ when arrays
span processes: exchanging small texts (flags, the run directory), barriers, and reading global
values back to the host.
"""

import json
import re
import socket
import time

import jax
import numpy as np
from jax.experimental import multihost_utils

from robojax._cache import write_from_every_process


class PeerLostError(RuntimeError):
    """Another process of the run stopped (killed, crashed, preempted, or its host went down)."""


# How long the other processes wait at exit for process 0, which draws the plot and renders the
# video last. A process that dies meanwhile is still noticed within the heartbeat timeout.
_EXIT_WAIT_S = 1800

_ADDRESS = re.compile(r"^\[?[A-Za-z0-9_.:-]+\]?:\d{1,5}$")


def check_flags(coordinator: str | None, num_processes: int | None,
                process_id: int | None) -> None:
    """Refuse, with the fix, flags that cannot start a run: a coordinator that is not
    HOST:PORT, a process count below one, a process id outside 0..N-1, or only some of the
    three flags (all three, or none to let JAX detect the cluster)."""
    given = {"--coordinator": coordinator, "--num-processes": num_processes,
             "--process-id": process_id}
    missing = [k for k, v in given.items() if v is None]
    if missing and len(missing) < len(given):
        raise ValueError(f"{', '.join(missing)} missing: give --coordinator HOST:PORT, "
                         "--num-processes N and --process-id I together (the same coordinator "
                         "and count on every process, ids 0..N-1), or none of them to let JAX "
                         "detect the cluster (SLURM, Open MPI, Cloud TPU).")
    if missing:
        return
    if not _ADDRESS.match(coordinator):
        raise ValueError(f"--coordinator {coordinator!r} is not HOST:PORT; give process 0's "
                         "address and a free port, e.g. --coordinator 10.0.0.1:12345.")
    if num_processes < 1:
        raise ValueError(f"--num-processes must be >= 1, got {num_processes}.")
    if not 0 <= process_id < num_processes:
        raise ValueError(f"--process-id {process_id} is outside 0..{num_processes - 1} for "
                         f"--num-processes {num_processes}; number the processes 0 to "
                         f"{num_processes - 1}, one id each.")


def initialize(coordinator: str | None = None, num_processes: int | None = None,
               process_id: int | None = None, timeout: int = 60) -> None:
    """Connect this process to the others (`jax.distributed.initialize`); with no flags, JAX
    reads them from the cluster (SLURM, Open MPI, Cloud TPU). Waits at most `timeout` seconds
    for every process to join; afterwards a process silent that long counts as dead and the
    others stop (`PeerLostError` in the train loop, or JAX's own shutdown)."""
    check_flags(coordinator, num_processes, process_id)
    if jax.distributed.is_initialized():
        return
    from jax._src import xla_bridge

    if xla_bridge.backends_are_initialized():
        raise RuntimeError("--distributed must start before JAX runs anything in this process "
                           "(here JAX's backends are already up); start training in a fresh "
                           "process, e.g. from the `robojax train` command.")
    if coordinator is not None and process_id != 0:
        wait_for_coordinator(coordinator, timeout, process_id)
    try:
        jax.distributed.initialize(coordinator, num_processes, process_id,
                                   initialization_timeout=timeout,
                                   heartbeat_timeout_seconds=timeout,
                                   shutdown_timeout_seconds=max(timeout, _EXIT_WAIT_S))
    except ValueError as err:
        if coordinator is None:
            raise ValueError(f"--distributed found no cluster to join ({err}). Give "
                             "--coordinator HOST:PORT --num-processes N --process-id I, or "
                             "launch under SLURM (srun), Open MPI (mpirun) or on a Cloud TPU "
                             "slice.") from err
        raise
    except Exception as err:  # XLA's DEADLINE_EXCEEDED or UNAVAILABLE
        where = coordinator or "the detected coordinator"
        raise TimeoutError(
            f"process {process_id} could not join the run at {where} within {timeout} s "
            f"({str(err).strip().splitlines()[0][:160]}). Start all {num_processes or ''} "
            "processes (process 0 hosts the coordinator) with the same --coordinator, check "
            "that its host and port are reachable from here, or raise "
            "--distributed-timeout.") from err
    write_from_every_process()  # else a warm compile cache saves the other processes nothing


def wait_for_coordinator(coordinator: str, timeout: float, process_id: int | None) -> None:
    """Return once the coordinator at HOST:PORT accepts connections; raise TimeoutError, with
    what to check, when it does not within `timeout` seconds. (JAX itself would abort the
    process with a bare DEADLINE_EXCEEDED.)"""
    host, _, port = coordinator.rpartition(":")
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host.strip("[]"), int(port)), timeout=1.0):
                return
        except OSError as err:
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"process {process_id} could not reach the coordinator at {coordinator} "
                    f"within {timeout:g} s ({err.strerror or err}). Start process 0 (it hosts "
                    "the coordinator) with the same --coordinator, check that the host and port "
                    "are reachable from here, or raise --distributed-timeout.") from err
            time.sleep(0.2)


def is_main() -> bool:
    """Whether this is process 0: the one that writes metrics, plots, videos and the bar."""
    return jax.process_index() == 0


def exchange_text(text: str) -> list[str]:
    """Every process's `text`, by process index (a collective: all processes call it)."""
    data = np.frombuffer(text.encode(), np.uint8)
    sizes = multihost_utils.process_allgather(np.array([data.size], np.int32))
    padded = np.zeros(int(np.max(sizes)), np.uint8)
    padded[:data.size] = data
    rows = np.asarray(multihost_utils.process_allgather(padded)).reshape(len(sizes), -1)
    return [bytes(row[:int(n)]).decode() for row, n in zip(rows, np.ravel(sizes), strict=True)]


def check_same(flags: dict) -> None:
    """Raise ValueError on every process, naming the flags, when any process's `flags`
    (JSON-able) differ from process 0's: all processes must run the same program."""
    texts = exchange_text(json.dumps(flags, sort_keys=True, default=str))
    first = json.loads(texts[0])
    differ = []
    for index, text in enumerate(texts[1:], start=1):
        other = json.loads(text)
        differ += [f"--{k.replace('_', '-')} {other.get(k)!r} on process {index}, "
                   f"{first.get(k)!r} on process 0"
                   for k in sorted(set(first) | set(other)) if first.get(k) != other.get(k)]
    if differ:
        raise ValueError("the processes were started with different flags: "
                         + "; ".join(differ[:6]) + ". Start every process with the same "
                         "command, only --process-id differing.")


def barrier(name: str) -> None:
    """Wait until every process reaches the barrier `name`."""
    if jax.process_count() > 1:
        multihost_utils.sync_global_devices(name)


def host_value(x):
    """The whole value of an array as numpy, gathered from the other processes when this one
    holds only part of it (a collective then: all processes call it)."""
    if isinstance(x, jax.Array) and not x.is_fully_addressable and not x.is_fully_replicated:
        return np.asarray(multihost_utils.process_allgather(x, tiled=True))
    return np.asarray(x)


def to_host(tree):
    """Every leaf of `tree` as a numpy array holding its whole value (see `host_value`)."""
    return jax.tree.map(host_value, tree)


_PEER_SIGNS = ("Gloo", "NCCL", "heartbeat", "Connection reset", "Connection closed",
               "coordination service", "unhealthy")


def is_peer_loss(err: BaseException) -> bool:
    """Whether `err` is a cross-process collective failing because another process is gone."""
    return jax.process_count() > 1 and any(sign in str(err) for sign in _PEER_SIGNS)
