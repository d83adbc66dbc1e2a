"""The persistent compilation cache robojax turns on (`robojax._cache`)."""

import os
import subprocess
import sys

import pytest

from robojax import _cache

_ONE_SMALL_PROGRAM = """
import jax, numpy as np
import robojax
print(jax.config.jax_persistent_cache_min_compile_time_secs)
jax.jit(lambda x: x * 2.0 + 1.0)(np.ones(3, np.float32))
"""


def test_every_program_is_cached_however_quick_to_compile(tmp_path):
    """A program that compiles in milliseconds is written too: a warm start reads its dozens of
    small programs instead of compiling them. (In a process of its own: the cache folder is
    chosen once per process.)"""
    env = {**os.environ, "ROBOJAX_CACHE_DIR": str(tmp_path), "JAX_PLATFORMS": "cpu"}
    env.pop("ROBOJAX_CACHE_MIN_COMPILE_SECS", None)
    out = subprocess.run([sys.executable, "-c", _ONE_SMALL_PROGRAM], env=env, text=True,
                         capture_output=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["0.0"]
    assert [p.name for p in tmp_path.glob("jit__lambda-*")], sorted(os.listdir(tmp_path))


def test_the_minimum_compile_time_is_read_from_the_environment(monkeypatch):
    monkeypatch.delenv("ROBOJAX_CACHE_MIN_COMPILE_SECS", raising=False)
    assert _cache._min_compile_seconds() == 0.0
    monkeypatch.setenv("ROBOJAX_CACHE_MIN_COMPILE_SECS", "1.5")
    assert _cache._min_compile_seconds() == 1.5
    for bad in ("soon", "-1", "nan"):
        monkeypatch.setenv("ROBOJAX_CACHE_MIN_COMPILE_SECS", bad)
        with pytest.raises(ValueError, match=f"ROBOJAX_CACHE_MIN_COMPILE_SECS='{bad}' is not a "
                                             "number of seconds >= 0; unset it"):
            _cache._min_compile_seconds()
