"""ABI stability of include/zk_states.h against a checked-in snapshot.

tests/packaging/abi.json holds, per value of ZK_STATES_ABI_VERSION, what a
compiled C program sees of the public interface:

- every struct's size, alignment and each field's type, offset and size,
- the size of every enum and typedef'd type, and each enum constant's value,
- the value of every `#define ZK_*` (except the library's own version macros,
  which change with every release without touching the ABI),
- every typedef and function prototype, as normalised text (parameter names
  dropped: they are not part of the ABI).

Layouts and values are measured by compiling a generated program against the
header, once as C11 and once as C++11 (the two must agree). The test fails when
anything recorded for the current ZK_STATES_ABI_VERSION was removed or changed
while ZK_STATES_ABI_VERSION stayed the same. Additions (new functions,
constants, structs, typedefs) are compatible: they are reported as notes
(warnings) and the snapshot can be refreshed at leisure.

Refresh the snapshot (after bumping ZK_STATES_ABI_VERSION in src/ffi/core.rs
when the change is incompatible) with:

    ZK_STATES_UPDATE_ABI=1 pytest tests/py/test_abi.py

The helpers here (header parsing) are also used by test_packaging.py.
"""

import ctypes
import json
import os
import re
import shutil
import subprocess
import warnings
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
SNAPSHOT = ROOT / "tests" / "packaging" / "abi.json"
HEADER_NAME = "zk_states.h"

# Macros that change with every release without any ABI meaning (the ABI
# version itself is the snapshot's key).
VERSION_MACROS = {
    "ZK_STATES_VERSION",
    "ZK_STATES_VERSION_MAJOR",
    "ZK_STATES_VERSION_MINOR",
    "ZK_STATES_VERSION_PATCH",
    "ZK_STATES_ABI_VERSION",
}
# "Every option bit" masks: gaining bits (a new option) is an addition; losing
# one is a change.
GROWING_MASKS = {"ZK_DISPATCHER_ALL_OPTIONS"}

UPDATE_HINT = (
    "bump ZK_STATES_ABI_VERSION in src/ffi/core.rs and refresh the snapshot with "
    "`ZK_STATES_UPDATE_ABI=1 pytest tests/py/test_abi.py`"
)

C_KEYWORDS = {
    "void", "char", "short", "int", "long", "float", "double", "signed", "unsigned",
    "_Bool", "bool", "const", "volatile", "restrict", "struct", "enum", "union",
}


# --------------------------------------------------------------------------
# Header parsing (on the preprocessor's view of the header, so comments and
# #if branches are already resolved).
# --------------------------------------------------------------------------

def _cc():
    for cc in (os.environ.get("CC"), "cc", "gcc", "clang"):
        if cc and shutil.which(cc):
            return cc
    pytest.skip("no C compiler")


def _cxx():
    for cxx in (os.environ.get("CXX"), "c++", "g++", "clang++"):
        if cxx and shutil.which(cxx):
            return cxx
    return None


def preprocess_header(header, std="c11"):
    """The lines the preprocessor keeps from `header` itself (not from the
    system headers it includes), as one string."""
    header = Path(header).resolve()
    out = subprocess.run(
        [_cc(), "-E", f"-std={std}", "-x", "c", str(header)],
        check=True, capture_output=True, text=True,
    ).stdout
    keep, mine = [], False
    for line in out.splitlines():
        m = re.match(r'^#\s*\d+\s+"([^"]*)"', line)
        if m:
            mine = Path(m.group(1)).name == header.name and Path(m.group(1)).resolve() == header
            continue
        if mine and not line.startswith("#"):
            keep.append(line)
    return "\n".join(keep)


def header_macros(header, std="c11"):
    """{name: replacement text} of every object-like ZK_ macro with a value."""
    out = subprocess.run(
        [_cc(), "-E", "-dM", f"-std={std}", "-x", "c", str(header)],
        check=True, capture_output=True, text=True,
    ).stdout
    macros = {}
    for line in out.splitlines():
        m = re.match(r"^#define (ZK_\w+)(\s+(.*))?$", line)
        if m and m.group(3) and m.group(3).strip():
            macros[m.group(1)] = m.group(3).strip()
    return macros


def split_statements(text):
    """Top-level declarations (ended by ';' outside braces and parentheses)."""
    stmts, cur, depth = [], [], 0
    for ch in text:
        if ch in "{(":
            depth += 1
        elif ch in "})":
            depth -= 1
        if ch == ";" and depth == 0:
            s = " ".join("".join(cur).split())
            if s:
                stmts.append(s)
            cur = []
        else:
            cur.append(ch)
    rest = " ".join("".join(cur).split())
    if rest:
        raise ValueError(f"unterminated declaration in header: {rest[:80]!r}")
    return stmts


def split_params(text):
    parts, cur, depth = [], [], 0
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    if "".join(cur).strip():
        parts.append("".join(cur))
    return [" ".join(p.split()) for p in parts]


def norm_type(t):
    t = " ".join(t.split())
    t = re.sub(r"\b_Bool\b", "bool", t)  # <stdbool.h> in C before C23
    t = re.sub(r"\s*(\*+)\s*", r" \1", t).strip()
    t = re.sub(r"\(\s+", "(", t)
    t = re.sub(r"\s+\)", ")", t)
    return t


def abstract_declarator(decl):
    """A parameter or field declaration without its name: `const char *path`
    gives `const char *`, `void (*cb)(int x)` gives `void (*)(int)`."""
    d = " ".join(decl.split())
    if d in ("void", "..."):
        return d
    m = re.match(r"^(.*?)\(\s*(\*+)\s*(\w*)\s*\)\s*\((.*)\)$", d)
    if m:  # pointer to function
        params = ", ".join(abstract_declarator(p) for p in split_params(m.group(4)))
        return f"{norm_type(m.group(1))} ({m.group(2)})({params})"
    m = re.match(r"^(.*?)\b(\w+)\s*((?:\[[^\]]*\]\s*)+)$", d)
    if m:  # array
        return f"{norm_type(m.group(1))} {''.join(m.group(3).split())}"
    m = re.match(r"^(.*?)(\w+)$", d)
    if m and m.group(1).strip():
        before = m.group(1).split()
        if m.group(2) not in C_KEYWORDS and before[-1] not in ("struct", "enum", "union"):
            return norm_type(m.group(1))
    return norm_type(d)


def declarator_name(decl):
    d = " ".join(decl.split())
    if re.search(r":\s*\d+$", d):
        raise ValueError(f"bit-field in public struct: {d!r}")
    m = re.match(r"^.*?\(\s*\*+\s*(\w+)\s*\)\s*\(.*\)$", d)
    if m:
        return m.group(1)
    m = re.match(r"^.*?\b(\w+)\s*(?:\[[^\]]*\]\s*)*$", d)
    if not m:
        raise ValueError(f"cannot parse declaration {d!r}")
    return m.group(1)


def parse_header(header):
    """The public interface of the header, from its C11 view:

    {"structs": {name: [(field, type), ...]}, "opaque": [name, ...],
     "enums": {name: [constant, ...]}, "typedefs": {name: text},
     "functions": {name: normalised prototype}}
    """
    text = preprocess_header(header)
    structs, enums, typedefs, functions, declared = {}, {}, {}, {}, set()
    for s in split_statements(text):
        body_m = re.search(r"\b(struct|union|enum)\s+(\w+)?\s*\{(.*)\}", s)
        if body_m:
            kind, tag, body = body_m.groups()
            if "{" in body:
                raise ValueError(f"nested definition in {tag}: not supported by the ABI snapshot")
            if kind == "enum":
                names = [e.split("=")[0].strip() for e in split_params(body) if e.strip()]
                enums[tag] = names
            elif kind == "union":
                raise ValueError(f"public union {tag}: teach test_abi.py about unions")
            else:
                fields = []
                for f in split_statements(body):
                    fields.append((declarator_name(f), abstract_declarator(f)))
                structs[tag] = fields
            alias = s[body_m.end():].strip()
            if s.startswith("typedef") and alias:
                typedefs[alias] = f"{kind} {tag}"
            continue
        if s.startswith("typedef "):
            decl = s[len("typedef "):]
            name = declarator_name(decl)
            typedefs[name] = abstract_declarator(decl)
            continue
        m = re.match(r"^(struct|union|enum)\s+(\w+)$", s)
        if m:  # forward declaration
            declared.add(m.group(2))
            continue
        m = re.match(r"^(.*?)\b(\w+)\s*\((.*)\)$", s)
        if m:
            ret, name, params = m.groups()
            ret = norm_type(re.sub(r"^extern\s+", "", ret))
            plist = ", ".join(abstract_declarator(p) for p in split_params(params)) or "void"
            sep = "" if ret.endswith("*") else " "
            functions[name] = f"{ret}{sep}{name}({plist})"
            continue
        raise ValueError(f"unrecognised top-level declaration in header: {s[:100]!r}")
    opaque = sorted(
        name for name, target in typedefs.items()
        if re.match(r"^struct \w+$", target) and target.split()[1] not in structs
    )
    return {
        "structs": structs,
        "opaque": opaque,
        "enums": enums,
        "typedefs": typedefs,
        "functions": functions,
    }


# --------------------------------------------------------------------------
# Measuring with a compiler
# --------------------------------------------------------------------------

def _measure_source(iface, macros):
    lines = [
        "#include <stddef.h>",
        "#include <stdio.h>",
        f'#include "{HEADER_NAME}"',
        "#ifdef __cplusplus",
        "#define ABI_ALIGNOF(t) alignof(t)",
        "#else",
        "#define ABI_ALIGNOF(t) _Alignof(t)",
        "#endif",
        "#define FSIZE(s, f) sizeof(((s *)0)->f)",
        "int main(void) {",
        '    printf("model %u %u %u\\n", (unsigned)sizeof(void *), (unsigned)sizeof(long),'
        " (unsigned)sizeof(size_t));",
    ]
    for tag, fields in sorted(iface["structs"].items()):
        lines.append(
            f'    printf("struct {tag} %u %u\\n", (unsigned)sizeof(struct {tag}),'
            f" (unsigned)ABI_ALIGNOF(struct {tag}));"
        )
        for name, _ in fields:
            lines.append(
                f'    printf("field {tag} {name} %u %u\\n",'
                f" (unsigned)offsetof(struct {tag}, {name}),"
                f" (unsigned)FSIZE(struct {tag}, {name}));"
            )
    for tag, consts in sorted(iface["enums"].items()):
        lines.append(f'    printf("enum {tag} %u\\n", (unsigned)sizeof(enum {tag}));')
        for c in consts:
            lines.append(f'    printf("const {c} %lld\\n", (long long)({c}));')
    for name, target in sorted(iface["typedefs"].items()):
        if name in iface["opaque"] or "(*" in target:
            continue
        lines.append(f'    printf("typedef {name} %u\\n", (unsigned)sizeof({name}));')
    for name, value in sorted(macros.items()):
        if value.startswith('"'):
            lines.append(f'    printf("define {name} s:%s\\n", {name});')
        else:
            lines.append(f'    printf("define {name} i:%lld\\n", (long long)({name}));')
    lines += ["    return 0;", "}", ""]
    return "\n".join(lines)


def _run_measure(compiler, std, lang, src, include_dir, workdir):
    suffix = "cpp" if lang == "c++" else "c"
    cfile = workdir / f"abi_measure_{std}.{suffix}"
    exe = workdir / f"abi_measure_{std}"
    cfile.write_text(src)
    subprocess.run(
        [compiler, f"-std={std}", "-Wall", "-Wextra", "-Werror", "-pedantic",
         "-I", str(include_dir), str(cfile), "-o", str(exe)],
        check=True, capture_output=True, text=True,
    )
    return subprocess.run([str(exe)], check=True, capture_output=True, text=True).stdout


def _parse_measure(out, iface, macros):
    snap = {"structs": {}, "enums": {}, "typedef_sizes": {}, "defines": {}}
    consts = {}
    for line in out.splitlines():
        parts = line.split(" ", 3)
        kind = parts[0]
        if kind == "model":
            ptr, lng, _size = (int(x) for x in parts[1:4])
            snap["data_model"] = {(8, 8): "LP64", (8, 4): "LLP64", (4, 4): "ILP32"}.get(
                (ptr, lng), f"ptr{ptr}-long{lng}")
        elif kind == "struct":
            snap["structs"][parts[1]] = {"size": int(parts[2]), "align": int(parts[3]), "fields": []}
        elif kind == "field":
            tag, name, rest = parts[1], parts[2], parts[3]
            off, size = (int(x) for x in rest.split())
            ftype = dict(iface["structs"][tag])[name]
            snap["structs"][tag]["fields"].append(
                {"name": name, "type": ftype, "offset": off, "size": size})
        elif kind == "enum":
            snap["enums"][parts[1]] = {"size": int(parts[2]), "constants": {}}
        elif kind == "const":
            consts[parts[1]] = int(parts[2])
        elif kind == "typedef":
            snap["typedef_sizes"][parts[1]] = int(parts[2])
        elif kind == "define":
            val = line.split(" ", 2)[2]
            snap["defines"][parts[1]] = val[2:] if val.startswith("s:") else int(val[2:])
    for tag, names in iface["enums"].items():
        snap["enums"][tag]["constants"] = {c: consts[c] for c in names}
    return snap


def measure(include_dir, workdir):
    """A fresh snapshot of the header's ABI and its ZK_STATES_ABI_VERSION."""
    header = Path(include_dir) / HEADER_NAME
    iface = parse_header(header)
    macros = header_macros(header)
    abi_version = int(macros["ZK_STATES_ABI_VERSION"])
    abi_macros = {k: v for k, v in macros.items() if k not in VERSION_MACROS}
    src = _measure_source(iface, abi_macros)
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    c_out = _run_measure(_cc(), "c11", "c", src, include_dir, workdir)
    snap = _parse_measure(c_out, iface, abi_macros)
    cxx = _cxx()
    if cxx:
        cxx_out = _run_measure(cxx, "c++11", "c++", src, include_dir, workdir)
        assert cxx_out == c_out, "the header's layout or values differ between C11 and C++11"
    snap["typedefs"] = dict(sorted(iface["typedefs"].items()))
    snap["opaque"] = iface["opaque"]
    snap["functions"] = dict(sorted(iface["functions"].items()))
    return abi_version, snap


# --------------------------------------------------------------------------
# Comparing
# --------------------------------------------------------------------------

def compare(old, new):
    """(breaking changes, compatible additions) between two snapshots."""
    breaking, added = [], []
    same_model = old.get("data_model") == new.get("data_model")

    def keyed(section, what):
        o, n = old.get(section, {}), new.get(section, {})
        for k in sorted(o):
            if k not in n:
                breaking.append(f"{what} {k} was removed")
        for k in sorted(n):
            if k not in o:
                added.append(f"new {what} {k}")
        return [(k, o[k], n[k]) for k in sorted(o) if k in n]

    for name, o, n in keyed("functions", "function"):
        if o != n:
            breaking.append(f"function {name}: prototype `{o}` became `{n}`")
    for name, o, n in keyed("typedefs", "typedef"):
        if o != n:
            breaking.append(f"typedef {name}: `{o}` became `{n}`")
    for name, o, n in keyed("defines", "#define"):
        if o == n:
            continue
        if name in GROWING_MASKS and isinstance(o, int) and isinstance(n, int) and o & ~n == 0:
            added.append(f"{name} gained bits: {o:#x} -> {n:#x}")
        else:
            breaking.append(f"#define {name}: {o!r} became {n!r}")
    for name, o, n in keyed("enums", "enum"):
        if same_model and o["size"] != n["size"]:
            breaking.append(f"enum {name}: size {o['size']} became {n['size']}")
        for c in sorted(o["constants"]):
            if c not in n["constants"]:
                breaking.append(f"enum constant {c} was removed")
            elif o["constants"][c] != n["constants"][c]:
                breaking.append(
                    f"enum constant {c}: {o['constants'][c]} became {n['constants'][c]}")
        for c in sorted(n["constants"]):
            if c not in o["constants"]:
                added.append(f"new enum constant {c} = {n['constants'][c]}")
    for name, o, n in keyed("structs", "struct"):
        if same_model:
            for key in ("size", "align"):
                if o[key] != n[key]:
                    breaking.append(f"struct {name}: {key} {o[key]} became {n[key]}")
        o_names = [f["name"] for f in o["fields"]]
        n_names = [f["name"] for f in n["fields"]]
        if o_names != n_names:
            breaking.append(
                f"struct {name}: fields ({', '.join(o_names)}) became ({', '.join(n_names)})")
            continue
        keys = ("type", "offset", "size") if same_model else ("type",)
        for of, nf in zip(o["fields"], n["fields"]):
            for key in keys:
                if of[key] != nf[key]:
                    breaking.append(
                        f"struct {name}: field {of['name']} {key} {of[key]!r} became {nf[key]!r}")
    if same_model:
        for name, o, n in keyed("typedef_sizes", "typedef size of"):
            if o != n:
                breaking.append(f"sizeof({name}): {o} became {n}")
    for name in sorted(set(old.get("opaque", [])) - set(new.get("opaque", []))):
        if name not in new.get("typedefs", {}):
            continue  # already reported as a removed typedef
        breaking.append(f"opaque type {name} is no longer opaque")
    # Sections the snapshot records twice (typedef sizes of new typedefs) would
    # double-count additions: keep each message once.
    added = [a for a in dict.fromkeys(added) if not a.startswith("new typedef size of")]
    return breaking, added


def load_snapshot():
    if not SNAPSHOT.exists():
        return {"snapshots": {}}
    return json.loads(SNAPSHOT.read_text())


def _dump(obj, indent=0):
    """JSON with one line per field, constant or function: diffs stay readable."""
    compact = json.dumps(obj, separators=(", ", ": "))
    if not isinstance(obj, (dict, list)) or not obj:
        return compact
    values = obj.values() if isinstance(obj, dict) else obj
    if not any(isinstance(v, (dict, list)) for v in values) and len(compact) <= 100:
        return compact
    pad, inner = "  " * indent, "  " * (indent + 1)
    if isinstance(obj, dict):
        items = [f"{inner}{json.dumps(k)}: {_dump(v, indent + 1)}" for k, v in obj.items()]
        return "{\n" + ",\n".join(items) + f"\n{pad}}}"
    items = [f"{inner}{_dump(v, indent + 1)}" for v in obj]
    return "[\n" + ",\n".join(items) + f"\n{pad}]"


def write_snapshot(data):
    SNAPSHOT.write_text(_dump(data) + "\n")


# --------------------------------------------------------------------------
# Tests
# --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def fresh(include_dir, tmp_path_factory):
    return measure(include_dir, tmp_path_factory.mktemp("abi"))


def test_abi_snapshot(fresh):
    abi_version, snap = fresh
    key = str(abi_version)
    data = load_snapshot()
    if os.environ.get("ZK_STATES_UPDATE_ABI", "") not in ("", "0"):
        snapshots = dict(data.get("snapshots", {}))
        snapshots[key] = snap
        write_snapshot({
            "about": "ABI snapshot of include/zk_states.h per ZK_STATES_ABI_VERSION, written "
                     "by `ZK_STATES_UPDATE_ABI=1 pytest tests/py/test_abi.py`. Entries for "
                     "older ABI versions are kept as history.",
            "snapshots": dict(sorted(snapshots.items(), key=lambda kv: int(kv[0]))),
        })
        warnings.warn(f"ABI snapshot for ZK_STATES_ABI_VERSION {key} written to {SNAPSHOT}")
        return

    snapshots = data.get("snapshots", {})
    if key not in snapshots:
        known = ", ".join(sorted(snapshots, key=int)) or "none"
        pytest.fail(
            f"ZK_STATES_ABI_VERSION is {key} but tests/packaging/abi.json has no snapshot for it "
            f"(has: {known}). After an intentional ABI bump refresh the snapshot with "
            "`ZK_STATES_UPDATE_ABI=1 pytest tests/py/test_abi.py`."
        )
    old = snapshots[key]
    if old.get("data_model") != snap.get("data_model"):
        warnings.warn(
            f"snapshot measured on {old.get('data_model')}, this machine is "
            f"{snap.get('data_model')}: sizes and offsets not compared")
    breaking, added = compare(old, snap)
    if added:
        warnings.warn(
            "compatible ABI additions (no bump needed; refresh the snapshot with "
            "`ZK_STATES_UPDATE_ABI=1 pytest tests/py/test_abi.py` to record them): "
            + "; ".join(added))
    if breaking:
        pytest.fail(
            f"the ABI changed but ZK_STATES_ABI_VERSION is still {key}:\n  - "
            + "\n  - ".join(breaking)
            + f"\nIf this is intended, {UPDATE_HINT}; otherwise restore the old layout.",
            pytrace=False,
        )


def test_snapshot_covers_the_whole_interface(fresh):
    """The parser found the interface the header really has (a parser that
    silently found nothing would make the snapshot test vacuous)."""
    _, snap = fresh
    assert "zk_stat" in snap["structs"] and snap["structs"]["zk_stat"]["size"] == 72
    assert {f["name"] for f in snap["structs"]["zk_stat"]["fields"]} >= {"czxid", "pzxid"}
    assert snap["enums"]["zk_status"]["constants"]["ZK_OK"] == 0
    assert snap["defines"]["ZK_STAT_WIRE_SIZE"] == 68
    assert "zk_dispatcher" in snap["opaque"]
    assert snap["functions"]["zk_stat_decode"] == (
        "int32_t zk_stat_decode(const uint8_t *, size_t, struct zk_stat *)")
    assert snap["functions"]["zk_dispatcher_new"] == "struct zk_dispatcher *zk_dispatcher_new(void)"
    assert snap["typedefs"]["zk_listener_fn"] == "bool (*)(zk_kazoo_state, void *)"
    assert snap["typedefs"]["zk_watch_fn"] == (
        "void (*)(const struct zk_watched_event *, void *)")
    # Every function the header declares was captured.
    header = (Path(__file__).resolve().parents[2] / "include" / HEADER_NAME).read_text()
    declared = set(re.findall(r"^[A-Za-z_][\w \*]*?\b(zk_\w+)\(", header, re.M))
    assert declared and declared <= set(snap["functions"]), declared - set(snap["functions"])


def test_compare_classifies_changes():
    """compare() tells breaking changes from additions."""
    base = {
        "data_model": "LP64",
        "structs": {"s": {"size": 8, "align": 4, "fields": [
            {"name": "a", "type": "int32_t", "offset": 0, "size": 4},
            {"name": "b", "type": "int32_t", "offset": 4, "size": 4}]}},
        "enums": {"e": {"size": 4, "constants": {"E_A": 0, "E_B": 1}}},
        "typedef_sizes": {"t": 4},
        "defines": {"ZK_X": 1, "ZK_DISPATCHER_ALL_OPTIONS": 3},
        "typedefs": {"t": "int32_t"},
        "opaque": [],
        "functions": {"f": "int32_t f(int32_t)"},
    }
    assert compare(base, base) == ([], [])
    grown = json.loads(json.dumps(base))
    grown["functions"]["g"] = "void g(void)"
    grown["enums"]["e"]["constants"]["E_C"] = 2
    grown["defines"]["ZK_Y"] = 2
    grown["defines"]["ZK_DISPATCHER_ALL_OPTIONS"] = 7
    breaking, added = compare(base, grown)
    assert breaking == [] and len(added) == 4, (breaking, added)
    for mutate in (
        lambda s: s["structs"]["s"].update(size=12),
        lambda s: s["structs"]["s"]["fields"].reverse(),
        lambda s: s["structs"]["s"]["fields"][1].update(type="uint32_t"),
        lambda s: s["enums"]["e"]["constants"].update(E_B=5),
        lambda s: s["defines"].update(ZK_X=2),
        lambda s: s["defines"].update(ZK_DISPATCHER_ALL_OPTIONS=1),
        lambda s: s["functions"].update(f="int64_t f(int32_t)"),
        lambda s: s["functions"].pop("f"),
        lambda s: s["typedefs"].update(t="int64_t"),
    ):
        changed = json.loads(json.dumps(base))
        mutate(changed)
        breaking, _ = compare(base, changed)
        assert breaking, changed


def test_runtime_abi_version_matches_header(lib_path, fresh):
    abi_version, _ = fresh
    lib = ctypes.CDLL(str(lib_path))
    lib.zk_states_abi_version.restype = ctypes.c_uint32
    lib.zk_states_abi_version.argtypes = []
    assert lib.zk_states_abi_version() == abi_version
