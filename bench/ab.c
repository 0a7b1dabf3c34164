/* Paired A/B of two or more builds of libzk_states.so in one process: each
 * build is dlopen()ed (RTLD_LOCAL, so they coexist), gets its own dispatcher
 * with the same W watches, and the builds take turns on the same batches of
 * M events, in alternating order, ROUNDS times. Each build's time per event
 * is compared with the first build's in the same round, so a change in the
 * machine's speed between rounds (large on shared 2-core machines) cancels.
 *
 *   cc -O2 -Iinclude -Ibench bench/ab.c -ldl -lpthread -o target/ab
 *   target/ab KIND W M ROUNDS A.so B.so [C.so ...]
 *
 * KIND: recursive, persistent, oneshot (W watches on bench.h's paths, M
 * random events on them; a one-shot is registered again after its event),
 * or oneshot_same (W ignored: one path, zk_watch_add + event, as the
 * throughput benchmark). Prints, per build after the first, the median
 * time per event (end to end: events, then a flush) and the median and IQR
 * of the per-round ratio to the first build. Not run by scripts/bench. */
#define _GNU_SOURCE
#include <dlfcn.h>

#include "bench.h"
#include "zk_states.h"

typedef struct {
    const char *file;
    zk_dispatcher *(*new_)(void);
    int32_t (*session)(zk_dispatcher *, int32_t);
    int32_t (*add)(zk_dispatcher *, const char *, int32_t, zk_watch_fn, void *, zk_free_fn, uint64_t *);
    int32_t (*event)(zk_dispatcher *, int32_t, const char *, int64_t);
    int32_t (*flush)(zk_dispatcher *);
    void (*free_)(zk_dispatcher *);
    zk_dispatcher *d;
} build;

enum { MAX_BUILDS = 8, MAX_ROUNDS = 200 };
static uint64_t calls;
static void on_watch(const zk_watched_event *ev, void *ud) { (void)ev; (void)ud; calls++; }

static void *sym(void *h, const char *name) {
    void *p = dlsym(h, name);
    if (!p) { fprintf(stderr, "ab: %s: %s\n", name, dlerror()); exit(2); }
    return p;
}

int main(int argc, char **argv) {
    if (argc < 7 || argc - 5 > MAX_BUILDS) {
        fprintf(stderr, "usage: %s recursive|persistent|oneshot|oneshot_same W M ROUNDS A.so B.so [...]\n", argv[0]);
        return 2;
    }
    const char *kind = argv[1];
    size_t w = strtoull(argv[2], NULL, 10), m = strtoull(argv[3], NULL, 10);
    int rounds = atoi(argv[4]), nb = argc - 5, same = !strcmp(kind, "oneshot_same");
    if (rounds < 1 || rounds > MAX_ROUNDS || w == 0 || m == 0) { fprintf(stderr, "ab: bad counts\n"); return 2; }
    int wk = !strcmp(kind, "recursive") ? ZK_WATCH_PERSISTENT_RECURSIVE
           : !strcmp(kind, "persistent") ? ZK_WATCH_PERSISTENT : ZK_WATCH_DATA;
    char *arena = xmalloc(w * 40);
    for (size_t i = 0; i < w; i++) gen_path(i, arena + i * 40);
    build b[MAX_BUILDS];
    for (int k = 0; k < nb; k++) {
        void *h = dlopen(argv[5 + k], RTLD_NOW | RTLD_LOCAL);
        if (!h) { fprintf(stderr, "ab: %s\n", dlerror()); return 2; }
        b[k] = (build){argv[5 + k], sym(h, "zk_dispatcher_new"), sym(h, "zk_dispatcher_session"), sym(h, "zk_watch_add"),
                       sym(h, "zk_dispatcher_event"), sym(h, "zk_dispatcher_flush"), sym(h, "zk_dispatcher_free"), NULL};
        b[k].d = b[k].new_();
        b[k].session(b[k].d, ZK_KEEPER_STATE_CONNECTED);
        uint64_t id;
        if (!same)
            for (size_t i = 0; i < w; i++) b[k].add(b[k].d, arena + i * 40, wk, on_watch, NULL, NULL, &id);
        b[k].flush(b[k].d);
    }
    char *evbuf = xmalloc(m * 48);
    size_t *off = xmalloc(m * sizeof *off);
    uint64_t seed = 0x9E3779B97F4A7C15ull;
    static double t[MAX_BUILDS][MAX_ROUNDS];
    for (int r = 0; r < rounds; r++) {
        for (size_t j = 0, at = 0; j < m; j++) {
            seed ^= seed << 13, seed ^= seed >> 7, seed ^= seed << 17;
            const char *s = arena + (seed % w) * 40;
            size_t len = strlen(s) + 1;
            memcpy(evbuf + at, s, len);
            off[j] = at;
            at += len;
        }
        for (int i = 0; i < nb; i++) {
            int k = (r & 1) ? nb - 1 - i : i; /* alternate the order */
            build *x = &b[k];
            uint64_t id, t0 = now_ns();
            if (same) {
                for (size_t j = 0; j < m; j++) {
                    x->add(x->d, "/app/svc-17/shard-3/node-42", ZK_WATCH_DATA, on_watch, NULL, NULL, &id);
                    x->event(x->d, ZK_EVENT_TYPE_CHANGED, "/app/svc-17/shard-3/node-42", (int64_t)j);
                }
            } else {
                for (size_t j = 0; j < m; j++) {
                    const char *p = evbuf + off[j];
                    x->event(x->d, ZK_EVENT_TYPE_CHANGED, p, (int64_t)j);
                    if (wk == ZK_WATCH_DATA) x->add(x->d, p, wk, on_watch, NULL, NULL, &id);
                }
            }
            x->flush(x->d);
            t[k][r] = (double)(now_ns() - t0) / (double)m;
        }
    }
    for (int k = 1; k < nb; k++) {
        double ratio[MAX_ROUNDS], a[MAX_ROUNDS], x[MAX_ROUNDS];
        for (int r = 0; r < rounds; r++) ratio[r] = t[k][r] / t[0][r], a[r] = t[0][r], x[r] = t[k][r];
        qsort(ratio, (size_t)rounds, sizeof *ratio, cmp_double);
        printf("%s W=%zu M=%zu: %s %.1f ns, %s %.1f ns per event; ratio %.3f (IQR %.3f-%.3f)\n", kind, w, m,
               b[0].file, median(a, (size_t)rounds), b[k].file, median(x, (size_t)rounds),
               quantile_sorted(ratio, (size_t)rounds, 0.5), quantile_sorted(ratio, (size_t)rounds, 0.25),
               quantile_sorted(ratio, (size_t)rounds, 0.75));
    }
    for (int k = 0; k < nb; k++) b[k].free_(b[k].d);
    free(arena), free(evbuf), free(off);
    return 0;
}
