"""Persistent XLA compilation cache, on by default so a second run skips compilation."""

import os
from pathlib import Path

import jax

_ENV_VAR = "ROBOJAX_CACHE_DIR"


def default_cache_dir() -> Path:
    """`$ROBOJAX_CACHE_DIR`, else `$XDG_CACHE_HOME/robojax/jax`, else `~/.cache/robojax/jax`."""
    if os.environ.get(_ENV_VAR):
        return Path(os.environ[_ENV_VAR])
    base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return base / "robojax" / "jax"


def enable_compilation_cache(path: str | os.PathLike | None = None) -> Path | None:
    """Point JAX's persistent compilation cache at `path` (default: `default_cache_dir()`).

    Set `ROBOJAX_CACHE_DIR=off` to disable. Returns the directory in use, or None when off.
    """
    if os.environ.get(_ENV_VAR, "").lower() == "off":
        return None
    cache_dir = Path(path) if path is not None else default_cache_dir()
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None  # read-only home: run without a cache rather than fail
    jax.config.update("jax_compilation_cache_dir", str(cache_dir))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    return cache_dir
