"""One import path per name: every name is imported from the module that defines it.

The package's public API is ``napari_lesionmix/__init__.py``; it imports each name from
its defining module, and ``from napari_lesionmix import X`` is the one other path. No
module re-exports what it imported (no hubs inside ``core/`` or ``batch/``).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "napari_lesionmix"
SOURCES = sorted(p for d in (PACKAGE, "tests", "benchmarks", "scripts")
                 for p in (ROOT / d).rglob("*.py"))


def _module_file(module: str) -> Path | None:
    base = ROOT.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _defined(path: Path) -> set[str]:
    """Top-level names a module defines itself (not those it imports)."""
    names = set()
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            for target in node.targets:
                for t in ast.walk(target):
                    if isinstance(t, ast.Name):
                        names.add(t.id)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
        elif isinstance(node, (ast.If, ast.Try)):  # names defined under a guard
            for sub in ast.walk(node):
                if isinstance(sub, (ast.FunctionDef, ast.ClassDef)):
                    names.add(sub.name)
    return names


def _absolute(path: Path, node: ast.ImportFrom) -> str | None:
    if node.level == 0:
        return node.module
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    package = parts[:-1]  # the package a module (or an __init__) belongs to
    base = package[: len(package) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _violations() -> list[str]:
    out = []
    cache: dict[str, set[str]] = {}
    for path in SOURCES:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if not isinstance(node, ast.ImportFrom):
                continue
            module = _absolute(path, node)
            if module is None or not module.startswith(PACKAGE) or module == PACKAGE:
                continue
            target = _module_file(module)
            if target is None:
                continue
            if module not in cache:
                cache[module] = _defined(target)
            for alias in node.names:
                name = alias.name
                if name == "*":
                    out.append(f"{path.relative_to(ROOT)}:{node.lineno}: star import from {module}")
                    continue
                if name in cache[module] or _module_file(f"{module}.{name}") is not None:
                    continue
                out.append(f"{path.relative_to(ROOT)}:{node.lineno}: {name} imported from "
                           f"{module}, which does not define it")
    return out


def test_every_name_comes_from_its_defining_module():
    problems = _violations()
    assert not problems, "\n".join(problems)


def test_the_public_api_names_only_what_it_imports():
    import napari_lesionmix

    missing = [n for n in napari_lesionmix.__all__ if not hasattr(napari_lesionmix, n)]
    assert not missing


@pytest.mark.parametrize("package", ["core", "batch"])
def test_subpackages_re_export_nothing(package):
    tree = ast.parse((ROOT / PACKAGE / package / "__init__.py").read_text(encoding="utf-8"))
    imports = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
    assert imports == [], f"{package}/__init__.py imports {len(imports)} name(s)"
