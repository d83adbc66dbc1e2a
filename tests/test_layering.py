"""The engine's layers, checked on the source: algorithms never import each other, and the
lower layers (core, io, envs, policies) never reach up into the trainers or the CLI."""

import ast
from pathlib import Path

import pytest

from robojax import algos

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = {"robojax": ROOT / "robojax", "robojax.envs": ROOT / "envs",
            "robojax.policies": ROOT / "policies"}
LOWER = ("robojax.core", "robojax.io", "robojax.envs", "robojax.policies")
UPPER = ("robojax.algos", "robojax.train", "robojax.evaluate", "robojax.rollout",
         "robojax.runs", "robojax.cli")
ALGORITHMS = {algos.module_path(name) for name in algos.names()}


def _modules() -> dict[str, Path]:
    found = {}
    for package, folder in PACKAGES.items():
        for path in folder.rglob("*.py"):
            parts = path.relative_to(folder).with_suffix("").parts
            if package == "robojax" and parts[0] in ("envs", "policies"):
                continue
            name = ".".join((package, *parts)).removesuffix(".__init__")
            found[name] = path
    return found


def _imports(path: Path) -> set[str]:
    """Every module an import statement anywhere in the file names (`from a import b` gives
    both a and a.b, since b may be a module)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names |= {f"{node.module}.{alias.name}" for alias in node.names}
    return {n for n in names if n.startswith("robojax")}


def _within(name: str, packages) -> bool:
    return any(name == p or name.startswith(p + ".") for p in packages)


MODULES = _modules()


def test_the_scan_sees_the_whole_package():
    assert {"robojax.algos.ppo", "robojax.core.env", "robojax.envs.cartpole",
            "robojax.policies.diffusion", "robojax.io.run"} <= set(MODULES)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_upward_or_sideways_import(module):
    imported = _imports(MODULES[module])
    if _within(module, ("robojax.algos",)):
        others = sorted(n for n in imported if n in ALGORITHMS and n != module)
        assert not others, f"{module} imports the algorithm(s) {others}; move what they share " \
                           "into a neutral module (robojax.algos.acting, returns, ...)"
    if _within(module, LOWER):
        upward = sorted(n for n in imported if _within(n, UPPER))
        assert not upward, f"{module} (a lower layer) imports {upward}"
