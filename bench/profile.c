/* A fixed workload per operation, for instruction-exact profiles:
 *
 *   valgrind --tool=callgrind --separate-threads=yes target/bench/profile OP N
 *   callgrind_annotate --inclusive=yes callgrind.out.<pid>-01
 *
 * OP: stat_decode, event_decode, props, format (N calls each), and the C
 *     baselines c_stat_decode, c_event_naive, c_event_utf8, c_props, snprintf;
 *     persistent, recursive, oneshot (N events through a dispatcher, flushed);
 *     scale_oneshot, scale_recursive N [M] (M random events, default N, with N
 *     registered watches; add --cache-sim=yes to see the misses that grow with
 *     N; the event phase alone is dumped as its own part, "events").
 * Instructions per call = the function's inclusive Ir / N. Built by scripts/bench. */
#include "baselines.h"
#if __has_include(<valgrind/callgrind.h>)
#include <valgrind/callgrind.h> /* the event phase of scale_* is dumped on its own */
#else
#define CALLGRIND_ZERO_STATS
#define CALLGRIND_DUMP_STATS_AT(s)
#endif

static uint64_t calls;
static void on_watch(const zk_watched_event *ev, void *ud) { (void)ev; (void)ud; calls++; }

static void feed(const char *op, size_t n) {
    zk_dispatcher *d = zk_dispatcher_new();
    uint64_t id;
    const char *path = "/app/svc-17/shard-3/node-42";
    zk_dispatcher_session(d, ZK_KEEPER_STATE_CONNECTED);
    if (!strcmp(op, "persistent")) zk_watch_add(d, path, ZK_WATCH_PERSISTENT, on_watch, NULL, NULL, &id);
    if (!strcmp(op, "recursive")) zk_watch_add(d, "/app", ZK_WATCH_PERSISTENT_RECURSIVE, on_watch, NULL, NULL, &id);
    int oneshot = !strcmp(op, "oneshot");
    for (size_t i = 0; i < n; i++) {
        if (oneshot) zk_watch_add(d, path, ZK_WATCH_DATA, on_watch, NULL, NULL, &id);
        zk_dispatcher_event(d, ZK_EVENT_TYPE_CHANGED, path, (int64_t)i);
    }
    zk_dispatcher_flush(d);
    zk_dispatcher_free(d);
}

static void scale(int kind, size_t w, size_t m) {
    char *arena = xmalloc(w * 40);
    zk_dispatcher *d = zk_dispatcher_new();
    uint64_t id, seed = 0x9E3779B97F4A7C15ull;
    zk_dispatcher_session(d, ZK_KEEPER_STATE_CONNECTED);
    for (size_t i = 0; i < w; i++) {
        gen_path(i, arena + i * 40);
        zk_watch_add(d, arena + i * 40, kind, on_watch, NULL, NULL, &id);
    }
    zk_dispatcher_flush(d);
    CALLGRIND_ZERO_STATS;
    /* Events a chunk at a time, their paths copied one after another as they
     * would arrive in a socket buffer (not read from the cold path table). */
    enum { EVCHUNK = 4096 };
    char *evbuf = xmalloc(EVCHUNK * 40);
    for (size_t j = 0; j < m; j += EVCHUNK) {
        size_t n = m - j < EVCHUNK ? m - j : EVCHUNK;
        for (size_t k = 0; k < n; k++) {
            seed ^= seed << 13, seed ^= seed >> 7, seed ^= seed << 17;
            memcpy(evbuf + k * 40, arena + (seed % w) * 40, 40);
        }
        for (size_t k = 0; k < n; k++) {
            const char *path = evbuf + k * 40;
            zk_dispatcher_event(d, ZK_EVENT_TYPE_CHANGED, path, (int64_t)(j + k));
            if (kind == ZK_WATCH_DATA) zk_watch_add(d, path, kind, on_watch, NULL, NULL, &id);
        }
    }
    free(evbuf);
    zk_dispatcher_flush(d);
    CALLGRIND_DUMP_STATS_AT("events");
    zk_dispatcher_free(d);
    free(arena);
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s OP N [M]\n", argv[0]);
        return 2;
    }
    const char *op = argv[1];
    size_t n = (size_t)strtoull(argv[2], NULL, 10);
    uint8_t stat[ZK_STAT_WIRE_SIZE] = {0, 0, 0, 1, 0, 0, 0, 2}, ev[22] = {0, 0, 0, 3, 0, 0, 0, 3, 0, 0, 0, 10};
    memcpy(ev + 12, "/app/n-001", 10);
    zk_stat s = {0x100000002, 0x100000003, 1700000000000, 1700000005555, 1, 2, 0, 0x1000a1b2c3d4e5, 100, 3, 7};
    if (!strcmp(op, "stat_decode")) {
        for (size_t i = 0; i < n; i++) { zk_stat o; SINK(zk_stat_decode(stat, sizeof stat, &o)); SINK_MEM(&o); }
    } else if (!strcmp(op, "event_decode")) {
        for (size_t i = 0; i < n; i++) { zk_watched_event e; SINK(zk_watched_event_decode(ev, sizeof ev, &e)); SINK_MEM(&e); }
    } else if (!strcmp(op, "props")) {
        for (size_t i = 0; i < n; i++) { zk_stat_properties p; SINK(zk_stat_properties_get(&s, &p)); SINK_MEM(&p); }
    } else if (!strcmp(op, "format")) {
        for (size_t i = 0; i < n; i++) { char b[ZK_STAT_FORMAT_MAX + 1]; SINK(zk_stat_format(&s, b, sizeof b)); SINK_MEM(b); }
    } else if (!strcmp(op, "c_stat_decode")) {
        for (size_t i = 0; i < n; i++) { zk_stat o; SINK(c_stat_decode(stat, sizeof stat, &o)); SINK_MEM(&o); }
    } else if (!strcmp(op, "c_event_naive")) {
        for (size_t i = 0; i < n; i++) { zk_watched_event e; SINK(c_event_naive(ev, sizeof ev, &e)); SINK_MEM(&e); }
    } else if (!strcmp(op, "c_event_utf8")) {
        for (size_t i = 0; i < n; i++) { zk_watched_event e; SINK(c_event_utf8(ev, sizeof ev, &e)); SINK_MEM(&e); }
    } else if (!strcmp(op, "c_props")) {
        for (size_t i = 0; i < n; i++) { zk_stat_properties p; SINK(c_stat_props(&s, &p)); SINK_MEM(&p); }
    } else if (!strcmp(op, "snprintf")) {
        for (size_t i = 0; i < n; i++) { char b[ZK_STAT_FORMAT_MAX + 1]; SINK(snprintf_stat(b, sizeof b, &s)); SINK_MEM(b); }
    } else if (!strcmp(op, "persistent") || !strcmp(op, "recursive") || !strcmp(op, "oneshot")) {
        feed(op, n);
    } else if (!strcmp(op, "scale_oneshot")) {
        scale(ZK_WATCH_DATA, n, argc > 3 ? (size_t)strtoull(argv[3], NULL, 10) : n);
    } else if (!strcmp(op, "scale_recursive")) {
        scale(ZK_WATCH_PERSISTENT_RECURSIVE, n, argc > 3 ? (size_t)strtoull(argv[3], NULL, 10) : n);
    } else {
        fprintf(stderr, "unknown OP %s\n", op);
        return 2;
    }
    return 0;
}
