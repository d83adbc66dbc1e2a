"""`import robojax` is quiet: MJX's notice about its optional Warp backend is dropped."""

import subprocess
import sys

_IMPORT_WITHOUT_WARP = """
import sys
sys.modules["warp"] = None  # as on an install without warp-lang: `import warp` fails
import robojax.cli
from mujoco import mjx
assert not mjx.warp.WARP_INSTALLED
print("imported")
"""


def test_importing_robojax_without_warp_prints_nothing_of_mjxs_own():
    """Without warp-lang (MJX's NVIDIA-GPU backend, not a robojax requirement) MJX prints
    "Failed to import warp: ..." and "Failed to import mujoco_warp: ..." on its first import;
    every `robojax` command would start with them."""
    out = subprocess.run([sys.executable, "-c", _IMPORT_WITHOUT_WARP], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout == "imported\n"
