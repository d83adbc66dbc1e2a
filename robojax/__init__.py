"""robojax: vectorized MuJoCo MJX environments and fused, jit-compiled learning for robots."""

from robojax._gl import choose_gl_backend

GL_BACKEND = choose_gl_backend()  # before anything imports mujoco

from robojax._xla import configure_xla_flags  # noqa: E402

configure_xla_flags()  # before any computation starts a backend

from robojax._cache import enable_compilation_cache  # noqa: E402

__version__ = "0.1.0"

enable_compilation_cache()

__all__ = ["__version__", "enable_compilation_cache"]
