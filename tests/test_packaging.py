"""Packaging checks: the explicit package list, the CLI entry points, a real install."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from graphc._version import __version__

ROOT = Path(__file__).resolve().parents[1]
# Source folder -> the package name it installs as (mirrors [tool.setuptools.package-dir]).
SOURCE_ROOTS = {"graphc": "graphc", "frontends": "graphc.frontends", "backends": "graphc.backends"}


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def _source_packages() -> set[str]:
    """Installed names of every folder with an __init__.py under the source roots."""
    found = set()
    for folder, name in SOURCE_ROOTS.items():
        for init in (ROOT / folder).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT / folder).parts
            if "__pycache__" not in rel:
                found.add(".".join((name, *rel)))
    return found


def test_package_dir_matches_source_roots():
    assert _pyproject()["tool"]["setuptools"]["package-dir"] == {v: k for k, v in SOURCE_ROOTS.items()}


def test_every_subpackage_is_listed():
    # packages is an explicit list, so a forgotten subpackage would silently be left out
    # of a non-editable install (an editable one still finds it, hiding the mistake).
    listed = set(_pyproject()["tool"]["setuptools"]["packages"])
    missing = _source_packages() - listed
    assert not missing, f"add to [tool.setuptools] packages in pyproject.toml: {sorted(missing)}"


def _run(*cmd: str) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=60)


def test_python_m_graphc_version():
    res = _run(sys.executable, "-m", "graphc", "--version")
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == f"graphc {__version__}"


def _console_script() -> str:
    # The script sits next to the interpreter of the venv graphc is installed in.
    script = Path(sys.executable).with_name("graphc")
    if not script.exists():
        pytest.skip("graphc is not installed in this environment (pip install -e .)")
    return str(script)


def test_console_script_version():
    res = _run(_console_script(), "--version")
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == f"graphc {__version__}"


def test_help_mentions_an_example():
    res = _run(_console_script(), "--help")
    assert res.returncode == 0, res.stderr
    assert "example" in res.stdout.lower()


def test_main_exit_codes():
    from graphc.cli import main

    assert main(["--version"]) == 0
    assert main([]) == 0
    assert main(["--no-such-flag"]) == 2


@pytest.mark.slow
def test_real_install_imports_backends(tmp_path):
    # A non-editable `pip install --target` is the real wheel layout without a new venv,
    # and --no-deps keeps it quick: the running interpreter already has the dependencies.
    # Building needs setuptools>=77 from PyPI or pip's cache (build isolation). It builds
    # from a copy, so pip's in-tree build/ and *.egg-info never land in the checkout.
    src = tmp_path / "src"
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(
        ".venv", ".git", "build", "dist", "*.egg-info", "__pycache__", ".*_cache", ".hypothesis"))
    target = tmp_path / "site"
    res = subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-input",
         "--target", str(target), str(src)],
        capture_output=True, text=True, timeout=600,
    )
    assert res.returncode == 0, res.stdout + res.stderr

    code = ("import graphc, graphc.backends, graphc.frontends; "
            "print(graphc.__version__); print(graphc.backends.__file__)")
    env = {**os.environ, "PYTHONPATH": str(target)}
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env,  # not ROOT
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    version, backends_file = out.stdout.split()
    assert version == __version__
    assert Path(backends_file).is_relative_to(target)  # the installed copy, not the checkout
    assert (target / "graphc" / "backends" / "__init__.py").exists()
    assert not (target / "backends").exists()  # mapped into graphc, not a top-level package
