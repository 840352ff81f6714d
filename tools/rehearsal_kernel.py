"""A Jupyter kernel that sees only what the book's package declares.

Started by the Colab rehearsal (``tools/rehearse.py``) with the rehearsal
environment's Python, in place of ``python -m ipykernel_launcher``. Before the
kernel starts, an import hook hides every installed distribution that is
neither the standard library, nor the kernel's own (ipykernel, ipywidgets and
what they require), nor ``whydeep`` and what ``whydeep``'s metadata requires,
transitively. A hosted notebook happens to have many packages installed; this
kernel makes a dependency that ``pyproject.toml`` forgets fail here, as it fails
for anyone whose environment does not happen to have it.

Until ``whydeep`` is installed (by the notebook's install cell) only the
kernel's packages are visible; the allowed set is recomputed whenever
``whydeep`` is looked up and before any import is refused, so what the install
cell installs is seen at once.

Runs with the standard library only (plus ipykernel, to start the kernel).
"""

from __future__ import annotations

import importlib.abc
import importlib.metadata as metadata
import re
import sys

PACKAGE = "whydeep"
KERNEL_ROOTS = ("ipykernel", "ipywidgets")


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _requires(distribution) -> list[str]:
    names = []
    for requirement in distribution.requires or []:
        name, _, marker = requirement.partition(";")
        if "extra" in marker:
            continue  # optional extras are not dependencies
        match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", name)
        if match:
            names.append(_canonical(match[1]))
    return names


def closure(roots) -> set[str]:
    """Canonical names of the installed distributions ``roots`` need."""
    installed = {_canonical(d.metadata["Name"]): d for d in metadata.distributions()}
    seen, todo = set(), [_canonical(r) for r in roots]
    while todo:
        name = todo.pop()
        if name in seen or name not in installed:
            continue
        seen.add(name)
        todo.extend(_requires(installed[name]))
    return seen


class DeclaredOnly(importlib.abc.MetaPathFinder):
    """Hides top-level modules of installed distributions outside the closure."""

    def __init__(self) -> None:
        self.allowed: set[str] = set()
        self.owners: dict[str, list[str]] = {}
        self.refresh()

    def refresh(self) -> None:
        self.allowed = closure((PACKAGE, *KERNEL_ROOTS))
        self.owners = {
            module: [_canonical(d) for d in dists]
            for module, dists in metadata.packages_distributions().items()
        }

    def find_spec(self, fullname, path=None, target=None):
        if fullname == PACKAGE:
            self.refresh()
        if path is not None or "." in fullname:
            return None
        owners = self.owners.get(fullname)
        if owners and not set(owners) & self.allowed:
            self.refresh()  # something may have been installed since
            owners = self.owners.get(fullname)
        if owners and not set(owners) & self.allowed:
            raise ModuleNotFoundError(
                f"No module named {fullname!r}: it is installed ({owners[0]}), but "
                f"neither {PACKAGE} nor the kernel declares it as a dependency",
                name=fullname,
            )
        return None


def main() -> None:
    sys.meta_path.insert(0, DeclaredOnly())
    from ipykernel import kernelapp

    kernelapp.launch_new_instance()


if __name__ == "__main__":
    main()
