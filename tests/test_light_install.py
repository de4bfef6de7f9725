"""The base install (pyproject's dependencies, no extras) is enough for `pnf.optim` and
`pnf.fields`: in a subprocess where every module that only the extras bring cannot be
imported, both import and their optimizers step a field."""

import json
import math
import os
import re
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def installed_closure(requirements: list[str]) -> set[str]:
    """Normalized names of the installed distributions that `requirements` pull in, recursively."""
    seen, todo = set(), [Requirement(r) for r in requirements]
    while todo:
        requirement = todo.pop()
        name = normalize(requirement.name)
        if name in seen or (requirement.marker and not requirement.marker.evaluate({"extra": ""})):
            continue
        try:
            todo += [Requirement(r) for r in metadata.requires(name) or []]
        except metadata.PackageNotFoundError:
            continue
        seen.add(name)
    return seen


BASE = installed_closure(PROJECT["dependencies"])
EXTRAS = [r for extra in PROJECT["optional-dependencies"].values() for r in extra if normalize(Requirement(r).name) != "pnf"]
EXTRA_ONLY = installed_closure(PROJECT["dependencies"] + EXTRAS) - BASE
MODULES = {module: {normalize(d) for d in dists} for module, dists in metadata.packages_distributions().items()}
BLOCKED = sorted(module for module, dists in MODULES.items() if dists <= EXTRA_ONLY)

SCRIPT = '''
import importlib.abc, json, sys

BLOCKED = set(json.loads(sys.argv[1]))


class Hide(importlib.abc.MetaPathFinder):
    """An import finder that finds nothing blocked, as if it were not installed."""

    def __init__(self, finder):
        self.finder = finder

    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in BLOCKED:
            return None
        return self.finder.find_spec(name, path, target)

    def __getattr__(self, attribute):
        return getattr(self.finder, attribute)


sys.meta_path[:] = [Hide(finder) for finder in sys.meta_path]
unavailable = []
for module in ("tqdm", "matplotlib", "skimage", "scipy", "trimesh", "igl", "submitit", "papermill", "jupyterlab"):
    try:
        __import__(module)
    except ModuleNotFoundError:
        unavailable.append(module)

import torch

from pnf.fields import make_field
from pnf.optim import OPTIMIZERS, make_optimizer

torch.set_num_threads(1)
torch.manual_seed(0)
x = torch.rand(256, 2)
y = torch.sin(4 * x[:, :1]) * torch.cos(3 * x[:, 1:])


def train(name, style, steps):
    """First and last loss of `steps` steps of optimizer `name` on a small sine field."""
    torch.manual_seed(1)
    model = make_field("sine", 2, 1, hidden_features=32, hidden_layers=2)
    optimizer = make_optimizer(name, model.parameters(), activation="sine", model=model)

    def closure(create_graph=False):
        optimizer.zero_grad()
        loss = ((model(x) - y) ** 2).mean()
        loss.backward(create_graph=create_graph)
        return loss

    history = []
    for _ in range(steps):
        if style == "closure":
            history.append(optimizer.step(closure).item())
        else:  # the paper code's way: backward, then step
            optimizer.zero_grad()
            loss = ((model(x) - y) ** 2).mean()
            loss.backward(create_graph=optimizer.should_create_graph())
            optimizer.step()
            history.append(loss.item())
    return history[0], history[-1]


losses = {name: train(name, "closure", 3) for name in OPTIMIZERS}
losses["esgd"] = train("esgd", "closure", 60)
losses["esgd, backward then step"] = train("esgd", "backward", 60)
loaded = sorted({m.partition(".")[0] for m in sys.modules} - set(sys.stdlib_module_names))
print(json.dumps({"unavailable": unavailable, "losses": losses, "loaded": loaded}))
'''


def test_the_base_install_is_torch_numpy_and_small_pure_packages():
    base = {normalize(Requirement(r).name) for r in PROJECT["dependencies"]}
    assert {"torch", "numpy", "pytorch-optimizer"} <= base
    # pytorch-optimizer (and any other base package) brings nothing beyond torch and numpy
    assert BASE - installed_closure(["torch", "numpy"]) == base - {"torch", "numpy"}
    extras = PROJECT["optional-dependencies"]
    assert set(extras) == {"reports", "3d", "cluster", "all", "dev"}
    assert extras["all"] == ["pnf[reports,3d,cluster]"]


def test_optim_and_fields_import_and_step_without_the_extras():
    assert {"matplotlib", "skimage", "scipy", "trimesh", "igl", "submitit", "papermill", "tqdm", "IPython",
            "jupyterlab", "nbconvert", "PIL"} <= set(BLOCKED)
    result = subprocess.run([sys.executable, "-c", SCRIPT, json.dumps(BLOCKED)], cwd=ROOT, capture_output=True,
                            text=True, timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert len(report["unavailable"]) == 9  # the blocker works
    assert {"adam", "esgd", "adahessian", "kfac_adam", "shampoo"} <= set(report["losses"])
    assert all(math.isfinite(last) for _, last in report["losses"].values())
    first, last = report["losses"]["esgd"]
    assert last < first / 2
    assert report["losses"]["esgd, backward then step"] == [first, last]
    # every loaded module that an installed distribution provides comes from the base install
    outside = [m for m in report["loaded"] if m != "pnf" and MODULES.get(m) and not MODULES[m] & BASE]
    assert not outside, f"modules from outside the base install: {outside}"
