#!/usr/bin/env python3
"""Generates the bad-input matrix: a C program that calls every function of
include/zk_states.h with NULL in each pointer position (one at a time, every
other argument valid) and with out-of-range codes in each enum-code integer
parameter, and checks the documented result.

    tests/matrix/gen_matrix.py [--header include/zk_states.h] [--out matrix.c]

The expectations are the table in expectations.py. The generator FAILS (exit
status 1, a message per problem) when the header and the table disagree: a
function of the header missing from the table (or the reverse), a pointer
parameter without a NULL expectation, an int32_t/int parameter neither
declared an enum code nor explicitly not one, or an argument not given. So a
function added to the header without matrix coverage breaks the test.

The generated program prints one line per failed check and finally
``MATRIX: covered N/M functions, C cases, F failures``; it exits 0 only when
every check passed and every function was called.
"""

import argparse
import re
import sys
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))

import expectations as X  # noqa: E402


class MatrixError(Exception):
    pass


# --------------------------------------------------------------------------
# Header parsing
# --------------------------------------------------------------------------


@dataclass
class Param:
    ctype: str
    name: str
    pointer: bool


@dataclass
class Proto:
    ret: str
    name: str
    params: list


def strip_comments(text):
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    text = re.sub(r"//[^\n]*", " ", text)
    return text


def parse_header(path):
    text = strip_comments(Path(path).read_text())
    # Preprocessor lines are not C declarations.
    body = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
    fnptr_types = set(re.findall(r"typedef\s+[^;()]*\(\s*\*\s*(\w+)\s*\)\s*\([^;]*\)\s*;", body))
    enums = {}
    for name, inner in re.findall(r"enum\s+(\w+)\s*(?::\s*\w+\s*)?\{([^}]*)\}", body):
        values = []
        for item in inner.split(","):
            item = item.strip()
            if not item:
                continue
            m = re.fullmatch(r"(\w+)\s*=\s*(-?\d+)", item)
            if not m:
                raise MatrixError(f"enum {name}: cannot read item {item!r}")
            values.append(int(m.group(2)))
        enums[name] = values
    protos = []
    # Function declarations: "<ret> <name>(<params>);" at file scope. Typedefs
    # and struct members are not; strip them first.
    decls = re.sub(r"(?:typedef\s+)?\b(?:struct|enum)\s+\w+\s*(?::\s*\w+\s*)?\{[^{}]*\}\s*\w*\s*;", " ", body)
    decls = re.sub(r"typedef[^;]*;", " ", decls)
    for m in re.finditer(r"([A-Za-z_][\w\s\*]*?)\b(zk_\w+)\s*\(([^()]*)\)\s*;", decls):
        ret, name, params = " ".join(m.group(1).split()), m.group(2), m.group(3).strip()
        plist = []
        if params and params != "void":
            for raw in params.split(","):
                raw = " ".join(raw.split())
                pm = re.fullmatch(r"(.*?)(\w+)", raw)
                if not pm:
                    raise MatrixError(f"{name}: cannot read parameter {raw!r}")
                ctype, pname = pm.group(1).strip(), pm.group(2)
                pointer = "*" in ctype or ctype in fnptr_types
                plist.append(Param(ctype, pname, pointer))
        protos.append(Proto(ret, name, plist))
    names = [p.name for p in protos]
    dups = {n for n in names if names.count(n) > 1}
    if dups:
        raise MatrixError(f"functions declared twice: {sorted(dups)}")
    return protos, enums, fnptr_types


def count_functions(path):
    """The number of function prototypes in the header."""
    return len(parse_header(path)[0])


# --------------------------------------------------------------------------
# Case construction
# --------------------------------------------------------------------------

INT_TYPES = {"int32_t", "int"}


@dataclass
class CaseSpec:
    func: str
    label: str
    args: dict
    valid_args: dict
    outcome: X.Outcome
    setup: str
    teardown: str
    outs: dict
    registers: tuple


def int_values(valid):
    """INT32_MIN, -1000, 1000, INT32_MAX and the values just outside the valid set."""
    out = []
    candidates = [-(2**31), -1000, 1000, 2**31 - 1]
    lo, hi = min(valid), max(valid)
    candidates += [lo - 1, hi + 1]
    for v in valid:
        candidates += [v - 1, v + 1]
    for c in candidates:
        if c not in valid and -(2**31) <= c <= 2**31 - 1 and c not in out:
            out.append(c)
    return out


def c_int(v):
    if v == -(2**31):
        return "INT32_MIN"
    if v == 2**31 - 1:
        return "INT32_MAX"
    return str(v)


def build_cases(protos, enums):
    problems = []
    table = X.FUNCS
    header_names = {p.name for p in protos}
    for name in sorted(set(table) - header_names):
        problems.append(f"{name}: in expectations.py but not in the header (stale entry)")
    cases = []
    for proto in protos:
        spec = table.get(proto.name)
        if spec is None:
            problems.append(f"{proto.name}: declared in the header but has no entry in tests/matrix/expectations.py")
            continue
        pnames = [p.name for p in proto.params]
        for key in spec.args:
            if key not in pnames:
                problems.append(f"{proto.name}: argument {key!r} given, but the prototype has {pnames}")
        for p in proto.params:
            if p.name not in spec.args:
                problems.append(f"{proto.name}: no valid argument for parameter {p.name!r}")
            if p.pointer and p.name not in spec.null:
                problems.append(f"{proto.name}: no expectation for NULL {p.name!r}")
            if p.ctype in INT_TYPES and p.name not in spec.enums and p.name not in spec.not_enum:
                problems.append(f"{proto.name}: integer parameter {p.name!r} is neither an enum code (enums) "
                                f"nor declared not one (not_enum)")
        for key in spec.null:
            if key not in pnames or not next(p for p in proto.params if p.name == key).pointer:
                problems.append(f"{proto.name}: NULL expectation for {key!r}, which is not a pointer parameter")
        for key in spec.enums:
            if key not in pnames:
                problems.append(f"{proto.name}: enum expectation for unknown parameter {key!r}")
        if any(p.startswith(proto.name) for p in problems):
            continue

        def case(label, overrides, outcome, setup=None):
            args = dict(spec.args)
            args.update(overrides)
            cases.append(CaseSpec(proto.name, label, args, spec.args, outcome,
                                  spec.setup if setup is None or setup == "" else setup,
                                  spec.teardown, spec.outs, spec.registers))

        case("valid arguments", {}, spec.ok)
        for p in proto.params:
            if p.pointer:
                case(f"{p.name} = NULL", {p.name: "NULL"}, spec.null[p.name])
        for pname, en in spec.enums.items():
            valid = en.valid
            if isinstance(valid, str):
                ename = valid.split(":", 1)[1]
                if ename not in enums:
                    problems.append(f"{proto.name}: enum {ename} not found in the header")
                    continue
                valid = enums[ename]
            for v in int_values(valid):
                over = dict(en.args)
                over[pname] = c_int(v)
                case(f"{pname} = {c_int(v)}", over, en.outcome, en.setup or None)
        for extra in spec.extra:
            case(extra.label, extra.args, extra.outcome, extra.setup or None)
    if problems:
        raise MatrixError("\n".join(problems))
    return cases


# --------------------------------------------------------------------------
# C generation
# --------------------------------------------------------------------------

PRELUDE = r"""/*
 * GENERATED by tests/matrix/gen_matrix.py from include/zk_states.h and
 * tests/matrix/expectations.py. Do not edit: change the table and regenerate.
 *
 * Every function of the header, called with NULL in each pointer position and
 * with out-of-range enum codes, against the documented result.
 */
#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "zk_states.h"

#define MX_NCASES @NCASES@
#define MX_NFUNCS @NFUNCS@

static const char *const mx_func_names[MX_NFUNCS] = {
@FUNCNAMES@
};
static int mx_covered[MX_NFUNCS];
static unsigned long mx_cases_run;
static unsigned long mx_failures;

static zk_dispatcher *mx_d;

/* One user data token per case; frees counted per token. */
static int mx_tok[MX_NCASES];
static unsigned mx_tok_frees[MX_NCASES];
static int mx_tok_expect[MX_NCASES];
static unsigned mx_null_frees;
static unsigned mx_null_expect;
static unsigned mx_stray_frees;

#define MX_SENTINEL(v) memset(&(v), 0xA5, sizeof(v))

static void mx_fail(const char *func, const char *what)
{
    mx_failures++;
    fprintf(stderr, "MATRIX FAIL %s: %s\n", func, what);
}

static void mx_expect(int ok, const char *func, const char *label, const char *what)
{
    if (!ok) {
        mx_failures++;
        fprintf(stderr, "MATRIX FAIL %s [%s]: expected %s\n", func, label, what);
    }
}

static void mx_free_tok(void *p)
{
    if (p == NULL) {
        mx_null_frees++;
        return;
    }
    if ((int *)p >= mx_tok && (int *)p < mx_tok + MX_NCASES) {
        mx_tok_frees[(int *)p - mx_tok]++;
    } else {
        mx_stray_frees++;
    }
}

static void mx_watch_cb(const zk_watched_event *event, void *user_data)
{
    (void)event;
    (void)user_data;
}

static bool mx_listener_cb(zk_kazoo_state state, void *user_data)
{
    (void)state;
    (void)user_data;
    return false;
}

static void mx_call_cb(void *args)
{
    (void)args;
}

static struct _zhandle *mx_zh(void)
{
    static int dummy;
    return (struct _zhandle *)(void *)&dummy;
}

static zk_stat mx_stat(void)
{
    zk_stat s;
    memset(&s, 0, sizeof s);
    s.czxid = 5;
    s.mzxid = 6;
    s.ctime = 1700000000123LL;
    s.mtime = 1700000000999LL;
    s.version = 1;
    s.cversion = 2;
    s.aversion = 3;
    s.ephemeral_owner = 0x123456789abcLL;
    s.data_length = 4;
    s.num_children = 0;
    s.pzxid = 9;
    return s;
}

static int mx_stat_eq(const zk_stat *a, const zk_stat *b)
{
    return a->czxid == b->czxid && a->mzxid == b->mzxid && a->ctime == b->ctime && a->mtime == b->mtime &&
           a->version == b->version && a->cversion == b->cversion && a->aversion == b->aversion &&
           a->ephemeral_owner == b->ephemeral_owner && a->data_length == b->data_length &&
           a->num_children == b->num_children && a->pzxid == b->pzxid;
}

static void mx_put32(uint8_t *b, int32_t v)
{
    uint32_t u = (uint32_t)v;
    b[0] = (uint8_t)(u >> 24);
    b[1] = (uint8_t)(u >> 16);
    b[2] = (uint8_t)(u >> 8);
    b[3] = (uint8_t)u;
}

static void mx_put64(uint8_t *b, int64_t v)
{
    mx_put32(b, (int32_t)(uint32_t)((uint64_t)v >> 32));
    mx_put32(b + 4, (int32_t)(uint32_t)(uint64_t)v);
}

/* A jute WatcherEvent: int type, int state, ustring path. */
static size_t mx_event(uint8_t *b, int32_t type, int32_t state, const char *path)
{
    size_t n = strlen(path);
    mx_put32(b, type);
    mx_put32(b + 4, state);
    mx_put32(b + 8, (int32_t)n);
    memcpy(b + 12, path, n);
    return 12 + n;
}

/* A server notification: reply header (xid, zxid, err) and a WatcherEvent. */
static size_t mx_notification(uint8_t *b, int32_t xid, int64_t zxid, int32_t type, int32_t state, const char *path)
{
    mx_put32(b, xid);
    mx_put64(b + 4, zxid);
    mx_put32(b + 12, 0);
    return 16 + mx_event(b + 16, type, state, path);
}

static zk_dispatcher_stats mx_stats(const zk_dispatcher *d)
{
    zk_dispatcher_stats s;
    memset(&s, 0, sizeof s);
    if (zk_dispatcher_stats_get(d, &s) != ZK_OK) {
        mx_fail("zk_dispatcher_stats_get", "helper");
    }
    return s;
}
"""


def subst(code, case_id):
    return code.replace("$TOK", f"(void *)&mx_tok[{case_id}]").replace("$CASE", str(case_id))


def c_string(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def generate(protos, cases):
    func_index = {p.name: i for i, p in enumerate(protos)}
    by_name = {p.name: p for p in protos}
    out = [PRELUDE.replace("@NCASES@", str(len(cases)))
           .replace("@NFUNCS@", str(len(protos)))
           .replace("@FUNCNAMES@", ",\n".join(f"    {c_string(p.name)}" for p in protos))]
    for cid, c in enumerate(cases):
        proto = by_name[c.func]
        args = [subst(c.args[p.name], cid) for p in proto.params]
        call = f"{c.func}({', '.join(args)})"
        lines = [f"/* case {cid}: {c.func}, {c.label} */", f"static void mx_case_{cid}(void)", "{"]
        if c.setup:
            lines.append("    " + subst(c.setup, cid))
        saved = []
        if c.outcome.fails:
            for param, var in c.outs.items():
                if c.args.get(param) == "NULL":
                    continue
                k = len(saved)
                lines.append(f"    unsigned char mx_saved{k}[sizeof({var})];")
                lines.append(f"    memcpy(mx_saved{k}, &{var}, sizeof({var}));")
                saved.append((k, var))
        if proto.ret == "void":
            lines.append(f"    {call};")
        else:
            lines.append(f"    {proto.ret} r = {call};")
        # Setup variables whose argument this case replaced are still "used".
        for p in proto.params:
            valid = c.valid_args.get(p.name, "")
            m = re.fullmatch(r"&?([A-Za-z_]\w*)", valid)
            if m and c.args[p.name] != valid and not m.group(1).startswith(("mx_", "ZK_")):
                lines.append(f"    (void){m.group(1)};")
        lines.append(f"    mx_covered[{func_index[c.func]}] = 1;")
        lines.append("    mx_cases_run++;")
        label = c_string(c.label)
        what = c_string(f"{c.outcome.desc or c.outcome.check}  [{c.outcome.check}]")
        lines.append(f"    mx_expect({subst(c.outcome.check, cid)}, {c_string(c.func)}, {label}, {what});")
        for k, var in saved:
            lines.append(f"    mx_expect(memcmp(mx_saved{k}, &{var}, sizeof({var})) == 0, {c_string(c.func)}, {label}, "
                         f"{c_string(var + ' untouched on failure')});")
        if c.registers:
            ud, fr = c.registers
            if c.outcome.fails:
                lines.append(f"    mx_expect(mx_tok_frees[{cid}] == 0, {c_string(c.func)}, {label}, "
                             f"\"a refused registration's user data never freed\");")
                lines.append(f"    mx_tok_expect[{cid}] = 0;")
            elif c.args.get(fr) == "NULL":
                lines.append(f"    mx_tok_expect[{cid}] = 0;")
            elif c.args.get(ud) == "NULL":
                lines.append("    mx_null_expect++;")
            else:
                lines.append(f"    mx_tok_expect[{cid}] = 1;")
        if c.teardown:
            lines.append("    " + subst(c.teardown, cid))
        if proto.ret != "void":
            lines.append("    (void)r;")
        lines.append("}")
        out.append("\n".join(lines))
    main = ["int main(void)", "{",
            "    size_t i;",
            "    unsigned covered = 0;",
            "    mx_d = zk_dispatcher_new();",
            "    if (mx_d == NULL) {",
            "        fprintf(stderr, \"MATRIX: zk_dispatcher_new failed\\n\");",
            "        return 2;",
            "    }"]
    main += [f"    mx_case_{cid}();" for cid in range(len(cases))]
    main += [
        "    if (zk_dispatcher_flush(mx_d) != ZK_OK) mx_fail(\"zk_dispatcher_flush\", \"final flush\");",
        "    zk_dispatcher_free(mx_d);",
        "    /* Every accepted registration's user data freed exactly once; refused ones never. */",
        "    for (i = 0; i < MX_NCASES; i++) {",
        "        if (mx_tok_frees[i] != (unsigned)mx_tok_expect[i]) {",
        "            mx_failures++;",
        "            fprintf(stderr, \"MATRIX FAIL case %u: user data freed %u times, expected %d\\n\",",
        "                    (unsigned)i, mx_tok_frees[i], mx_tok_expect[i]);",
        "        }",
        "    }",
        "    if (mx_null_frees != mx_null_expect) {",
        "        mx_failures++;",
        "        fprintf(stderr, \"MATRIX FAIL: NULL user data freed %u times, expected %u\\n\", mx_null_frees, mx_null_expect);",
        "    }",
        "    if (mx_stray_frees != 0) {",
        "        mx_failures++;",
        "        fprintf(stderr, \"MATRIX FAIL: %u frees of pointers never registered\\n\", mx_stray_frees);",
        "    }",
        "    for (i = 0; i < MX_NFUNCS; i++) {",
        "        if (mx_covered[i]) {",
        "            covered++;",
        "        } else {",
        "            mx_failures++;",
        "            fprintf(stderr, \"MATRIX FAIL: %s never called\\n\", mx_func_names[i]);",
        "        }",
        "    }",
        "    printf(\"MATRIX: covered %u/%u functions, %lu cases, %lu failures\\n\",",
        "           covered, (unsigned)MX_NFUNCS, mx_cases_run, mx_failures);",
        "    return mx_failures == 0 ? 0 : 1;",
        "}",
    ]
    out.append("\n".join(main))
    return "\n\n".join(out) + "\n"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--header", default=str(ROOT / "include" / "zk_states.h"))
    ap.add_argument("--out", default=str(HERE / "matrix.c"))
    args = ap.parse_args(argv)
    try:
        protos, enums, _ = parse_header(args.header)
        cases = build_cases(protos, enums)
    except MatrixError as e:
        print(f"gen_matrix: the header and tests/matrix/expectations.py disagree:\n{e}", file=sys.stderr)
        return 1
    Path(args.out).write_text(generate(protos, cases))
    print(f"gen_matrix: {len(protos)} functions, {len(cases)} cases -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
