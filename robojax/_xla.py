"""XLA runtime flags robojax sets before JAX starts its backends.

jaxlib 0.10's CPU runtime can stall for good on large MJX batches (4096+ hopper envs): the main
thread waits for a result while every worker thread sits idle. The stall comes with XLA:CPU's
concurrency-optimized scheduler; with it off the same calls return, at the same speed
(experiments/bench/RESULTS.md, section 1). Flags a user sets in `XLA_FLAGS` win.
"""

import os
import warnings

import jaxlib
from jax._src import xla_bridge

_CPU_SCHEDULER = "--xla_cpu_enable_concurrency_optimized_scheduler"
_STALLING_JAXLIB = ("0.10.",)  # versions where the stall was seen; others know their own flags


def cpu_runtime_flags(jaxlib_version: str, xla_flags: str) -> str:
    """`xla_flags` with robojax's CPU runtime flags added, unless the user set them already."""
    if not jaxlib_version.startswith(_STALLING_JAXLIB) or _CPU_SCHEDULER in xla_flags:
        return xla_flags
    return f"{xla_flags} {_CPU_SCHEDULER}=false".strip()


def configure_xla_flags() -> None:
    """Add robojax's flags to `XLA_FLAGS`; XLA reads them when the first backend starts."""
    current = os.environ.get("XLA_FLAGS", "")
    flags = cpu_runtime_flags(jaxlib.__version__, current)
    if flags == current:
        return
    if xla_bridge.backends_are_initialized():
        warnings.warn(
            "JAX's backends started before robojax was imported, so large CPU MJX batches may "
            f"stall on jaxlib {jaxlib.__version__}. Import robojax first, or set "
            f"XLA_FLAGS='{_CPU_SCHEDULER}=false' yourself.", stacklevel=3)
        return
    os.environ["XLA_FLAGS"] = flags
