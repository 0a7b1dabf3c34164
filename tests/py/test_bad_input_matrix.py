"""The bad-input matrix: every function of include/zk_states.h called with NULL in
each pointer position and with out-of-range enum codes, against the documented
result (tests/matrix/gen_matrix.py generates the C program from the header and
the table in tests/matrix/expectations.py).

The generated program is compiled warning-free as C99 (-Wall -Wextra -Werror
-pedantic) against the shared library and run plain and under
AddressSanitizer/UndefinedBehaviorSanitizer; it must exit 0 and report that it
called every function of the header.
"""

import os
import re
import shutil
import subprocess
import sys

import pytest

CFLAGS = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic"]


def header_functions(header):
    """The function names declared in the header, read independently of the
    generator: declarations at the start of a line inside the extern "C" block."""
    text = header.read_text()
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    block = text.split('extern "C" {', 1)[1]
    names = re.findall(r"^[A-Za-z_][\w \*]*?\b(zk_\w+)\(", block, flags=re.M)
    return sorted(set(names))


def generate(root, header, out):
    return subprocess.run(
        [sys.executable, str(root / "tests" / "matrix" / "gen_matrix.py"), "--header", str(header), "--out", str(out)],
        capture_output=True, text=True, cwd=root,
    )


@pytest.fixture(scope="module")
def matrix_c(root, include_dir, build_dir):
    out = build_dir / "matrix.c"
    r = generate(root, include_dir / "zk_states.h", out)
    assert r.returncode == 0, f"gen_matrix failed:\n{r.stdout}\n{r.stderr}"
    return out


def compile_and_run(matrix_c, include_dir, lib_path, exe, extra_flags=(), env=None):
    gcc = shutil.which("gcc")
    assert gcc, "gcc is required"
    libdir = lib_path.parent
    cmd = [gcc, *CFLAGS, *extra_flags, f"-I{include_dir}", str(matrix_c), "-o", str(exe),
           f"-L{libdir}", f"-Wl,-rpath,{libdir}", "-lzk_states", "-lpthread", "-lm"]
    c = subprocess.run(cmd, capture_output=True, text=True)
    assert c.returncode == 0, f"compiling the matrix failed:\n{' '.join(cmd)}\n{c.stderr}"
    run_env = dict(os.environ)
    run_env.update(env or {})
    r = subprocess.run([str(exe)], capture_output=True, text=True, timeout=300, env=run_env)
    return r


def check_report(r, header):
    m = re.search(r"MATRIX: covered (\d+)/(\d+) functions, (\d+) cases, (\d+) failures", r.stdout)
    assert m, f"no MATRIX summary (exit {r.returncode}):\n{r.stdout}\n{r.stderr[-4000:]}"
    covered, total, cases, failures = map(int, m.groups())
    assert r.returncode == 0 and failures == 0, f"matrix failures (exit {r.returncode}):\n{r.stdout}\n{r.stderr[-8000:]}"
    names = header_functions(header)
    assert total == len(names), f"the matrix knows {total} functions, the header declares {len(names)}: {names}"
    assert covered == len(names), f"only {covered}/{len(names)} functions covered"
    assert cases > 3 * len(names)
    return covered, total, cases


def test_matrix_plain(matrix_c, include_dir, lib_path, build_dir):
    r = compile_and_run(matrix_c, include_dir, lib_path, build_dir / "matrix_plain")
    covered, total, cases = check_report(r, include_dir / "zk_states.h")
    print(f"matrix: {covered}/{total} functions, {cases} cases")


def test_matrix_sanitizers(matrix_c, include_dir, lib_path, build_dir):
    r = compile_and_run(
        matrix_c, include_dir, lib_path, build_dir / "matrix_asan",
        extra_flags=["-g", "-fsanitize=address,undefined", "-fno-sanitize-recover=undefined",
                     "-fno-omit-frame-pointer"],
        env={"ASAN_OPTIONS": "detect_leaks=1:abort_on_error=0:halt_on_error=1",
             "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1"},
    )
    check_report(r, include_dir / "zk_states.h")


def test_generator_fails_on_uncovered_function(root, include_dir, tmp_path):
    """Adding a function to the header without a table entry breaks the build."""
    header = (include_dir / "zk_states.h").read_text()
    anchor = "uint64_t zk_dispatch_current_seq(void);"
    assert anchor in header
    patched = tmp_path / "zk_states.h"
    patched.write_text(header.replace(anchor, anchor + "\n\nint32_t zk_brand_new(const char *name, int32_t code);"))
    r = generate(root, patched, tmp_path / "matrix.c")
    assert r.returncode != 0
    assert "zk_brand_new" in r.stderr and "no entry" in r.stderr


def test_generator_fails_on_uncovered_parameter(root, include_dir, tmp_path):
    """A new pointer or enum-code parameter of a covered function needs an expectation too."""
    header = (include_dir / "zk_states.h").read_text()
    old = "int32_t zk_dispatcher_flush(struct zk_dispatcher *d);"
    assert old in header
    patched = tmp_path / "zk_states.h"
    patched.write_text(header.replace(old, "int32_t zk_dispatcher_flush(struct zk_dispatcher *d, int32_t *when, int32_t mode);"))
    r = generate(root, patched, tmp_path / "matrix.c")
    assert r.returncode != 0
    assert "'when'" in r.stderr and "'mode'" in r.stderr
