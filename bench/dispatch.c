/* Dispatcher benchmarks through the C ABI. One C thread feeds; the callbacks
 * are plain C functions run on the dispatch thread.
 *
 *   dispatch throughput   events/s end to end (feed N, flush) for: a persistent
 *                         watch, a persistent-recursive watch on an ancestor, a
 *                         one-shot re-registered before every event, submitted
 *                         callbacks, and pre-serialized notification frames
 *                         (decode + one-shot re-registered)
 *   dispatch latency      zk_dispatcher_event -> callback entry at a paced rate
 *                         (the feeder's CLOCK_MONOTONIC stamp travels in a
 *                         preallocated array indexed by the event's zxid; the
 *                         feeder waits with sched_yield, like a client blocked
 *                         on its socket, rather than holding a CPU)
 *   dispatch scale        per-event cost with 10 .. 1M registered watches
 *                         (one-shot re-registered, and persistent-recursive),
 *                         repetitions interleaved across the watch counts
 *   dispatch memory KIND W  bytes per registered watch (RSS and heap deltas)
 *
 * Prints "key v1,v2,..." lines (one value per repetition). */
#include <endian.h>
#include <malloc.h>
#include <sched.h>
#include <unistd.h>

#include "bench.h"
#include "zk_states.h"

static uint64_t g_calls; /* written on the dispatch thread, read after a flush */
static void on_watch(const zk_watched_event *ev, void *ud) { (void)ev; (void)ud; g_calls++; }
static void on_submit(void *args) { (void)args; g_calls++; }

static zk_dispatcher *connected_dispatcher(void) {
    zk_dispatcher *d = zk_dispatcher_new();
    if (!d || zk_dispatcher_session(d, ZK_KEEPER_STATE_CONNECTED) != ZK_OK) {
        fprintf(stderr, "dispatch: cannot start a dispatcher\n");
        exit(2);
    }
    return d;
}

static void must(int32_t status, const char *what) {
    if (status != ZK_OK) {
        fprintf(stderr, "dispatch: %s: %s\n", what, zk_status_message(status));
        exit(2);
    }
}

static void expect_calls(uint64_t want, const char *what) {
    if (g_calls != want)
        fprintf(stderr, "dispatch: %s: %llu callbacks, expected %llu\n", what, (unsigned long long)g_calls,
                (unsigned long long)want);
}

/* ---------------------------------------------------------------- throughput */

#define PATH "/app/svc-17/shard-3/node-42"
#define NFRAME 64
enum { PERSISTENT, RECURSIVE, ONESHOT, SUBMIT, FRAME, NMODE };
static const char *mode_name[NMODE] = {"persistent", "recursive", "oneshot", "submit", "frame"};
static uint8_t frames[NFRAME][64];
static size_t frame_len[NFRAME];
static char frame_path[NFRAME][32];

static void put32(uint8_t *p, int32_t v) { uint32_t x = htobe32((uint32_t)v); memcpy(p, &x, 4); }
static void put64(uint8_t *p, int64_t v) { uint64_t x = htobe64((uint64_t)v); memcpy(p, &x, 8); }

/* Server notifications as they follow the 4-byte frame length: ReplyHeader
 * (xid -1, zxid, err 0) + WatcherEvent(CHANGED, SyncConnected, path). */
static void make_frames(void) {
    for (int i = 0; i < NFRAME; i++) {
        int n = snprintf(frame_path[i], sizeof frame_path[i], "/app/svc-17/shard-3/node-%02d", i);
        uint8_t *f = frames[i];
        put32(f, -1);
        put64(f + 4, 0x100000000LL + i);
        put32(f + 12, 0);
        put32(f + 16, ZK_EVENT_TYPE_CHANGED);
        put32(f + 20, 3);
        put32(f + 24, n);
        memcpy(f + 28, frame_path[i], (size_t)n);
        frame_len[i] = 28 + (size_t)n;
    }
}

/* Feeds n items in `mode`; returns the end-to-end ns per event, and the
 * feeding thread's own ns per event in *feed. */
static double throughput(int mode, size_t n, double *feed) {
    zk_dispatcher *d = connected_dispatcher();
    uint64_t id;
    if (mode == PERSISTENT) must(zk_watch_add(d, PATH, ZK_WATCH_PERSISTENT, on_watch, NULL, NULL, &id), "add");
    if (mode == RECURSIVE) must(zk_watch_add(d, "/app", ZK_WATCH_PERSISTENT_RECURSIVE, on_watch, NULL, NULL, &id), "add");
    must(zk_dispatcher_flush(d), "flush");
    g_calls = 0;
    char path[64];
    uint64_t t0 = now_ns();
    for (size_t i = 0; i < n; i++) {
        switch (mode) {
        case PERSISTENT:
        case RECURSIVE:
            zk_dispatcher_event(d, ZK_EVENT_TYPE_CHANGED, PATH, (int64_t)i);
            break;
        case ONESHOT:
            zk_watch_add(d, PATH, ZK_WATCH_DATA, on_watch, NULL, NULL, &id);
            zk_dispatcher_event(d, ZK_EVENT_TYPE_CHANGED, PATH, (int64_t)i);
            break;
        case SUBMIT:
            zk_dispatcher_submit(d, on_submit, NULL, NULL);
            break;
        case FRAME: { /* kazoo: _data_watchers[path].add(fn); _read_watch_event(frame, 16) */
            size_t k = i % NFRAME;
            zk_watch_add(d, frame_path[k], ZK_WATCH_DATA, on_watch, NULL, NULL, &id);
            zk_watched_event ev;
            if (zk_notification_decode(frames[k], frame_len[k], &ev) != ZK_OK || ev.path_len >= sizeof path) break;
            memcpy(path, ev.path, ev.path_len);
            path[ev.path_len] = 0;
            zk_dispatcher_event(d, ev.type, path, ev.zxid);
            break;
        }
        }
    }
    uint64_t t1 = now_ns();
    must(zk_dispatcher_flush(d), "flush");
    uint64_t t2 = now_ns();
    expect_calls(n, mode_name[mode]);
    zk_dispatcher_free(d);
    *feed = (double)(t1 - t0) / (double)n;
    return (double)(t2 - t0) / (double)n;
}

static void cmd_throughput(int quick) {
    size_t n = quick ? 5000 : 1000000;
    int reps = quick ? 2 : 9;
    double e2e[NMODE][16], feed[NMODE][16];
    for (int r = 0; r < reps; r++)
        for (int m = 0; m < NMODE; m++) e2e[m][r] = 1e9 / throughput(m, n, &feed[m][r]);
    for (int m = 0; m < NMODE; m++) {
        char key[64];
        snprintf(key, sizeof key, "throughput.%s.eps", mode_name[m]);
        put_reps(key, e2e[m], (size_t)reps);
        snprintf(key, sizeof key, "throughput.%s.feed_ns", mode_name[m]);
        put_reps(key, feed[m], (size_t)reps);
    }
}

/* ------------------------------------------------------------------- latency */

static uint64_t *g_stamp; /* feeder's clock at zk_dispatcher_event, by zxid */
static double *g_lat;

static void on_latency(const zk_watched_event *ev, void *ud) {
    uint64_t t = now_ns();
    (void)ud;
    g_lat[ev->zxid] = (double)(t - g_stamp[ev->zxid]);
    g_calls++;
}

static void cmd_latency(int quick) {
    const double rate = 100000; /* events per second */
    size_t n = quick ? 2000 : 300000;
    int reps = quick ? 1 : 3;
    double p50[8], p99[8], p999[8], pmax[8], achieved[8];
    g_stamp = xmalloc(n * sizeof *g_stamp);
    g_lat = xmalloc(n * sizeof *g_lat);
    for (int r = 0; r < reps; r++) {
        zk_dispatcher *d = connected_dispatcher();
        uint64_t id;
        must(zk_watch_add(d, PATH, ZK_WATCH_PERSISTENT, on_latency, NULL, NULL, &id), "add");
        must(zk_dispatcher_flush(d), "flush");
        memset(g_stamp, 0, n * sizeof *g_stamp); /* touch every page before timing */
        memset(g_lat, 0, n * sizeof *g_lat);
        g_calls = 0;
        uint64_t start = now_ns(), period = (uint64_t)(1e9 / rate);
        for (size_t i = 0; i < n; i++) {
            uint64_t due = start + i * period;
            while (now_ns() < due) /* a busy wait that leaves the CPU to others (the */
                sched_yield();       /* dispatch thread) on a small, busy machine */
            g_stamp[i] = now_ns();
            zk_dispatcher_event(d, ZK_EVENT_TYPE_CHANGED, PATH, (int64_t)i);
        }
        achieved[r] = (double)n * 1e9 / (double)(now_ns() - start);
        must(zk_dispatcher_flush(d), "flush");
        expect_calls(n, "latency");
        zk_dispatcher_free(d);
        qsort(g_lat, n, sizeof *g_lat, cmp_double);
        p50[r] = quantile_sorted(g_lat, n, 0.5) / 1e3;
        p99[r] = quantile_sorted(g_lat, n, 0.99) / 1e3;
        p999[r] = quantile_sorted(g_lat, n, 0.999) / 1e3;
        pmax[r] = g_lat[n - 1] / 1e3;
    }
    put_reps("latency.rate", achieved, (size_t)reps);
    put_reps("latency.p50_us", p50, (size_t)reps);
    put_reps("latency.p99_us", p99, (size_t)reps);
    put_reps("latency.p999_us", p999, (size_t)reps);
    put_reps("latency.max_us", pmax, (size_t)reps);
    free(g_stamp);
    free(g_lat);
}

/* --------------------------------------------------------- scale and memory */

typedef struct {
    char *arena;
    size_t *off, count;
    double mean_len;
} paths;

static paths make_paths(size_t count) {
    paths p = {xmalloc(count * 40), xmalloc(count * sizeof(size_t)), count, 0};
    size_t at = 0;
    for (size_t i = 0; i < count; i++) {
        p.off[i] = at;
        at += gen_path(i, p.arena + at) + 1;
    }
    p.mean_len = (double)(at - count) / (double)count;
    return p;
}
#define PATH_AT(p, i) ((p).arena + (p).off[i])

static int kind_of(const char *name) {
    if (!strcmp(name, "oneshot")) return ZK_WATCH_DATA;
    if (!strcmp(name, "recursive")) return ZK_WATCH_PERSISTENT_RECURSIVE;
    fprintf(stderr, "dispatch: unknown watch kind %s (oneshot, recursive)\n", name);
    exit(2);
}

static void cmd_scale(int quick) {
    static const size_t all_counts[] = {10, 100, 1000, 10000, 100000, 1000000};
    size_t ncounts = quick ? 4 : 6, m = quick ? 2000 : 200000;
    int reps = quick ? 1 : 11;
    paths p = make_paths(all_counts[ncounts - 1]);
    uint64_t seed = 0x9E3779B97F4A7C15ull;
    /* The events of a repetition, their paths laid out one after another as
     * they would arrive in a socket buffer (reading them is not a cache miss
     * of the harness's 1M-path table). */
    char *evbuf = xmalloc(m * 48);
    size_t *evoff = xmalloc(m * sizeof *evoff);
    const char *kinds[] = {"oneshot", "recursive"};
    for (int k = 0; k < 2; k++) {
        int kind = kind_of(kinds[k]);
        zk_dispatcher *d[6];
        double add_ns[6], e2e[6][16], feed[6][16];
        for (size_t c = 0; c < ncounts; c++) {
            d[c] = connected_dispatcher();
            uint64_t id, t0 = now_ns();
            for (size_t i = 0; i < all_counts[c]; i++)
                must(zk_watch_add(d[c], PATH_AT(p, i), kind, on_watch, NULL, NULL, &id), "add");
            add_ns[c] = (double)(now_ns() - t0) / (double)all_counts[c];
            must(zk_dispatcher_flush(d[c]), "flush");
        }
        for (int r = 0; r < reps; r++) {
            for (size_t c = 0; c < ncounts; c++) { /* interleaved: drift hits every count alike */
                size_t w = all_counts[c];
                for (size_t j = 0, at = 0; j < m; j++) { /* xorshift64: random watched paths */
                    seed ^= seed << 13, seed ^= seed >> 7, seed ^= seed << 17;
                    const char *src = PATH_AT(p, (size_t)(seed % w));
                    size_t len = strlen(src) + 1;
                    memcpy(evbuf + at, src, len);
                    evoff[j] = at;
                    at += len;
                }
                uint64_t id;
                g_calls = 0;
                uint64_t t0 = now_ns();
                for (size_t j = 0; j < m; j++) {
                    const char *path = evbuf + evoff[j];
                    zk_dispatcher_event(d[c], ZK_EVENT_TYPE_CHANGED, path, (int64_t)j);
                    if (kind == ZK_WATCH_DATA) zk_watch_add(d[c], path, kind, on_watch, NULL, NULL, &id);
                }
                uint64_t t1 = now_ns();
                must(zk_dispatcher_flush(d[c]), "flush");
                uint64_t t2 = now_ns();
                expect_calls(m, kinds[k]);
                e2e[c][r] = (double)(t2 - t0) / (double)m;
                feed[c][r] = (double)(t1 - t0) / (double)m;
            }
        }
        for (size_t c = 0; c < ncounts; c++) {
            char key[80];
            snprintf(key, sizeof key, "scale.%s.%zu.e2e_ns", kinds[k], all_counts[c]);
            put_reps(key, e2e[c], (size_t)reps);
            snprintf(key, sizeof key, "scale.%s.%zu.feed_ns", kinds[k], all_counts[c]);
            put_reps(key, feed[c], (size_t)reps);
            snprintf(key, sizeof key, "scale.%s.%zu.add_ns", kinds[k], all_counts[c]);
            put(key, add_ns[c]);
            zk_dispatcher_free(d[c]);
        }
    }
    free(evbuf);
    free(evoff);
}

static double rss_bytes(void) {
    long size = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f || fscanf(f, "%ld %ld", &size, &resident) != 2) resident = 0;
    if (f) fclose(f);
    return (double)resident * (double)sysconf(_SC_PAGESIZE);
}

static double heap_bytes(void) {
    struct mallinfo2 mi = mallinfo2();
    return (double)mi.uordblks + (double)mi.hblkhd;
}

static void cmd_memory(const char *kind_name, size_t count) {
    int kind = kind_of(kind_name);
    paths p = make_paths(count);
    zk_dispatcher *d = connected_dispatcher();
    must(zk_dispatcher_flush(d), "flush");
    double rss0 = rss_bytes(), heap0 = heap_bytes();
    uint64_t id;
    for (size_t i = 0; i < count; i++) must(zk_watch_add(d, PATH_AT(p, i), kind, on_watch, NULL, NULL, &id), "add");
    must(zk_dispatcher_flush(d), "flush"); /* whatever the dispatch thread keeps is counted too */
    double rss1 = rss_bytes(), heap1 = heap_bytes();
    char key[80];
    snprintf(key, sizeof key, "memory.%s.rss_per_watch", kind_name);
    put(key, (rss1 - rss0) / (double)count);
    snprintf(key, sizeof key, "memory.%s.heap_per_watch", kind_name);
    put(key, (heap1 - heap0) / (double)count);
    snprintf(key, sizeof key, "memory.%s.path_len", kind_name);
    put(key, p.mean_len);
    snprintf(key, sizeof key, "memory.%s.count", kind_name);
    put(key, (double)count);
    zk_dispatcher_free(d);
}

int main(int argc, char **argv) {
    int quick = quick_mode(argc, argv);
    const char *cmd = argc > 1 ? argv[1] : "";
    make_frames();
    if (!strcmp(cmd, "throughput")) cmd_throughput(quick);
    else if (!strcmp(cmd, "latency")) cmd_latency(quick);
    else if (!strcmp(cmd, "scale")) cmd_scale(quick);
    else if (!strcmp(cmd, "memory") && argc > 3) cmd_memory(argv[2], (size_t)strtoull(argv[3], NULL, 10));
    else {
        fprintf(stderr, "usage: %s throughput|latency|scale|memory KIND COUNT [--quick]\n", argv[0]);
        return 2;
    }
    return 0;
}
