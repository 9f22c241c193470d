"""Import code as if only some of the project's dependencies were installed.

A meta-path finder refuses every top-level module that is not the standard library, the project's own packages or
a module of a distribution in the dependency closure of pyproject.toml's base list (plus the extras asked for).
Read from pyproject.toml rather than the installed metadata, so the check follows the tree, not the last install.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.metadata as metadata
import re
import sys
import tomllib
from collections.abc import Iterable, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any, cast

from packaging.requirements import Requirement

REPO = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
OUR_PACKAGES = frozenset(p.rstrip("*") for p in PYPROJECT["tool"]["setuptools"]["packages"]["find"]["include"])
DEVTOOLS = "activity.devtools"  # the developer tools: everything else in OUR_PACKAGES ships


def key(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirements(extras: Sequence[str] = ()) -> list[Requirement]:
    """The project's base requirements and those of `extras`, extras naming the project itself expanded."""
    project = PYPROJECT["project"]
    wanted, seen, found = list(extras), set(), [Requirement(r) for r in project["dependencies"]]
    while wanted:
        extra = wanted.pop()
        if extra in seen:
            continue
        seen.add(extra)
        for line in project["optional-dependencies"][extra]:
            requirement = Requirement(line)
            if key(requirement.name) == key(project["name"]):
                wanted.extend(requirement.extras)
            else:
                found.append(requirement)
    return found


def closure(roots: Iterable[Requirement]) -> set[str]:
    """The installed distributions `roots` pull in, transitively (normalised names)."""
    seen: dict[str, set[str]] = {}
    todo = [(r.name, tuple(r.extras)) for r in roots if r.marker is None or r.marker.evaluate({"extra": ""})]
    while todo:
        name, extras = todo.pop()
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue  # a dependency for another platform or Python
        done = seen.get(key(name))
        if done is not None and set(extras) <= done:
            continue
        seen.setdefault(key(name), set()).update(extras)
        for line in dist.requires or []:
            requirement = Requirement(line)
            marker = requirement.marker
            if marker is None or any(marker.evaluate({"extra": extra}) for extra in extras or ("",)):
                todo.append((requirement.name, tuple(requirement.extras)))
    return set(seen)


def importable(extras: Sequence[str] = ()) -> frozenset[str]:
    """Top-level module names an install of the project with `extras` provides."""
    dists = closure(requirements(extras))
    names = set(sys.stdlib_module_names) | set(sys.builtin_module_names) | OUR_PACKAGES
    for module, owners in metadata.packages_distributions().items():
        if any(key(owner) in dists for owner in owners):
            names.add(module)
    return frozenset(names)


class _Fence(importlib.abc.MetaPathFinder):
    """The interpreter's own finders, asked only about allowed names: anything else is simply not found, as if it
    were not installed (so `importlib.util.find_spec` probes for optional packages answer None, too)."""

    def __init__(self, allowed: frozenset[str], finders: list[Any]) -> None:
        self.allowed = allowed
        self.finders = finders

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        top = fullname.partition(".")[0]
        if top not in self.allowed and not top.startswith(_ALWAYS):
            return None
        for finder in self.finders:
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                return cast(importlib.machinery.ModuleSpec, spec)
        return None

    def invalidate_caches(self) -> None:
        for finder in self.finders:
            finder.invalidate_caches()


# The interpreter's build data (named per platform) and the finders editable installs add.
_ALWAYS = ("_sysconfigdata_", "__editable__")


def only(extras: Sequence[str] = ()) -> None:
    """From now on, only what an install with `extras` provides can be imported."""
    allowed = importable(extras)
    for name in [n for n in sys.modules if n.partition(".")[0] not in allowed and not n.startswith("_")]:
        del sys.modules[name]  # e.g. packaging, imported above: a shipped module must not find it already loaded
    sys.meta_path[:] = [_Fence(allowed, list(sys.meta_path))]


def shipped_modules() -> list[str]:
    """Every module of the project's packages apart from the developer tools."""
    names = []
    for package in sorted(OUR_PACKAGES):
        for path in sorted((REPO / package).rglob("*.py")):
            parts = path.relative_to(REPO).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            if name != DEVTOOLS and not name.startswith(DEVTOOLS + "."):
                names.append(name)
    return names


def import_all(names: Iterable[str]) -> dict[str, str]:
    """module -> why it failed to import, for those that did."""
    failures = {}
    for name in names:
        try:
            importlib.import_module(name)
        except Exception as err:  # any failure is a finding, reported by module
            failures[name] = f"{type(err).__name__}: {err}"
    return failures
