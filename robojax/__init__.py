"""robojax: vectorized MuJoCo MJX environments and fused, jit-compiled learning for robots."""

from robojax._gl import choose_gl_backend

GL_BACKEND = choose_gl_backend()  # before anything imports mujoco

__version__ = "0.1.0"

try:
    import jax  # noqa: E402,F401
except ImportError:  # a deployment install: `robojax.deploy` needs only numpy and onnxruntime
    jax = None

if jax is not None:
    from robojax._xla import configure_xla_flags

    configure_xla_flags()  # before any computation starts a backend

    from robojax._cache import enable_compilation_cache

    enable_compilation_cache()

    from robojax._mjx import import_mjx_quietly

    import_mjx_quietly()

__all__ = ["__version__"]
