"""Shared pytest fixtures: the built library, compilers, and the repository layout.

The test command (scripts/test-all) runs `cargo build` before pytest; if the
library is missing anyway (pytest run by hand), it is built here once.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "python"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

PROFILE = os.environ.get("ZK_STATES_PROFILE", "debug")
TARGET = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target")) / PROFILE
INCLUDE = ROOT / "include"


def soname_version():
    """cargo-c's soname rule, as build.rs applies it: major, or 0.minor before 1.0."""
    import re

    version = re.search(r'^version = "(\d+)\.(\d+)\.(\d+)"', (ROOT / "Cargo.toml").read_text(), re.M)
    major, minor = version.group(1), version.group(2)
    return f"0.{minor}" if major == "0" else major


def ensure_soname_link(so):
    """cargo writes only libzk_states.so; programs linked against it need the soname
    (libzk_states.so.0.1) at run time, as `ldconfig -n` or `make install` would provide."""
    link = so.with_name(f"libzk_states.so.{soname_version()}")
    if not link.exists():
        try:
            link.symlink_to(so.name)
        except FileExistsError:
            pass
    return link


def _ensure_built():
    so = TARGET / "libzk_states.so"
    if not so.exists():
        cmd = ["cargo", "build", "--quiet"] + (["--release"] if PROFILE == "release" else [])
        subprocess.run(cmd, cwd=ROOT, check=True)
    ensure_soname_link(so)
    return so


@pytest.fixture(scope="session")
def lib_path():
    """Path of the built shared library (also exported as ZK_STATES_LIB for the Python package)."""
    so = _ensure_built()
    os.environ["ZK_STATES_LIB"] = str(so)
    return so


@pytest.fixture(scope="session")
def static_lib_path(lib_path):
    return lib_path.with_name("libzk_states.a")


@pytest.fixture(scope="session")
def include_dir():
    return INCLUDE


@pytest.fixture(scope="session")
def root():
    return ROOT


@pytest.fixture(scope="session")
def build_dir(tmp_path_factory):
    """A scratch directory for compiled test programs, shared by the session."""
    return tmp_path_factory.mktemp("cbuild")


def have(tool):
    return shutil.which(tool) is not None
