"""Persistent XLA compilation cache, on by default so a second run skips compilation."""

import os
import warnings
from pathlib import Path

import jax

_ENV_VAR = "ROBOJAX_CACHE_DIR"
_MIN_SECONDS_VAR = "ROBOJAX_CACHE_MIN_COMPILE_SECS"


def default_cache_dir() -> Path:
    """`$ROBOJAX_CACHE_DIR`, else `$XDG_CACHE_HOME/robojax/jax`, else `~/.cache/robojax/jax`."""
    if os.environ.get(_ENV_VAR):
        return Path(os.environ[_ENV_VAR])
    base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return base / "robojax" / "jax"


def enable_compilation_cache(path: str | os.PathLike | None = None) -> Path | None:
    """Point JAX's persistent compilation cache at `path` (default: `default_cache_dir()`).

    Set `ROBOJAX_CACHE_DIR=off` to disable. Every program is cached, however quick to compile:
    a run starts with dozens of small ones (key splits, network inits, evaluation glue) whose
    compiles add up to seconds per start. `ROBOJAX_CACHE_MIN_COMPILE_SECS` caches only programs
    that took longer (jax's own default is 1), e.g. where the cache lives on a shared filesystem.
    Returns the directory in use, or None when off.
    """
    if os.environ.get(_ENV_VAR, "").lower() == "off":
        return None
    cache_dir = Path(path) if path is not None else default_cache_dir()
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None  # read-only home: run without a cache rather than fail
    jax.config.update("jax_compilation_cache_dir", str(cache_dir))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", _min_compile_seconds())
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    return cache_dir


def _min_compile_seconds() -> float:
    text = os.environ.get(_MIN_SECONDS_VAR, "0")
    try:
        seconds = float(text)
    except ValueError:
        seconds = -1.0
    if not seconds >= 0:
        raise ValueError(f"{_MIN_SECONDS_VAR}={text!r} is not a number of seconds >= 0; unset it "
                         "to cache every program, or give e.g. 1.")
    return seconds


def write_from_every_process() -> None:
    """Let every process of a multi-process run write its programs to the persistent cache.

    jax writes the cache from process 0 alone, to spare filesystems that every host shares. On
    CPU each process's cache key names its own devices, so without this the other processes
    compile every program afresh on every run, and process 0 waits for them at the first
    collective: a warm cache saves nothing. robojax's cache lives on each host's own disk
    (`default_cache_dir()`), where each process's entries are its own. jax's other rules hold:
    no entry for programs with host callbacks or below the minimum compile time.
    """
    from jax._src import compilation_cache, compiler, distributed

    original = compiler._cache_write
    if getattr(original, "robojax_every_process", False):
        return

    def write(cache_key, compile_time_secs, module_name, backend, executable, host_callbacks):
        if (distributed.global_state.process_id == 0 or host_callbacks or compile_time_secs
                < jax.config.jax_persistent_cache_min_compile_time_secs):
            return original(cache_key, compile_time_secs, module_name, backend, executable,
                            host_callbacks)
        try:
            compilation_cache.put_executable_and_time(cache_key, module_name, executable,
                                                      backend, int(compile_time_secs))
        except Exception as err:  # a full disk or a lost race: compile again next time
            warnings.warn(f"could not write the compile cache entry for {module_name!r}: "
                          f"{type(err).__name__}: {err}", stacklevel=2)

    write.robojax_every_process = True
    compiler._cache_write = write
