"""Packaging: `make install` into a temporary prefix, and consumers of the result.

What an installed zk-states must give a downstream project, checked on the
installed tree only (never on the source tree):

- the files, modes and symlinks of `make install` (real file
  libzk_states.so.X.Y.Z, soname link, dev link, static library, header,
  pkg-config file, CMake package), and the soname recorded in the library;
- tests/packaging/consumer.c built through pkg-config (shared, and static with
  `pkg-config --static`) and through CMake's find_package(zk_states)
  (zk_states::zk_states and zk_states::zk_states_static), and run;
- the CMake package's version check, and that a DESTDIR-staged tree still
  works after being moved (relative paths), and `make uninstall`;
- symbol hygiene: the shared library exports only `zk_*` symbols, exactly the
  functions the header declares, and needs only the C runtime;
- the installed header compiles warning-free as C99, C11, C++11 and C++17
  (-Wall -Wextra -Werror -pedantic), included twice, and in two translation
  units (one C, one C++) of one program.

Needs make, cc/c++, pkg-config, cmake, readelf and nm (scripts/test-all
installs them); the release library is built with cargo if needed.
"""

import os
import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

from test_abi import parse_header

ROOT = Path(__file__).resolve().parents[2]
PKG_DIR = ROOT / "tests" / "packaging"
TOOLS = ("make", "cc", "c++", "pkg-config", "cmake", "readelf", "nm")

pytestmark = pytest.mark.skipif(
    any(shutil.which(t) is None for t in TOOLS),
    reason="needs " + ", ".join(TOOLS),
)

STRICT = ["-Wall", "-Wextra", "-Werror", "-pedantic"]


def run(cmd, **kwargs):
    """subprocess.run that shows the command and its output when it fails."""
    kwargs.setdefault("capture_output", True)
    kwargs.setdefault("text", True)
    proc = subprocess.run([str(c) for c in cmd], **kwargs)
    if proc.returncode != 0:
        pytest.fail(
            f"command failed ({proc.returncode}): {' '.join(map(str, cmd))}\n"
            f"--- stdout ---\n{proc.stdout}\n--- stderr ---\n{proc.stderr}",
            pytrace=False,
        )
    return proc


def version():
    pkg = tomllib.loads((ROOT / "Cargo.toml").read_text())["package"]
    return pkg["version"]


def soversion(v):
    major, minor = v.split("-")[0].split("+")[0].split(".")[:2]
    return f"0.{minor}" if major == "0" else major


def target_dir():
    return Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))


def needed(binary):
    out = run(["readelf", "-d", binary]).stdout
    return re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", out)


def clean_env(**extra):
    env = {k: v for k, v in os.environ.items()
           if k not in ("LD_LIBRARY_PATH", "PKG_CONFIG_PATH", "PKG_CONFIG_LIBDIR",
                        "PKG_CONFIG_SYSROOT_DIR", "CMAKE_PREFIX_PATH")}
    env.update(extra)
    return env


@pytest.fixture(scope="module")
def release_build():
    """The release libraries (cargo's cache makes this quick when up to date)."""
    run(["cargo", "build", "--release", "--quiet"], cwd=ROOT)
    rel = target_dir() / "release"
    assert (rel / "libzk_states.so").is_file() and (rel / "libzk_states.a").is_file()
    return rel


@pytest.fixture(scope="module")
def prefix(release_build, tmp_path_factory):
    """`make install PREFIX=<tmp>/usr` from the release build."""
    pfx = tmp_path_factory.mktemp("install") / "usr"
    run(["make", "-s", "install", f"PREFIX={pfx}"], cwd=ROOT)
    return pfx


@pytest.fixture(scope="module")
def pc_env(prefix):
    return clean_env(PKG_CONFIG_PATH=str(prefix / "lib" / "pkgconfig"))


def pkg_config(env, *args):
    return run(["pkg-config", *args, "zk_states"], env=env).stdout.split()


# --------------------------------------------------------------------------
# The installed tree
# --------------------------------------------------------------------------

def test_installed_files(prefix, release_build):
    v, so = version(), soversion(version())
    files = {p.relative_to(prefix).as_posix() for p in prefix.rglob("*") if not p.is_dir()}
    assert files == {
        f"lib/libzk_states.so.{v}",
        f"lib/libzk_states.so.{so}",
        "lib/libzk_states.so",
        "lib/libzk_states.a",
        "include/zk_states.h",
        "lib/pkgconfig/zk_states.pc",
        "lib/cmake/zk_states/zk_statesConfig.cmake",
        "lib/cmake/zk_states/zk_statesConfigVersion.cmake",
    }
    lib = prefix / "lib"
    real = lib / f"libzk_states.so.{v}"
    assert real.is_file() and not real.is_symlink()
    assert os.readlink(lib / f"libzk_states.so.{so}") == f"libzk_states.so.{v}"
    assert os.readlink(lib / "libzk_states.so") == f"libzk_states.so.{so}"
    assert real.read_bytes() == (release_build / "libzk_states.so").read_bytes()
    assert (lib / "libzk_states.a").read_bytes() == (release_build / "libzk_states.a").read_bytes()
    assert (prefix / "include" / "zk_states.h").read_bytes() == (
        ROOT / "include" / "zk_states.h").read_bytes()
    modes = {f: (prefix / f).stat().st_mode & 0o777 for f in files
             if not (prefix / f).is_symlink()}
    assert modes.pop(f"lib/libzk_states.so.{v}") == 0o755
    assert set(modes.values()) == {0o644}, modes


def test_soname(prefix):
    v, so = version(), soversion(version())
    out = run(["readelf", "-d", prefix / "lib" / f"libzk_states.so.{v}"]).stdout
    assert re.search(rf"\(SONAME\)\s+Library soname: \[libzk_states\.so\.{re.escape(so)}\]", out), out


def test_pkg_config_metadata(pc_env, prefix):
    run(["pkg-config", "--validate", "zk_states"], env=pc_env)
    assert pkg_config(pc_env, "--modversion") == [version()]
    assert pkg_config(pc_env, "--cflags") == [f"-I{prefix}/include"]
    assert pkg_config(pc_env, "--libs") == [f"-L{prefix}/lib", "-lzk_states"]
    static = pkg_config(pc_env, "--static", "--libs")
    assert static[:2] == [f"-L{prefix}/lib", "-lzk_states"]
    assert {"-lpthread", "-ldl", "-lm"} <= set(static[2:])


def test_cmake_package_files_are_relocatable(prefix):
    text = (prefix / "lib" / "cmake" / "zk_states" / "zk_statesConfig.cmake").read_text()
    assert str(prefix) not in text, "the CMake package must not hard-code the install prefix"
    assert "${CMAKE_CURRENT_LIST_DIR}" in text


# --------------------------------------------------------------------------
# Consumers: pkg-config and CMake, shared and static
# --------------------------------------------------------------------------

def check_consumer(exe, env=None, static=False):
    names = needed(exe)
    so = f"libzk_states.so.{soversion(version())}"
    if static:
        assert not any(n.startswith("libzk_states") for n in names), names
    else:
        assert so in names, names
    out = run([exe], env=env or clean_env()).stdout
    assert out.strip() == f"consumer ok {version()}"


def test_pkg_config_consumer_shared(pc_env, prefix, tmp_path):
    exe = tmp_path / "consumer_shared"
    run(["cc", "-std=c99", *STRICT, *pkg_config(pc_env, "--cflags"), PKG_DIR / "consumer.c",
         *pkg_config(pc_env, "--libs"), "-o", exe], env=pc_env)
    check_consumer(exe, env=clean_env(LD_LIBRARY_PATH=str(prefix / "lib")))


def test_pkg_config_consumer_static(pc_env, tmp_path):
    exe = tmp_path / "consumer_static"
    libs = pkg_config(pc_env, "--static", "--libs")
    # Pick libzk_states.a over the .so; the system libraries stay dynamic.
    libs = [x for lib in libs
            for x in (["-Wl,-Bstatic", lib, "-Wl,-Bdynamic"] if lib == "-lzk_states" else [lib])]
    run(["cc", "-std=c99", *STRICT, *pkg_config(pc_env, "--cflags"), PKG_DIR / "consumer.c",
         *libs, "-o", exe], env=pc_env)
    check_consumer(exe, static=True)


def test_cmake_consumer_shared_and_static(prefix, tmp_path):
    build = tmp_path / "build"
    v = version()
    major_minor = ".".join(v.split(".")[:2])
    out = run(["cmake", "-S", PKG_DIR, "-B", build, f"-DCMAKE_PREFIX_PATH={prefix}",
               f"-DZK_STATES_REQUIRED_VERSION={major_minor}", "-DCMAKE_BUILD_TYPE=Release"],
              env=clean_env()).stdout
    assert f"zk_states {v} from {prefix}/lib/cmake/zk_states" in out, out
    run(["cmake", "--build", build, "-j", "2"], env=clean_env())
    # No LD_LIBRARY_PATH: CMake's build RPATH points at the imported library.
    check_consumer(build / "consumer_shared")
    check_consumer(build / "consumer_static", static=True)


PROBE = """
cmake_minimum_required(VERSION 3.13)
project(zk_states_probe LANGUAGES C)
foreach(v IN LISTS PROBE_VERSIONS)
  unset(zk_states_FOUND)
  if(v STREQUAL "any")
    find_package(zk_states QUIET)
  else()
    find_package(zk_states ${v} QUIET)
  endif()
  message(STATUS "PROBE ${v} ${zk_states_FOUND}")
endforeach()
find_package(zk_states REQUIRED)
foreach(t zk_states::zk_states zk_states::zk_states_static)
  get_target_property(loc ${t} IMPORTED_LOCATION)
  get_target_property(inc ${t} INTERFACE_INCLUDE_DIRECTORIES)
  get_target_property(libs ${t} INTERFACE_LINK_LIBRARIES)
  message(STATUS "TARGET ${t}|${loc}|${inc}|${libs}")
endforeach()
"""


def cmake_probe(prefix, tmp_path, versions):
    src = tmp_path / "probe"
    src.mkdir(exist_ok=True)
    (src / "CMakeLists.txt").write_text(PROBE)
    out = run(["cmake", "-S", src, "-B", src / "build", f"-DCMAKE_PREFIX_PATH={prefix}",
               "-DPROBE_VERSIONS=" + ";".join(versions)], env=clean_env()).stdout
    found = dict(re.findall(r"-- PROBE (\S+) (\S*)", out))
    targets = {m[0]: m[1:] for m in re.findall(r"-- TARGET ([^|]+)\|([^|]*)\|([^|]*)\|(.*)", out)}
    return {v: found[v] in ("1", "TRUE", "ON") for v in versions}, targets


def test_cmake_version_check_and_targets(prefix, tmp_path):
    v = version()
    major, minor, patch = (int(x) for x in v.split("-")[0].split(".")[:3])
    same_series = f"{major}.{minor}"
    if major == 0:  # before 1.0 every minor release is a new ABI series
        newer, older = f"0.{minor + 1}", f"0.{minor - 1}" if minor else "0.0.0"
    else:
        newer, older = f"{major + 1}.0", f"{major - 1}.0" if major > 1 else "0.1"
    cases = {"any": True, same_series: True, v: True, f"{same_series}...{major + 1}.99": True,
             f"{major}.{minor}.{patch + 1}": False, newer: False, older: False,
             f"{major + 1}.0": False}
    found, targets = cmake_probe(prefix, tmp_path, list(cases))
    assert found == cases
    lib = prefix / "lib"
    loc, inc, libs = targets["zk_states::zk_states"]
    assert Path(loc) == lib / f"libzk_states.so.{v}" and Path(inc) == prefix / "include"
    loc, inc, libs = targets["zk_states::zk_states_static"]
    assert Path(loc) == lib / "libzk_states.a" and Path(inc) == prefix / "include"
    assert libs.split(";") == ["Threads::Threads", "dl", "m"]


def test_staged_install_relocates_and_uninstalls(release_build, tmp_path):
    """DESTDIR staging (as a distribution package is built), then the staged
    tree moved elsewhere: CMake and pkg-config (--define-prefix) still find
    everything. Finally `make uninstall` removes every file."""
    stage = tmp_path / "stage"
    run(["make", "-s", "install", "DESTDIR=" + str(stage), "PREFIX=/usr/local"], cwd=ROOT)
    pc = (stage / "usr/local/lib/pkgconfig/zk_states.pc").read_text()
    assert "prefix=/usr/local\n" in pc and str(stage) not in pc
    moved = tmp_path / "elsewhere"
    stage.rename(moved)
    pfx = moved / "usr" / "local"
    found, targets = cmake_probe(pfx, tmp_path, ["any"])
    assert found == {"any": True}
    assert Path(targets["zk_states::zk_states"][0]) == pfx / "lib" / f"libzk_states.so.{version()}"
    env = clean_env(PKG_CONFIG_PATH=str(pfx / "lib" / "pkgconfig"))
    out = run(["pkg-config", "--define-prefix", "--cflags", "--libs", "zk_states"], env=env).stdout
    assert out.split() == [f"-I{pfx}/include", f"-L{pfx}/lib", "-lzk_states"]
    run(["make", "-s", "uninstall", "DESTDIR=" + str(moved), "PREFIX=/usr/local"], cwd=ROOT)
    left = [p for p in moved.rglob("*") if not p.is_dir()]
    assert left == []


# --------------------------------------------------------------------------
# Symbol hygiene
# --------------------------------------------------------------------------

def exported_symbols(lib):
    out = run(["nm", "-D", "--defined-only", lib]).stdout
    return {line.split()[-1].split("@")[0] for line in out.splitlines() if line.strip()}


def test_exports_are_only_zk_symbols(prefix):
    syms = exported_symbols(prefix / "lib" / f"libzk_states.so.{version()}")
    assert syms, "no exported symbols"
    assert sorted(s for s in syms if not s.startswith("zk_")) == []


def test_exports_match_header(prefix):
    syms = exported_symbols(prefix / "lib" / f"libzk_states.so.{version()}")
    declared = set(parse_header(prefix / "include" / "zk_states.h")["functions"])
    assert sorted(declared - syms) == [], "declared in the header but not exported"
    assert sorted(syms - declared) == [], "exported but not declared in the header"


def test_every_export_is_declared_for_the_compiler(prefix, tmp_path):
    """Independent of the header parser: a C file naming every exported symbol
    compiles only if the header declares each one."""
    syms = sorted(exported_symbols(prefix / "lib" / f"libzk_states.so.{version()}"))
    src = tmp_path / "uses.c"
    src.write_text('#include <zk_states.h>\nint main(void) {\n'
                   + "".join(f"    (void)&{s};\n" for s in syms) + "    return 0;\n}\n")
    run(["cc", "-std=c99", *STRICT, "-I", prefix / "include", "-c", src, "-o", tmp_path / "uses.o"])


def test_runtime_dependencies_are_the_c_runtime_only(prefix):
    allowed = re.compile(r"^(libc|libm|libdl|libpthread|librt|libutil|libgcc_s|ld-linux[\w-]*)\.so")
    names = needed(prefix / "lib" / f"libzk_states.so.{version()}")
    assert names and all(allowed.match(n) for n in names), names


# --------------------------------------------------------------------------
# The installed header
# --------------------------------------------------------------------------

HEADER_TU = """\
#include <zk_states.h>
#include <zk_states.h> /* a second inclusion is harmless */

{linkage}int zk_tu_{name}(void);
int zk_tu_{name}(void)
{{
    zk_stat stat;
    zk_watched_event event;
    zk_session_machine machine;
    (void)stat;
    (void)event;
    (void)machine;
    return zk_states_abi_version() == ZK_STATES_ABI_VERSION && zk_status_message(ZK_OK) != {null};
}}
"""


@pytest.mark.parametrize("compiler,std,suffix", [
    ("cc", "c99", "c"), ("cc", "c11", "c"), ("c++", "c++11", "cpp"), ("c++", "c++17", "cpp")])
def test_installed_header_compiles_cleanly(prefix, tmp_path, compiler, std, suffix):
    src = tmp_path / f"tu.{suffix}"
    cpp = suffix == "cpp"
    src.write_text(HEADER_TU.format(name="a", null="nullptr" if cpp else "NULL",
                                    linkage='extern "C" ' if cpp else ""))
    run([compiler, f"-std={std}", *STRICT, "-I", prefix / "include", "-c", src,
         "-o", tmp_path / "tu.o"])


def test_header_in_two_translation_units(prefix, tmp_path):
    """Two translation units including the header (one C, one C++), linked into
    one program with the shared library: no duplicate definitions, and the
    C++ unit's calls resolve to the C symbols (extern "C")."""
    a, b, main = tmp_path / "a.c", tmp_path / "b.cpp", tmp_path / "main.c"
    a.write_text(HEADER_TU.format(name="a", null="NULL", linkage=""))
    b.write_text(HEADER_TU.format(name="b", null="nullptr", linkage='extern "C" '))
    main.write_text(
        "#include <stdio.h>\n#include <zk_states.h>\n"
        "int zk_tu_a(void);\nint zk_tu_b(void);\n"
        'int main(void) { printf("%d %d %s\\n", zk_tu_a(), zk_tu_b(), zk_states_version());'
        " return 0; }\n")
    objs = []
    for src, compiler, std in ((a, "cc", "c99"), (b, "c++", "c++11"), (main, "cc", "c11")):
        obj = tmp_path / (src.stem + ".o")
        run([compiler, f"-std={std}", *STRICT, "-I", prefix / "include", "-c", src, "-o", obj])
        objs.append(obj)
    exe = tmp_path / "two_tus"
    run(["c++", *objs, "-L", prefix / "lib", "-lzk_states", "-o", exe])
    out = run([exe], env=clean_env(LD_LIBRARY_PATH=str(prefix / "lib"))).stdout
    assert out.split() == ["1", "1", version()]
