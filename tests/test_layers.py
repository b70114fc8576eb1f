"""Imports run one way: every import of ``mrife/`` and ``kernels/``, read with ``ast``
(imports inside functions included), goes down the layers that ``mrife/__init__.py``
declares, and no module imports itself back through another."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# Lowest first. A module may import from its own unit (the package or module it belongs
# to) and from units of lower layers, nothing else.
LAYERS = [
    {"labels", "distributed", "paper", "progress", "claims"},
    {"config", "compute", "data", "gis", "masking", "metrics", "kernels"},
    {"losses", "loaders", "report"},
    {"models", "training_report"},
    {"runs", "evaluation"},
    {"train", "migrate"},
    {"cam", "plots", "predict"},
    {"figure_data"},
    {"experiments"},
    {"results"},
    {"reproduce", "tables"},
    {"cli"},
    {"__init__", "__main__"},
]
LAYER = {unit: i for i, units in enumerate(LAYERS) for unit in units}


def module_files() -> dict[str, Path]:
    """Dotted module name -> file, for ``mrife/`` and ``kernels/`` (installed as ``mrife.kernels``)."""
    out = {}
    for folder, package in ((ROOT / "mrife", "mrife"), (ROOT / "kernels", "mrife.kernels")):
        for path in folder.rglob("*.py"):
            parts = [package, *path.relative_to(folder).with_suffix("").parts]
            out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


MODULES = module_files()


def imported_modules(name: str, path: Path) -> set[str]:
    """The ``mrife`` modules that ``name`` imports, wherever the import statement stands."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from .x import y, from .. import z
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            # "from pkg import sub" imports the submodule when there is one
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names]
        else:
            continue
        found |= {t for t in targets if t == "mrife" or t.startswith("mrife.")}
    return found - {name}


def unit(module: str) -> str:
    """``mrife.models.icssn`` -> ``models``; ``mrife`` -> ``__init__``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


GRAPH = {name: imported_modules(name, path) for name, path in MODULES.items()}


def test_every_unit_has_a_declared_layer():
    missing = sorted({unit(m) for m in MODULES} - set(LAYER))
    assert not missing, f"modules outside the declared layers (add them to mrife/__init__.py and here): {missing}"


def upward(name: str, imports: set[str]) -> list[str]:
    """The imports of module ``name`` that are not in its own unit or a lower layer."""
    here = unit(name)
    return sorted(t for t in imports if unit(t) != here and LAYER[unit(t)] >= LAYER[here])


@pytest.mark.parametrize("name", sorted(MODULES))
def test_imports_go_down_the_layers(name):
    wrong = upward(name, GRAPH[name])
    assert not wrong, (f"{name} (layer {LAYER[unit(name)]}, {unit(name)}) imports {wrong}, which are not "
                       f"below it; the layers are {LAYERS}")


def test_no_import_cycle():
    done, on_path = set(), []

    def visit(module):
        if module in on_path:
            cycle = on_path[on_path.index(module):] + [module]
            pytest.fail("import cycle: " + " -> ".join(cycle))
        if module in done:
            return
        on_path.append(module)
        for target in GRAPH.get(module, ()):
            if unit(target) != "__init__":  # every `import mrife.x` runs the package's face first
                visit(target)
        on_path.pop()
        done.add(module)

    for module in sorted(GRAPH):
        visit(module)


def test_a_lazy_or_relative_import_upwards_is_caught(tmp_path):
    # A check that cannot fail is no check: an import inside a function, and a relative
    # one, are both found and both refused in a leaf.
    leaf = tmp_path / "masked_supcon.py"
    leaf.write_text("def f():\n    from mrife.losses import joint_loss\n    from ..train import fit\n")
    found = imported_modules("mrife.kernels.masked_supcon", leaf)
    assert found == {"mrife.losses", "mrife.train"}, f"expected the two lazy imports, found {found}"
    assert upward("mrife.kernels.masked_supcon", found) == ["mrife.losses", "mrife.train"]
