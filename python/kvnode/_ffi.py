"""The C side: cffi ABI-mode declarations of include/kvnode.h and the
lookup of libkvnode.so.

Only the parts the package calls are declared.  ABI mode (ffi.dlopen)
needs no compiler and builds nothing at install time; a symbol the loaded
library lacks fails only when it is first called (AttributeError), so a
package newer than its library still imports.
"""
import ctypes.util
import os

import cffi

CDEF = """
#define KVN_MAX_KEY 1024
#define KVN_LIST_MAX 10000
#define KVN_SUBMIT_MAX 1024

const char *kvn_strerror(int err);

struct kvn_client;
struct kvn_options {
    const char *config_path;
    const char *master;
    const char *secret_file;
    const char *node_id;
    uint64_t timeout_ms;
};
int kvn_connect(const struct kvn_options *opt, struct kvn_client **out);
void kvn_close(struct kvn_client *c);
const char *kvn_last_detail(const struct kvn_client *c);
int kvn_ping(struct kvn_client *c, uint64_t *rtt_us, uint32_t *peers);

struct kvn_put_opts {
    unsigned flags;
    uint64_t ttl_ms;
    uint64_t gen;
};
int kvn_put_opts(struct kvn_client *c, const void *key, size_t klen, const void *val, size_t vlen,
                 struct kvn_put_opts *o);
int kvn_get(struct kvn_client *c, const void *key, size_t klen, void *buf, size_t cap, size_t *vlen);
int kvn_get_alloc(struct kvn_client *c, const void *key, size_t klen, void **val, size_t *vlen);
int kvn_exists(struct kvn_client *c, const void *key, size_t klen);
int kvn_remove(struct kvn_client *c, const void *key, size_t klen);

struct kvn_item {
    const void *key;
    size_t klen;
    void *val;
    size_t vlen;
    size_t cap;
    int status;
    int exists;
};
int kvn_batch_put_opts(struct kvn_client *c, struct kvn_item *items, size_t n, const struct kvn_put_opts *o);
int kvn_batch_get(struct kvn_client *c, struct kvn_item *items, size_t n);
int kvn_batch_exists(struct kvn_client *c, struct kvn_item *items, size_t n);
int kvn_batch_remove(struct kvn_client *c, struct kvn_item *items, size_t n);
int kvn_batch_pin(struct kvn_client *c, struct kvn_item *items, size_t n, uint64_t ttl_ms);
int kvn_batch_unpin(struct kvn_client *c, struct kvn_item *items, size_t n);
int kvn_batch_evict(struct kvn_client *c, struct kvn_item *items, size_t n);
int kvn_exists_prefix(struct kvn_client *c, const struct kvn_item *keys, size_t n, size_t *count);

struct kvn_listed {
    const void *key;
    size_t klen;
    uint64_t size;
    uint64_t gen;
};
int kvn_list(struct kvn_client *c, const void *prefix, size_t plen, uint64_t *cursor, size_t max,
             struct kvn_listed **out, size_t *n);
void kvn_list_free(struct kvn_listed *page);
int kvn_counter(const struct kvn_client *c, const char *name, uint64_t *value);

struct kvn_completion {
    uint64_t id;
    int op;
    int status;
    struct kvn_item *items;
    size_t n;
};
int kvn_submit_get(struct kvn_client *c, struct kvn_item *items, size_t n, uint64_t *id);
int kvn_submit_put(struct kvn_client *c, struct kvn_item *items, size_t n, unsigned flags, uint64_t *id);
int kvn_submit_exists(struct kvn_client *c, struct kvn_item *items, size_t n, uint64_t *id);
int kvn_fd(struct kvn_client *c);
int kvn_reap(struct kvn_client *c, struct kvn_completion *out, size_t max);
size_t kvn_submit_pending(const struct kvn_client *c);
"""

# Only the C library's free(): kvn_get_alloc's buffer is malloc'd.
CDEF_LIBC = "void free(void *p);"

SONAME = "libkvnode.so.0"

ffi = cffi.FFI()
ffi.cdef(CDEF)
ffi.cdef(CDEF_LIBC)


def _candidates():
    """Where the library is looked for, in order (see find_library)."""
    env = os.environ.get("KVNODE_LIBRARY")
    if env:
        # an explicit choice: no silent fallback to another build
        return [env]
    here = os.path.dirname(os.path.abspath(__file__))
    out = []
    # python/kvnode/ -> repo root: the build tree's libtool output
    root = os.path.dirname(os.path.dirname(here))
    for name in ("libkvnode.so", SONAME):
        p = os.path.join(root, ".libs", name)
        if os.path.exists(p):
            out.append(p)
    found = ctypes.util.find_library("kvnode")
    if found:
        out.append(found)
    out.append(SONAME)  # the dynamic linker's own search (ld.so.cache, LD_LIBRARY_PATH)
    return out


def find_library():
    """The path (or soname) of the libkvnode.so this package loads:
    $KVNODE_LIBRARY when set; else the build tree's .libs/libkvnode.so
    beside python/ (a source checkout after ./bootstrap build); else an
    installed libkvnode.so.0."""
    return _candidates()[0]


def _load():
    errors = []
    for path in _candidates():
        try:
            return ffi.dlopen(path), path
        except OSError as e:
            errors.append("%s: %s" % (path, e))
    raise ImportError("kvnode: cannot load libkvnode (set KVNODE_LIBRARY to its path): "
                      + "; ".join(errors))


lib, library_path = _load()
libc = ffi.dlopen(None)
