/* Hand-written C baselines: out-of-line functions with the library's
 * signature, argument checks and results, so that a call costs what a call
 * into the library would cost without the library's own overhead. Shared by
 * bench/micro.c (timed), bench/profile.c (instruction counts) and
 * bench/baselines_so.c (the same baselines in a shared library). */
#ifndef ZK_BENCH_BASELINES_H
#define ZK_BENCH_BASELINES_H

#include <endian.h>
#include <inttypes.h>

#include "bench.h"
#include "zk_states.h"

#define UNUSED __attribute__((unused))

/* BASELINE(type, name) opens the definition of a baseline. By default a
 * baseline is a static out-of-line function of the program that includes this
 * header (a direct call, like a call into libzk_states.a). bench/baselines_so.c
 * defines ZK_BASELINES_SHARED and compiles the same code into a shared library,
 * exported as so_<name>: called through the PLT, like libzk_states.so. */
#ifdef ZK_BASELINES_SHARED
#define BASELINE(type, name) __attribute__((visibility("default"))) NOIPA type so_##name
#else
#define BASELINE(type, name) NOIPA UNUSED static type name
#endif

static inline uint64_t ld64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return be64toh(v); }
static inline uint32_t ld32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return be32toh(v); }
static inline UNUSED void st64(uint8_t *p, int64_t v) { uint64_t x = htobe64((uint64_t)v); memcpy(p, &x, 8); }
static inline UNUSED void st32(uint8_t *p, int32_t v) { uint32_t x = htobe32((uint32_t)v); memcpy(p, &x, 4); }

/* The cost of a call itself, to compare with zk_states_abi_version(). */
BASELINE(uint32_t, c_abi_version)(void) { return ZK_STATES_ABI_VERSION; }

BASELINE(int, c_stat_decode)(const uint8_t *b, size_t len, zk_stat *out) {
    if (!b || !out) return ZK_ERR_NULL_ARGUMENT;
    if (len < ZK_STAT_WIRE_SIZE) return ZK_ERR_TRUNCATED;
    out->czxid = (int64_t)ld64(b);
    out->mzxid = (int64_t)ld64(b + 8);
    out->ctime = (int64_t)ld64(b + 16);
    out->mtime = (int64_t)ld64(b + 24);
    out->version = (int32_t)ld32(b + 32);
    out->cversion = (int32_t)ld32(b + 36);
    out->aversion = (int32_t)ld32(b + 40);
    out->ephemeral_owner = (int64_t)ld64(b + 44);
    out->data_length = (int32_t)ld32(b + 52);
    out->num_children = (int32_t)ld32(b + 56);
    out->pzxid = (int64_t)ld64(b + 60);
    return ZK_OK;
}

/* A straightforward UTF-8 check: shortest form, no surrogates, <= U+10FFFF. */
static int utf8_valid(const uint8_t *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        uint32_t c = s[i], cp, min;
        size_t k;
        if (c < 0x80) { i++; continue; }
        if ((c & 0xE0) == 0xC0) { k = 1; cp = c & 0x1F; min = 0x80; }
        else if ((c & 0xF0) == 0xE0) { k = 2; cp = c & 0x0F; min = 0x800; }
        else if ((c & 0xF8) == 0xF0) { k = 3; cp = c & 0x07; min = 0x10000; }
        else return 0;
        if (n - i <= k) return 0;
        for (size_t j = 1; j <= k; j++) {
            if ((s[i + j] & 0xC0) != 0x80) return 0;
            cp = cp << 6 | (s[i + j] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
        i += k + 1;
    }
    return 1;
}

static inline int event_decode(const uint8_t *b, size_t len, zk_watched_event *out, int check_utf8) {
    if (!b || !out) return ZK_ERR_NULL_ARGUMENT;
    if (len < 12) return ZK_ERR_TRUNCATED;
    int32_t type = (int32_t)ld32(b), wire = (int32_t)ld32(b + 4), plen = (int32_t)ld32(b + 8), state;
    if (type != -1 && (type < 1 || type > 7)) return ZK_ERR_INVALID_EVENT_TYPE;
    switch (wire) { /* the zk_keeper_state_from_wire() table */
    case 0: case 1: state = ZK_KEEPER_STATE_CONNECTING; break;
    case 3: case 6: state = ZK_KEEPER_STATE_CONNECTED; break;
    case 4: state = ZK_KEEPER_STATE_AUTH_FAILED; break;
    case 5: state = ZK_KEEPER_STATE_CONNECTED_RO; break;
    case 7: state = ZK_KEEPER_STATE_CLOSED; break;
    case -112: state = ZK_KEEPER_STATE_EXPIRED_SESSION; break;
    default: return ZK_ERR_INVALID_KEEPER_STATE;
    }
    const char *path = NULL;
    size_t n = 0;
    if (plen < -1) return ZK_ERR_NEGATIVE_LENGTH;
    if (plen >= 0) {
        if ((size_t)plen > len - 12) return ZK_ERR_LENGTH_EXCEEDS_INPUT;
        if (check_utf8 && !utf8_valid(b + 12, (size_t)plen)) return ZK_ERR_INVALID_UTF8;
        path = (const char *)b + 12;
        n = (size_t)plen;
    }
    out->type = type;
    out->state = state;
    out->path = path;
    out->path_len = n;
    out->zxid = ZK_ZXID_UNKNOWN;
    return ZK_OK;
}
BASELINE(int, c_event_naive)(const uint8_t *b, size_t len, zk_watched_event *out) { return event_decode(b, len, out, 0); }
BASELINE(int, c_event_utf8)(const uint8_t *b, size_t len, zk_watched_event *out) { return event_decode(b, len, out, 1); }

BASELINE(int, c_stat_props)(const zk_stat *s, zk_stat_properties *o) {
    if (!s || !o) return ZK_ERR_NULL_ARGUMENT;
    o->creation_transaction_id = s->czxid;
    o->last_modified_transaction_id = s->mzxid;
    o->created = (double)s->ctime / 1000.0;
    o->last_modified = (double)s->mtime / 1000.0;
    o->has_owner = s->ephemeral_owner != 0;
    o->owner_session_id = s->ephemeral_owner;
    o->version = s->version;
    o->children_version = s->cversion;
    o->acl_version = s->aversion;
    o->data_length = s->data_length;
    o->children_count = s->num_children;
    return ZK_OK;
}

#define STAT_FMT                                                                              \
    "ZnodeStat(czxid=%" PRId64 ", mzxid=%" PRId64 ", ctime=%" PRId64 ", mtime=%" PRId64       \
    ", version=%" PRId32 ", cversion=%" PRId32 ", aversion=%" PRId32 ", ephemeralOwner=%" PRId64 \
    ", dataLength=%" PRId32 ", numChildren=%" PRId32 ", pzxid=%" PRId64 ")"
UNUSED static int snprintf_stat(char *buf, size_t cap, const zk_stat *s) {
    return snprintf(buf, cap, STAT_FMT, s->czxid, s->mzxid, s->ctime, s->mtime, s->version, s->cversion,
                    s->aversion, s->ephemeral_owner, s->data_length, s->num_children, s->pzxid);
}

#endif
