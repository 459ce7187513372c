"""t/py/abi.py: the package's cffi declarations (python/kvnode/_ffi.py)
agree with include/kvnode.h.  ABI mode takes the struct layouts and the
prototypes on trust: a field the header gained or a parameter whose type
changed would corrupt memory at run time, not fail at import.  So every
struct the package declares is checked field by field (offset and size)
and as a whole (size), every function it declares against the header's
(a pointer of the package's type initialised with the real function, under
-Werror), and every constant's value, all as C compile-time assertions
that the compiler evaluates against the real header."""
import os
import re
import subprocess

import kvtest
from kvtest import ok, diag
from kvnode import _ffi

ffi = _ffi.ffi
CC = os.environ.get("CC") or "cc"


def structs():
    return sorted(set(re.findall(r"\bstruct\s+(kvn_\w+)\s*\{", _ffi.CDEF)))


def functions():
    """(return type, name, parameters) of each prototype in the cdef."""
    out = []
    for m in re.finditer(r"^([\w \*]+?)\s*\b(kvn_\w+)\s*\(([^;]*?)\)\s*;", _ffi.CDEF, re.M | re.S):
        out.append((" ".join(m.group(1).split()), m.group(2), " ".join(m.group(3).split())))
    return out


def constants():
    return re.findall(r"^#define\s+(KVN_\w+)\s+(\d+)", _ffi.CDEF, re.M)


def program(mutate=None):
    lines = ["#include <stddef.h>", "#include <kvnode.h>"]
    for s in structs():
        t = ffi.typeof("struct %s" % s)
        lines.append('_Static_assert(sizeof(struct %s) == %d, "struct %s: size");' % (s, ffi.sizeof(t), s))
        for name, f in t.fields:
            size = ffi.sizeof(f.type)
            lines.append('_Static_assert(offsetof(struct %s, %s) == %d, "%s.%s: offset");' % (s, name, f.offset, s, name))
            lines.append('_Static_assert(sizeof(((struct %s *)0)->%s) == %d, "%s.%s: size");' % (s, name, size, s, name))
    for ret, name, params in functions():
        lines.append("%s (*chk_%s)(%s) = %s;" % (ret, name, params, name))
    for name, value in constants():
        lines.append('_Static_assert(%s == %s, "%s");' % (name, value, name))
    src = "\n".join(lines) + "\n"
    return mutate(src) if mutate else src


def compile_(src, tag):
    path = os.path.join(kvtest.TMP, "abi-%s.c" % tag)
    with open(path, "w") as f:
        f.write(src)
    r = subprocess.run([CC, "-std=c11", "-Wall", "-Werror", "-fsyntax-only",
                        "-I", os.path.join(kvtest.SRCDIR, "include"), path],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    return r.returncode, r.stdout


def case_layout():
    ok(len(structs()) >= 5, "the cdef declares %d structs: %s" % (len(structs()), " ".join(structs())))
    ok(len(functions()) >= 25, "and %d functions" % len(functions()))
    rc, out = compile_(program(), "real")
    ok(rc == 0, "every struct's layout, every prototype and every constant agree with include/kvnode.h")
    if rc:
        diag(out[:3000])


def case_catches():
    """The check can fail: a field shifted, a parameter's type changed, a
    constant changed, each in the package's view, is refused."""
    shift = lambda s: s.replace('offsetof(struct kvn_item, status) == %d' % ffi.offsetof("struct kvn_item", "status"),
                                'offsetof(struct kvn_item, status) == %d' % (ffi.offsetof("struct kvn_item", "status") + 4))
    proto = lambda s: s.replace("int (*chk_kvn_get)(struct kvn_client *c, const void *key, size_t klen, void *buf, size_t cap, size_t *vlen)",
                                "int (*chk_kvn_get)(struct kvn_client *c, const void *key, size_t klen, void *buf, size_t cap, uint32_t *vlen)")
    const = lambda s: s.replace("KVN_LIST_MAX == 10000", "KVN_LIST_MAX == 1000")
    for tag, m in (("shift", shift), ("proto", proto), ("const", const)):
        src = program(m)
        ok(src != program(), "mutation %s applies" % tag)
        rc, _ = compile_(src, tag)
        ok(rc != 0, "a mutated view (%s) is refused" % tag)


kvtest.run([("layout", case_layout), ("catches", case_catches)])
