"""The C test suite (tests/c/) for the zk-states C ABI.

Every C program is compiled with ``gcc -std=c99 -Wall -Wextra -Werror
-pedantic -I include`` and linked twice, against the shared library (with an
rpath) and against the static library (``libzk_states.a -lpthread -ldl -lm``),
then run in three variants:

* ``plain``: built with -O1 -g and run directly;
* ``asan``: built with ``-fsanitize=address,undefined -fno-omit-frame-pointer``
  and run with ``ASAN_OPTIONS=detect_leaks=1`` and
  ``UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1``;
* ``valgrind``: the plain build run under ``valgrind --error-exitcode=1
  --leak-check=full --errors-for-leak-kinds=definite`` (skipped with a reason
  when valgrind is missing); the stress test runs with a smaller scale there.

The programs: ``test_core`` (the data model: enums, names, conversion tables,
the Stat codec/properties/repr, the wire decoders, the session machine),
``test_dispatch`` (the dispatcher's contract), ``test_stress`` (threads
hammering three dispatchers with exact accounting at the end), and, when the
official ZooKeeper C client is installed, ``test_c_client`` (cross-checks
against libzookeeper-mt's constants and jute serializers, and the
``zk_dispatcher_c_watcher`` adapter).

Each run must exit 0 and print ``<name>: N passed, 0 failed`` with N > 0; on
failure the test shows the program's output. The header is also compiled as
C++11/C++17 (g++ -Wall -Wextra -Werror -pedantic) and as C99/C11 in two
translation units linked together. ``test_bugs.c`` holds one reproduction per
library bug or doc/behaviour mismatch found (all fixed), each run as its own
``test_regression[...]`` test.

Environment knobs: ``ZK_C_STRESS_SCALE`` multiplies the stress test's
iterations (e.g. 20 for a long run); ``ZK_C_KEEP_BUILD=1`` prints where the
binaries are.
"""

import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
C_DIR = ROOT / "tests" / "c"

CFLAGS = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic"]
CXXFLAGS_BASE = ["-Wall", "-Wextra", "-Werror", "-pedantic"]
SANITIZE = ["-fsanitize=address,undefined", "-fno-omit-frame-pointer",
            "-fno-sanitize-recover=undefined"]
STATIC_LIBS = ["-lpthread", "-ldl", "-lm"]
JUTE_H = Path("/usr/include/zookeeper/zookeeper.jute.h")
ZOOKEEPER_H = Path("/usr/include/zookeeper/zookeeper.h")

RUN_TIMEOUT = 240
STRESS_SCALE = float(os.environ.get("ZK_C_STRESS_SCALE", "1"))
# Per-variant stress scale: sanitizers and valgrind are slower.
STRESS_SCALES = {"plain": 1.0, "asan": 0.5, "valgrind": 0.015}

PROGRAMS = {
    # name: (sources, needs pthread)
    "test_core": (["test_core.c"], False),
    "test_dispatch": (["test_dispatch.c"], True),
    "test_stress": (["test_stress.c"], True),
}

VALGRIND = ["valgrind", "--error-exitcode=1", "--leak-check=full",
            "--errors-for-leak-kinds=definite", "--show-leak-kinds=definite",
            "--num-callers=30", "--fair-sched=yes", "-q"]

SANITIZER_ENV = {
    "ASAN_OPTIONS": "detect_leaks=1:abort_on_error=0:halt_on_error=1:"
                    "strict_string_checks=1:detect_stack_use_after_return=1",
    "UBSAN_OPTIONS": "halt_on_error=1:print_stacktrace=1",
}


def _have(tool):
    return shutil.which(tool) is not None


def _zookeeper_static_lib():
    """The C client's static library: the shared one hides the jute symbols."""
    for d in ("/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib64", "/usr/lib",
              "/usr/local/lib"):
        p = Path(d) / "libzookeeper_mt.a"
        if p.exists():
            return p
    return None


def _show(proc, cmd):
    return (f"command: {' '.join(str(c) for c in cmd)}\nexit status: {proc.returncode}\n"
            f"--- stdout ---\n{proc.stdout}\n--- stderr ---\n{proc.stderr}")


def _compile(cmd, what):
    proc = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        pytest.fail(f"compiling {what} failed\n{_show(proc, cmd)}", pytrace=False)
    return proc


def _soname(so):
    """The SONAME of a shared library (None if it has none or readelf is missing)."""
    if not _have("readelf"):
        return None
    out = subprocess.run(["readelf", "-d", str(so)], capture_output=True, text=True).stdout
    m = re.search(r"\(SONAME\)\s+Library soname: \[([^\]]+)\]", out)
    return m.group(1) if m else None


@pytest.fixture(scope="session")
def cc():
    if not _have("gcc"):
        pytest.skip("gcc is not installed")
    return "gcc"


@pytest.fixture(scope="session")
def shared_rpath_dir(lib_path, build_dir):
    """A directory holding the shared library under its SONAME, for -rpath.

    cargo builds ``libzk_states.so`` whose SONAME is ``libzk_states.so.0.1``;
    the loader looks for the SONAME, which cargo does not create, so the
    suite links the build-tree library through a symlink of that name
    (``test_readme_link_recipe`` checks the documented recipe).
    """
    soname = _soname(lib_path)
    if soname is None or (lib_path.parent / soname).exists():
        return lib_path.parent
    d = build_dir / "shlib"
    d.mkdir(exist_ok=True)
    link = d / soname
    if not link.exists():
        link.symlink_to(lib_path)
    return d


@pytest.fixture(scope="session")
def sanitizers_available(cc, build_dir):
    """Whether gcc can link -fsanitize=address,undefined programs (libasan/libubsan)."""
    src = build_dir / "sanitizer_probe.c"
    src.write_text("int main(void) { return 0; }\n")
    proc = subprocess.run([cc] + SANITIZE + [str(src), "-o", str(build_dir / "sanitizer_probe")],
                          capture_output=True, text=True)
    return proc.returncode == 0, proc.stderr


class Builder:
    """Compiles (and caches) the test programs for one pytest session."""

    def __init__(self, cc, build_dir, lib_path, static_lib_path, include_dir, rpath_dir):
        self.cc = cc
        self.out = build_dir
        self.lib = lib_path
        self.static = static_lib_path
        self.include = include_dir
        self.rpath = rpath_dir
        self.cache = {}
        self.times = {}

    def extra_cflags(self):
        flags = []
        if JUTE_H.exists():
            flags.append("-DZK_TEST_HAVE_ZOOKEEPER_JUTE_H=1")
        return flags

    def link_flags(self, link):
        if link == "shared":
            return [str(self.lib), f"-Wl,-rpath,{self.rpath}"]
        if not self.static.exists():
            pytest.skip(f"{self.static} was not built")
        return [str(self.static)] + STATIC_LIBS

    def build(self, name, sources, link, variant, pthread=True, extra_link=(), std_flags=None):
        key = (name, link, variant, tuple(sources), tuple(extra_link))
        if key in self.cache:
            return self.cache[key]
        exe = self.out / f"{name}-{link}-{variant}"
        cmd = [self.cc] + (std_flags or CFLAGS) + ["-g", "-I", self.include, "-I", C_DIR]
        cmd += self.extra_cflags()
        cmd += SANITIZE if variant == "asan" else ["-O1"]
        if pthread:
            cmd.append("-pthread")
        cmd += [C_DIR / s for s in sources]
        cmd += ["-o", exe]
        cmd += self.link_flags(link)
        cmd += list(extra_link)
        if pthread:
            cmd.append("-lpthread")
        start = time.monotonic()
        _compile(cmd, f"{name} ({link}, {variant})")
        self.times[key] = time.monotonic() - start
        self.cache[key] = exe
        return exe


@pytest.fixture(scope="session")
def builder(cc, build_dir, lib_path, static_lib_path, include_dir, shared_rpath_dir):
    return Builder(cc, build_dir, lib_path, static_lib_path, include_dir, shared_rpath_dir)


def _run(exe, variant, args=(), timeout=RUN_TIMEOUT):
    env = dict(os.environ)
    cmd = [str(exe)] + [str(a) for a in args]
    if variant == "asan":
        env.update(SANITIZER_ENV)
    elif variant == "valgrind":
        if not _have("valgrind"):
            pytest.skip("valgrind is not installed (apt-get install valgrind)")
        cmd = VALGRIND + cmd
    start = time.monotonic()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"timed out after {timeout} s: {' '.join(cmd)}\n"
                    f"--- stdout ---\n{e.stdout}\n--- stderr ---\n{e.stderr}", pytrace=False)
    elapsed = time.monotonic() - start
    return proc, cmd, elapsed


def _assert_passed(proc, cmd, elapsed, name):
    summary = re.search(rf"^{re.escape(name)}: (\d+) passed, (\d+) failed$", proc.stdout,
                        re.MULTILINE)
    if proc.returncode != 0 or summary is None or int(summary.group(2)) != 0:
        pytest.fail(f"{name} failed after {elapsed:.1f} s\n{_show(proc, cmd)}", pytrace=False)
    # A passing run must have made real checks.
    assert int(summary.group(1)) > 0, _show(proc, cmd)
    print(f"{name}: {summary.group(1)} checks passed in {elapsed:.2f} s")


# ---------------------------------------------------------------------------
# The C programs: every program x {shared, static} x {plain, asan, valgrind}
# ---------------------------------------------------------------------------

VARIANTS = ["plain", "asan", "valgrind"]
LINKS = ["shared", "static"]


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("link", LINKS)
@pytest.mark.parametrize("program", list(PROGRAMS))
def test_c_program(builder, sanitizers_available, program, link, variant):
    if variant == "asan" and not sanitizers_available[0]:
        pytest.skip("gcc cannot build -fsanitize=address,undefined programs "
                    f"(install libasan/libubsan): {sanitizers_available[1]}")
    sources, pthread = PROGRAMS[program]
    exe = builder.build(program, sources, link, "asan" if variant == "asan" else "plain",
                        pthread=pthread)
    args = []
    if program == "test_stress":
        args = [f"{STRESS_SCALE * STRESS_SCALES[variant]:g}"]
    proc, cmd, elapsed = _run(exe, variant, args)
    _assert_passed(proc, cmd, elapsed, program)


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("link", LINKS)
def test_c_client_cross_check(builder, sanitizers_available, link, variant):
    """Against the official C client: constants, Stat and event serialization, the adapter."""
    if variant == "asan" and not sanitizers_available[0]:
        pytest.skip("gcc cannot build -fsanitize=address,undefined programs")
    zk_static = _zookeeper_static_lib()
    if not ZOOKEEPER_H.exists() or zk_static is None:
        pytest.skip("the ZooKeeper C client is not installed (apt-get install libzookeeper-mt-dev)")
    exe = builder.build("test_c_client", ["test_c_client.c"], link,
                        "asan" if variant == "asan" else "plain", pthread=True,
                        extra_link=[str(zk_static), "-lm"])
    proc, cmd, elapsed = _run(exe, variant)
    _assert_passed(proc, cmd, elapsed, "test_c_client")


def test_stat_layout_checked_against_struct_stat(builder):
    """The zk_stat/struct Stat comparison must actually be compiled in when the header exists."""
    if not JUTE_H.exists():
        pytest.skip(f"{JUTE_H} is missing (apt-get install libzookeeper-mt-dev)")
    exe = builder.build("test_core", PROGRAMS["test_core"][0], "shared", "plain", pthread=False)
    proc, cmd, elapsed = _run(exe, "plain")
    _assert_passed(proc, cmd, elapsed, "test_core")
    assert "comparing layouts" in proc.stdout, _show(proc, cmd)


# ---------------------------------------------------------------------------
# Header checks: C++ and C dialects, double inclusion
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("std", ["c++11", "c++17"])
def test_header_as_cpp(builder, std, include_dir, shared_rpath_dir, lib_path):
    if not _have("g++"):
        pytest.skip("g++ is not installed (apt-get install g++)")
    exe = builder.out / f"test_header_cpp-{std}"
    cmd = ["g++", f"-std={std}"] + CXXFLAGS_BASE + ["-g", "-I", include_dir, "-I", C_DIR,
                                                  "-pthread", C_DIR / "test_header_cpp.cpp",
                                                  "-o", exe, lib_path,
                                                  f"-Wl,-rpath,{shared_rpath_dir}"]
    _compile(cmd, f"test_header_cpp.cpp as {std}")
    proc, cmd, elapsed = _run(exe, "plain")
    _assert_passed(proc, cmd, elapsed, "test_header_cpp")


@pytest.mark.parametrize("std", ["c99", "c11"])
@pytest.mark.parametrize("link", LINKS)
def test_header_double_include(builder, std, link):
    """Two translation units, each including the header twice, in one program."""
    flags = [f"-std={std}"] + CFLAGS[1:]
    exe = builder.build(f"double_include-{std}", ["double_include_a.c", "double_include_b.c"],
                        link, "plain", pthread=False, std_flags=flags)
    proc, cmd, elapsed = _run(exe, "plain")
    _assert_passed(proc, cmd, elapsed, "double_include")


@pytest.mark.parametrize("std", ["c11", "c17"])
def test_c_programs_compile_as(builder, std, cc, include_dir):
    """The C tests (and so the header) are clean in later C dialects too."""
    for name, (sources, pthread) in PROGRAMS.items():
        cmd = [cc, f"-std={std}"] + CFLAGS[1:] + ["-fsyntax-only", "-I", include_dir, "-I", C_DIR]
        cmd += builder.extra_cflags()
        if pthread:
            cmd.append("-pthread")
        cmd += [C_DIR / s for s in sources]
        _compile(cmd, f"{name} as {std}")


# ---------------------------------------------------------------------------
# Library bugs: one failing test per reproduction in tests/c/test_bugs.c
# ---------------------------------------------------------------------------

def _bug_cases():
    src = (C_DIR / "test_bugs.c").read_text()
    return re.findall(r'^\s*\{"([a-z_]+)", bug_[a-z_]+\},$', src, re.MULTILINE)


@pytest.mark.parametrize("case", _bug_cases())
def test_regression(builder, case):
    """LIBRARY BUG / DOC MISMATCH reproductions: they fail until the library is fixed."""
    exe = builder.build("test_bugs", ["test_bugs.c"], "shared", "plain", pthread=True)
    proc, cmd, elapsed = _run(exe, "plain", [case], timeout=60)
    _assert_passed(proc, cmd, elapsed, case)


def test_readme_link_recipe(cc, lib_path, include_dir, build_dir):
    """DOC MISMATCH: README says to link with ``-Iinclude -L<target dir> -lzk_states``.

    The shared library's SONAME is ``libzk_states.so.0.1`` but cargo only
    creates ``libzk_states.so``, so a program linked that way cannot start
    from the build tree, even with LD_LIBRARY_PATH pointing at the directory.
    """
    exe = build_dir / "readme_recipe"
    main = build_dir / "readme_recipe_main.c"
    main.write_text('#include "zk_states.h"\n#include <string.h>\n'
                    "int main(void) { return strcmp(zk_states_version(), ZK_STATES_VERSION); }\n")
    cmd = [cc, "-std=c99", f"-I{include_dir}", str(main), "-o", str(exe),
           f"-L{lib_path.parent}", "-lzk_states"]
    _compile(cmd, "the README's link recipe")
    env = dict(os.environ, LD_LIBRARY_PATH=str(lib_path.parent))
    proc = subprocess.run([str(exe)], capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 0, (
        f"a program linked as README says does not run from the build tree "
        f"(SONAME {_soname(lib_path)!r} is not in {lib_path.parent})\n{_show(proc, [exe])}")
