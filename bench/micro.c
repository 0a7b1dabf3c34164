/* Micro-benchmarks of the pure functions, each against baselines run in the
 * same process, interleaved repetition by repetition and timed in thread CPU
 * time (preemption by other processes is not counted):
 *   - the bare cost of a call into the library (zk_states_abi_version) vs a C call;
 *   - zk_stat_decode vs a hand-written be64toh decode and the official C
 *     client's create_buffer_iarchive + deserialize_Stat + close_buffer_iarchive;
 *   - zk_watched_event_decode (22-byte event) vs hand-written decodes without
 *     and with UTF-8 validation and the C client's deserialize_WatcherEvent;
 *   - zk_stat_properties_get vs a hand-written equivalent;
 *   - zk_stat_format vs snprintf of the same fields.
 * Prints "<figure>.<variant> <ns per call of each repetition>". Every baseline's output is
 * checked against the library's first ("check.* 1" lines).
 *
 * Build: see scripts/bench (-DHAVE_ZKC links libzookeeper_mt.a). scripts/bench builds it twice:
 * against libzk_states.so (calls through the PLT, as a dynamically linked program makes them)
 * and, with -DZK_STATIC, against libzk_states.a (direct calls); the static build prefixes
 * every key with "static." so that both land in one report. The .so build
 * (-DZK_SHARED_BASELINES) also times the baselines compiled into a shared library
 * (bench/baselines_so.c, keys "*.c_so*" and "*.zkc_so"), called as libzk_states.so is. */
#include "baselines.h"
#ifdef HAVE_ZKC
#include <zookeeper/recordio.h>
#include <zookeeper/zookeeper.jute.h>
#endif

#ifdef ZK_SHARED_BASELINES
/* bench/baselines_so.c: the baselines again, in a shared library, called
 * through the PLT like libzk_states.so (the .so build only). */
uint32_t so_c_abi_version(void);
int so_c_stat_decode(const uint8_t *b, size_t len, zk_stat *out);
int so_c_event_naive(const uint8_t *b, size_t len, zk_watched_event *out);
int so_c_event_utf8(const uint8_t *b, size_t len, zk_watched_event *out);
int so_c_stat_props(const zk_stat *s, zk_stat_properties *o);
#ifdef HAVE_ZKC
int so_zkc_stat_decode(const uint8_t *b, size_t len, struct Stat *o);
int so_zkc_event_decode(const uint8_t *b, size_t len);
#endif
#endif

#ifdef ZK_STATIC
#define KEY_PREFIX "static." /* linked against libzk_states.a */
#else
#define KEY_PREFIX "" /* linked against libzk_states.so */
#endif

#define NIN 64 /* distinct inputs, cycled so nothing is loop-invariant */
#define EV_LEN 22
static zk_stat stats[NIN];
static uint8_t stat_wire[NIN][ZK_STAT_WIRE_SIZE];
static uint8_t event_wire[NIN][EV_LEN];
static uint8_t notif_wire[NIN][16 + EV_LEN];

/* ---- the timed loops ---- */

#define LOOP(name, body)                                   \
    static void name(size_t n) {                           \
        for (size_t i = 0; i < n; i++) {                   \
            size_t k = i & (NIN - 1);                      \
            (void)k;                                       \
            body                                           \
        }                                                  \
    }

LOOP(zk_call, { SINK(zk_states_abi_version()); })
LOOP(c_call, { SINK(c_abi_version()); })
LOOP(zk_stat_dec, { zk_stat o; SINK(zk_stat_decode(stat_wire[k], ZK_STAT_WIRE_SIZE, &o)); SINK_MEM(&o); })
LOOP(c_stat_dec, { zk_stat o; SINK(c_stat_decode(stat_wire[k], ZK_STAT_WIRE_SIZE, &o)); SINK_MEM(&o); })
/* The kazoo anchor's work: decode, then .created and .owner_session_id. */
LOOP(zk_stat_kazoo, {
    zk_stat o; int64_t owner = 0;
    SINK(zk_stat_decode(stat_wire[k], ZK_STAT_WIRE_SIZE, &o));
    double created = zk_stat_created(&o);
    SINK(zk_stat_owner_session_id(&o, &owner)); SINK(created); SINK(owner);
})
LOOP(zk_ev_dec, { zk_watched_event e; SINK(zk_watched_event_decode(event_wire[k], EV_LEN, &e)); SINK_MEM(&e); })
LOOP(c_ev_naive, { zk_watched_event e; SINK(c_event_naive(event_wire[k], EV_LEN, &e)); SINK_MEM(&e); })
LOOP(c_ev_utf8, { zk_watched_event e; SINK(c_event_utf8(event_wire[k], EV_LEN, &e)); SINK_MEM(&e); })
LOOP(zk_notif_dec, { zk_watched_event e; SINK(zk_notification_decode(notif_wire[k], 16 + EV_LEN, &e)); SINK_MEM(&e); })
LOOP(zk_props, { zk_stat_properties p; SINK(zk_stat_properties_get(&stats[k], &p)); SINK_MEM(&p); })
LOOP(c_props, { zk_stat_properties p; SINK(c_stat_props(&stats[k], &p)); SINK_MEM(&p); })
LOOP(zk_format, { char b[ZK_STAT_FORMAT_MAX + 1]; SINK(zk_stat_format(&stats[k], b, sizeof b)); SINK_MEM(b); })
LOOP(c_snprintf, { char b[ZK_STAT_FORMAT_MAX + 1]; SINK(snprintf_stat(b, sizeof b, &stats[k])); SINK_MEM(b); })
#ifdef HAVE_ZKC
LOOP(zkc_stat_dec, {
    struct Stat o;
    struct iarchive *ia = create_buffer_iarchive((char *)stat_wire[k], ZK_STAT_WIRE_SIZE);
    SINK(deserialize_Stat(ia, "stat", &o)); SINK_MEM(&o);
    close_buffer_iarchive(&ia);
})
LOOP(zkc_ev_dec, {
    struct WatcherEvent e;
    struct iarchive *ia = create_buffer_iarchive((char *)event_wire[k], EV_LEN);
    SINK(deserialize_WatcherEvent(ia, "event", &e)); SINK_MEM(&e); SINK_MEM(e.path);
    deallocate_WatcherEvent(&e);
    close_buffer_iarchive(&ia);
})
#endif
#ifdef ZK_SHARED_BASELINES
LOOP(c_so_call, { SINK(so_c_abi_version()); })
LOOP(c_so_stat_dec, { zk_stat o; SINK(so_c_stat_decode(stat_wire[k], ZK_STAT_WIRE_SIZE, &o)); SINK_MEM(&o); })
LOOP(c_so_ev_naive, { zk_watched_event e; SINK(so_c_event_naive(event_wire[k], EV_LEN, &e)); SINK_MEM(&e); })
LOOP(c_so_ev_utf8, { zk_watched_event e; SINK(so_c_event_utf8(event_wire[k], EV_LEN, &e)); SINK_MEM(&e); })
LOOP(c_so_props, { zk_stat_properties p; SINK(so_c_stat_props(&stats[k], &p)); SINK_MEM(&p); })
#ifdef HAVE_ZKC
LOOP(zkc_so_stat_dec, { struct Stat o; SINK(so_zkc_stat_decode(stat_wire[k], ZK_STAT_WIRE_SIZE, &o)); SINK_MEM(&o); })
LOOP(zkc_so_ev_dec, { SINK(so_zkc_event_decode(event_wire[k], EV_LEN)); })
#endif
#endif

static const struct { const char *key; void (*fn)(size_t); } benches[] = {
    {"call.zk", zk_call},                    {"call.c", c_call},
    {"stat_decode.zk", zk_stat_dec},         {"stat_decode.c", c_stat_dec},
    {"stat_kazoo_work.zk", zk_stat_kazoo},   {"event_decode.zk", zk_ev_dec},
    {"event_decode.c_naive", c_ev_naive},    {"event_decode.c_utf8", c_ev_utf8},
    {"notification_decode.zk", zk_notif_dec}, {"stat_props.zk", zk_props},
    {"stat_props.c", c_props},               {"stat_format.zk", zk_format},
    {"stat_format.snprintf", c_snprintf},
#ifdef HAVE_ZKC
    {"stat_decode.zkc", zkc_stat_dec},       {"event_decode.zkc", zkc_ev_dec},
#endif
#ifdef ZK_SHARED_BASELINES
    {"call.c_so", c_so_call},                {"stat_decode.c_so", c_so_stat_dec},
    {"event_decode.c_so_naive", c_so_ev_naive}, {"event_decode.c_so_utf8", c_so_ev_utf8},
    {"stat_props.c_so", c_so_props},
#ifdef HAVE_ZKC
    {"stat_decode.zkc_so", zkc_so_stat_dec}, {"event_decode.zkc_so", zkc_so_ev_dec},
#endif
#endif
};
#define NB (sizeof benches / sizeof benches[0])

static double time_per_call(void (*fn)(size_t), size_t n) {
    uint64_t t0 = cpu_ns();
    fn(n);
    return (double)(cpu_ns() - t0) / (double)n;
}

/* ---- inputs and checks ---- */

static void make_inputs(void) {
    for (int i = 0; i < NIN; i++) {
        zk_stat *s = &stats[i];
        s->czxid = 0x100000000LL + i * 7919;
        s->mzxid = s->czxid + 1234 * (i % 7);
        s->ctime = 1700000000000LL + i * 1000003LL;
        s->mtime = s->ctime + 5555 * (i % 3);
        s->version = i % 17;
        s->cversion = i * 3;
        s->aversion = i % 2;
        s->ephemeral_owner = i % 2 ? 0x1000a1b2c3d4e5LL + i : 0;
        s->data_length = 100 + i * 13;
        s->num_children = i % 5;
        s->pzxid = s->czxid + 99;
        uint8_t *w = stat_wire[i];
        st64(w, s->czxid); st64(w + 8, s->mzxid); st64(w + 16, s->ctime); st64(w + 24, s->mtime);
        st32(w + 32, s->version); st32(w + 36, s->cversion); st32(w + 40, s->aversion);
        st64(w + 44, s->ephemeral_owner); st32(w + 52, s->data_length); st32(w + 56, s->num_children);
        st64(w + 60, s->pzxid);
        /* a 22-byte WatcherEvent: type, SyncConnected, 10-byte path */
        uint8_t *e = event_wire[i];
        st32(e, 1 + i % 4);
        st32(e + 4, 3);
        st32(e + 8, 10);
        char path[11];
        snprintf(path, sizeof path, "/app/n-%03d", i);
        memcpy(e + 12, path, 10);
        uint8_t *f = notif_wire[i];
        st32(f, -1);
        st64(f + 4, 0x100000000LL + i);
        st32(f + 12, 0);
        memcpy(f + 16, e, EV_LEN);
    }
}

static int stat_eq(const zk_stat *a, const zk_stat *b) {
    return a->czxid == b->czxid && a->mzxid == b->mzxid && a->ctime == b->ctime && a->mtime == b->mtime &&
           a->version == b->version && a->cversion == b->cversion && a->aversion == b->aversion &&
           a->ephemeral_owner == b->ephemeral_owner && a->data_length == b->data_length &&
           a->num_children == b->num_children && a->pzxid == b->pzxid;
}

static void check(const char *what, int ok) {
    printf("check.%s%s %d\n", KEY_PREFIX, what, ok);
    if (!ok) fprintf(stderr, "micro: baseline check FAILED: %s\n", what);
}

static void run_checks(void) {
    int dec = 1, ev = 1, props = 1, fmt = 1, enc = 1;
    for (int i = 0; i < NIN; i++) {
        zk_stat a, b;
        uint8_t w[ZK_STAT_WIRE_SIZE];
        dec &= zk_stat_decode(stat_wire[i], ZK_STAT_WIRE_SIZE, &a) == 0 &&
               c_stat_decode(stat_wire[i], ZK_STAT_WIRE_SIZE, &b) == 0 && stat_eq(&a, &b) &&
               stat_eq(&a, &stats[i]);
        enc &= zk_stat_encode(&stats[i], w, sizeof w) == 0 && !memcmp(w, stat_wire[i], sizeof w);
        zk_watched_event x, y, z;
        ev &= zk_watched_event_decode(event_wire[i], EV_LEN, &x) == 0 && c_event_naive(event_wire[i], EV_LEN, &y) == 0 &&
              c_event_utf8(event_wire[i], EV_LEN, &z) == 0 && x.type == y.type && x.state == y.state &&
              x.path == y.path && x.path_len == y.path_len && x.zxid == y.zxid && !memcmp(&y, &z, sizeof y);
        zk_stat_properties p, q;
        memset(&p, 0, sizeof p);
        memset(&q, 0, sizeof q);
        props &= zk_stat_properties_get(&stats[i], &p) == 0 && c_stat_props(&stats[i], &q) == 0 &&
                 p.created == q.created && p.last_modified == q.last_modified && p.has_owner == q.has_owner &&
                 p.owner_session_id == q.owner_session_id && p.version == q.version &&
                 p.children_count == q.children_count && p.data_length == q.data_length;
        char s1[ZK_STAT_FORMAT_MAX + 1], s2[ZK_STAT_FORMAT_MAX + 1];
        size_t n1 = zk_stat_format(&stats[i], s1, sizeof s1);
        int n2 = snprintf_stat(s2, sizeof s2, &stats[i]);
        fmt &= n1 == (size_t)n2 && !strcmp(s1, s2);
    }
    check("stat_decode", dec);
    check("stat_encode", enc);
    check("event_decode", ev);
    check("stat_props", props);
    check("stat_format", fmt);
#ifdef HAVE_ZKC
    int zkc = 1;
    for (int i = 0; i < NIN; i++) {
        struct Stat o;
        struct iarchive *ia = create_buffer_iarchive((char *)stat_wire[i], ZK_STAT_WIRE_SIZE);
        zkc &= deserialize_Stat(ia, "stat", &o) == 0 && stat_eq((const zk_stat *)&o, &stats[i]);
        close_buffer_iarchive(&ia);
    }
    check("zkc_stat_decode", zkc);
#endif
#ifdef ZK_SHARED_BASELINES
    int so = 1;
    for (int i = 0; i < NIN; i++) {
        zk_stat a, b;
        zk_watched_event x, y, z;
        zk_stat_properties p, q;
        memset(&p, 0, sizeof p);
        memset(&q, 0, sizeof q);
        so &= so_c_abi_version() == zk_states_abi_version() &&
              so_c_stat_decode(stat_wire[i], ZK_STAT_WIRE_SIZE, &a) == 0 &&
              c_stat_decode(stat_wire[i], ZK_STAT_WIRE_SIZE, &b) == 0 && stat_eq(&a, &b) &&
              so_c_event_naive(event_wire[i], EV_LEN, &x) == 0 && so_c_event_utf8(event_wire[i], EV_LEN, &y) == 0 &&
              c_event_naive(event_wire[i], EV_LEN, &z) == 0 && !memcmp(&x, &z, sizeof x) &&
              !memcmp(&y, &z, sizeof y) && so_c_stat_props(&stats[i], &p) == 0 &&
              c_stat_props(&stats[i], &q) == 0 && !memcmp(&p, &q, sizeof p);
#ifdef HAVE_ZKC
        struct Stat o;
        so &= so_zkc_stat_decode(stat_wire[i], ZK_STAT_WIRE_SIZE, &o) == 0 && stat_eq((const zk_stat *)&o, &stats[i]) &&
              so_zkc_event_decode(event_wire[i], EV_LEN) == 0;
#endif
    }
    check("shared_baselines", so);
#endif
}

int main(int argc, char **argv) {
    int quick = quick_mode(argc, argv);
    int reps = quick ? 3 : 101;
    double target_ns = quick ? 2e5 : 1e6; /* per repetition of one benchmark */
    make_inputs();
    run_checks();
    static size_t n[NB];
    static double v[NB][128]; /* reps <= 128 */
    for (size_t b = 0; b < NB; b++) { /* calibrate: ~target_ns per repetition */
        size_t k = 256;
        double per = time_per_call(benches[b].fn, k);
        while (per * (double)k < 1e6 && !quick) per = time_per_call(benches[b].fn, k *= 4);
        double want = target_ns / (per > 0.1 ? per : 0.1);
        n[b] = want < 256 ? 256 : (size_t)want;
    }
    for (int r = 0; r < reps; r++)
        for (size_t b = 0; b < NB; b++) v[b][r] = time_per_call(benches[b].fn, n[b]);
    for (size_t b = 0; b < NB; b++) {
        char key[96];
        snprintf(key, sizeof key, "%s%s", KEY_PREFIX, benches[b].key);
        put_reps(key, v[b], (size_t)reps);
    }
    return 0;
}
