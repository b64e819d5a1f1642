"""The house rules, checked from the code: rooms by job, entry points only at the top, imports of pedgpt's own
modules at the top of files, no cycles or upward arrows (``lint-imports``), no private torch internals."""

import ast
import shutil
import subprocess

import pytest

from helpers import ROOT

PKG = ROOT / "pedgpt"
ENTRY_POINTS = {"train", "evaluate", "score", "judge", "chat", "serve", "export"}
ROOMS = {
    "adapters",
    "common",
    "config",
    "data",
    "distributed",
    "evaluation",
    "inference",
    "losses",
    "metrics",
    "models",
    "resources",
    "stages",
    "training",
}


def test_top_level_holds_entry_points_and_rooms_only():
    modules = {p.stem for p in PKG.glob("*.py")} - {"__init__"}
    packages = {p.name for p in PKG.iterdir() if p.is_dir() and p.name != "__pycache__"}
    assert modules == ENTRY_POINTS
    assert packages == ROOMS


def test_entry_points_only_parse_and_call():
    """An entry point defines no classes and at most a parser, `main` and small option helpers."""
    for name in ENTRY_POINTS:
        tree = ast.parse((PKG / f"{name}.py").read_text())
        assert not [n for n in tree.body if isinstance(n, ast.ClassDef)], name
        funcs = [n.name for n in tree.body if isinstance(n, ast.FunctionDef)]
        assert "main" in funcs and len(funcs) <= 3, (name, funcs)


def _function_level_imports(path):
    tree = ast.parse(path.read_text())
    out = []
    for fn in ast.walk(tree):
        if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for node in ast.walk(fn):
                if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("pedgpt"):
                    out.append(f"{path.relative_to(ROOT)}:{node.lineno}")
                if isinstance(node, ast.Import) and any(a.name.startswith("pedgpt") for a in node.names):
                    out.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    return out


def test_pedgpt_imports_sit_at_the_top_of_files():
    found = [hit for path in PKG.rglob("*.py") for hit in _function_level_imports(path)]
    assert found == []


def test_no_private_torch_internals():
    hits = [str(p.relative_to(ROOT)) for p in PKG.rglob("*.py") if "torch._C" in p.read_text()]
    assert hits == []


@pytest.mark.skipif(shutil.which("lint-imports") is None, reason="import-linter is a dev dependency")
def test_import_contracts_hold():
    proc = subprocess.run(["lint-imports", "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert "0 broken" in proc.stdout
