/*
 * test_stress.c: a concurrency stress test of the zk-states dispatcher.
 *
 * Worker threads hammer three dispatchers (kazoo mode unbounded; Curator +
 * keep-watches with a queue bound of 8; kazoo mode with a chroot) with random
 * watch/listener registrations and removals, node events, session changes,
 * submissions and flushes. Callbacks remove themselves, register new watches,
 * submit more work and feed events. At the end every dispatcher is drained
 * and freed, and the accounting must be exact:
 *
 *   - every user_data whose registration succeeded is freed exactly once,
 *     never while one of its callbacks runs, and no callback runs after its
 *     free; a refused registration is never freed by the library;
 *   - frees == successful registrations (watches + listeners + submissions);
 *   - the stats agree with what the threads fed and what the callbacks saw:
 *     events_fed = matched + unmatched + ignored = events accepted, and so on;
 *   - every callback sees a non-decreasing sequence number per dispatcher.
 *
 * Usage: test_stress [scale]   (or ZK_STRESS_SCALE): iterations are
 * multiplied by scale (default 1.0; the driver uses less under valgrind and
 * more for a long run).
 *
 * Built with -std=c99 -Wall -Wextra -Werror -pedantic -pthread; atomics are
 * GCC __atomic builtins.
 */
#define _POSIX_C_SOURCE 200809L

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "check.h"
#include "zk_states.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define LOAD(p) __atomic_load_n((p), __ATOMIC_SEQ_CST)
#define STORE(p, v) __atomic_store_n((p), (v), __ATOMIC_SEQ_CST)
#define ADD(p, v) __atomic_add_fetch((p), (v), __ATOMIC_SEQ_CST)
#define FETCH_ADD(p, v) __atomic_fetch_add((p), (v), __ATOMIC_SEQ_CST)

#define N_WORKERS 4
#define N_DISPATCHERS 3
#define BASE_ITERATIONS 100000
#define TRACKER_MAGIC 0x7EC4ED01u
#define RING 64
/* Bounds on what stays registered, so the work per operation (listeners told
   of each session change, watches matched per event) stays constant and the
   run time grows linearly with the scale. */
#define MAX_LIVE_LISTENERS 24
#define MAX_LIVE_WATCHES 256

enum { T_WATCH = 1, T_LISTENER = 2, T_SUBMIT = 3 };
enum {
    B_REMOVE_SELF = 1,
    B_REREGISTER = 2,
    B_SUBMIT_MORE = 4,
    B_RETURN_TRUE = 8,
    B_FEED = 16
};

struct tracker {
    uint32_t magic;
    int kind;
    int di;         /* dispatcher index */
    int behaviour;
    int depth;      /* submission chain depth */
    int registered; /* atomic: the registration returned ZK_OK */
    int refused;    /* atomic: the registration failed */
    int frees;      /* atomic */
    int calls;      /* atomic */
    int in_cb;      /* atomic */
    int wkind;      /* watch kind, for T_WATCH */
    int dropped;    /* atomic: a watch the library forgot after firing it */
    uint64_t id;    /* atomic */
};

/* ---- global state ------------------------------------------------------- */

static zk_dispatcher *disp[N_DISPATCHERS];
static struct tracker **trackers;
static long tracker_cap;
static long tracker_count; /* atomic; may exceed tracker_cap */

static long trackers_used(void)
{
    long n = __atomic_load_n(&tracker_count, __ATOMIC_SEQ_CST);
    return n < tracker_cap ? n : tracker_cap;
}

/* per dispatcher, what the threads and callbacks were told */
static unsigned long ok_events[N_DISPATCHERS];
static unsigned long ok_sessions[N_DISPATCHERS];
static unsigned long ok_submits[N_DISPATCHERS];
static unsigned long full_refusals[N_DISPATCHERS];
static unsigned long ok_watch_adds, ok_listener_adds; /* all dispatchers */
static unsigned long total_frees;
static unsigned long bad_events;      /* malformed event seen by a callback */
static unsigned long bad_states;      /* invalid kazoo state seen by a listener */
static unsigned long call_after_free; /* a callback ran on a freed user_data */
static unsigned long free_in_cb;      /* free_fn ran during a callback */
static unsigned long double_free;
static unsigned long bad_magic;
static unsigned long unexpected_rc;
static unsigned long seq_regressions;
static unsigned long zero_seq;
static unsigned long stats_identity_failures;
static uint64_t last_seq[N_DISPATCHERS]; /* written by each dispatch thread only */
static long live_listeners_now[N_DISPATCHERS]; /* atomic, approximate */
static long live_watches_now[N_DISPATCHERS];   /* atomic, approximate */

static const char *watch_paths[] = {"/", "/a", "/a/b", "/a/b/c", "/b", "/b/x", "/c"};
static const char *event_paths[] = {"/",     "/a",   "/a/b", "/a/b/c", "/a/b/c/d", "/b",
                                    "/b/x",  "/c",   "/c/y", "/app",   "/app/a",   "/app/a/b",
                                    "/app/b", "/application"};
static const int32_t keeper_states[] = {
    ZK_KEEPER_STATE_CONNECTING, ZK_KEEPER_STATE_CONNECTED,   ZK_KEEPER_STATE_CONNECTED,
    ZK_KEEPER_STATE_CONNECTED,  ZK_KEEPER_STATE_CONNECTED_RO, ZK_KEEPER_STATE_CONNECTING,
    ZK_KEEPER_STATE_EXPIRED_SESSION, ZK_KEEPER_STATE_AUTH_FAILED, ZK_KEEPER_STATE_CLOSED};
static const int32_t event_types[] = {
    ZK_EVENT_TYPE_CREATED, ZK_EVENT_TYPE_DELETED, ZK_EVENT_TYPE_CHANGED,
    ZK_EVENT_TYPE_CHILD,   ZK_EVENT_TYPE_CHANGED, ZK_EVENT_TYPE_CREATED,
    ZK_EVENT_TYPE_NONE,    ZK_EVENT_TYPE_NOT_WATCHING, ZK_EVENT_TYPE_DATA_WATCH_REMOVED};

/* ---- random numbers ----------------------------------------------------- */

static uint64_t rng_next(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * UINT64_C(0x2545F4914F6CDD1D);
}

static unsigned rnd(uint64_t *s, unsigned n) { return (unsigned)(rng_next(s) % n); }

/* ---- trackers ----------------------------------------------------------- */

static struct tracker *tracker_new(int kind, int di, int behaviour, int depth)
{
    struct tracker *t;
    /* Slots are never handed out twice; an unused slot stays NULL. */
    long slot = FETCH_ADD(&tracker_count, 1);
    if (slot >= tracker_cap) {
        return NULL;
    }
    t = (struct tracker *)calloc(1, sizeof *t);
    if (t == NULL) {
        return NULL;
    }
    t->magic = TRACKER_MAGIC;
    t->kind = kind;
    t->di = di;
    t->behaviour = behaviour;
    t->depth = depth;
    STORE(&trackers[slot], t);
    return t;
}

static void tracker_free(void *p)
{
    struct tracker *t = (struct tracker *)p;
    if (t == NULL || t->magic != TRACKER_MAGIC) {
        ADD(&bad_magic, 1);
        return;
    }
    if (LOAD(&t->in_cb)) {
        ADD(&free_in_cb, 1);
    }
    if (FETCH_ADD(&t->frees, 1) != 0) {
        ADD(&double_free, 1);
    }
    if (t->kind == T_WATCH) {
        ADD(&live_watches_now[t->di], -1);
    } else if (t->kind == T_LISTENER) {
        ADD(&live_listeners_now[t->di], -1);
    }
    ADD(&total_frees, 1);
}

static void cb_enter(struct tracker *t)
{
    uint64_t seq = zk_dispatch_current_seq();
    if (t == NULL || t->magic != TRACKER_MAGIC) {
        ADD(&bad_magic, 1);
        return;
    }
    if (LOAD(&t->frees) != 0) {
        ADD(&call_after_free, 1);
    }
    STORE(&t->in_cb, 1);
    ADD(&t->calls, 1);
    if (seq == 0) {
        ADD(&zero_seq, 1);
    }
    if (seq < last_seq[t->di]) {
        ADD(&seq_regressions, 1);
    }
    last_seq[t->di] = seq;
}

static void cb_leave(struct tracker *t) { STORE(&t->in_cb, 0); }

static void watch_cb(const zk_watched_event *ev, void *p);
static bool listener_cb(zk_kazoo_state state, void *p);
static void submit_cb(void *p);

static void note_rc(int di, int32_t rc)
{
    if (rc == ZK_ERR_QUEUE_FULL) {
        ADD(&full_refusals[di], 1);
    } else if (rc != ZK_OK) {
        ADD(&unexpected_rc, 1);
        fprintf(stderr, "unexpected status %d (%s)\n", (int)rc, zk_status_message(rc));
    }
}

/* ungated: ignore MAX_LIVE_WATCHES (for registrations that must be refused) */
static int32_t register_watch_impl(int di, const char *path, int32_t kind, int behaviour,
                                   uint64_t *out_id, int ungated)
{
    struct tracker *t;
    uint64_t id = 0;
    int32_t rc;
    if (!ungated && LOAD(&live_watches_now[di]) >= MAX_LIVE_WATCHES) {
        return -1;
    }
    t = tracker_new(T_WATCH, di, behaviour, 0);
    if (t == NULL) {
        return -1;
    }
    t->wkind = kind;
    rc = zk_watch_add(disp[di], path, kind, watch_cb, t, tracker_free, &id);
    if (rc == ZK_OK) {
        STORE(&t->id, id);
        ADD(&live_watches_now[di], 1);
        STORE(&t->registered, 1);
        ADD(&ok_watch_adds, 1);
        if (out_id != NULL) {
            *out_id = id;
        }
    } else {
        STORE(&t->refused, 1);
    }
    return rc;
}

static int32_t register_watch(int di, const char *path, int32_t kind, int behaviour,
                              uint64_t *out_id)
{
    return register_watch_impl(di, path, kind, behaviour, out_id, 0);
}

static int32_t register_listener(int di, int behaviour, uint64_t *out_id)
{
    struct tracker *t;
    uint64_t id = 0;
    int32_t rc;
    if (LOAD(&live_listeners_now[di]) >= MAX_LIVE_LISTENERS) {
        return -1;
    }
    t = tracker_new(T_LISTENER, di, behaviour, 0);
    if (t == NULL) {
        return -1;
    }
    rc = zk_listener_add(disp[di], listener_cb, t, tracker_free, &id);
    if (rc == ZK_OK) {
        STORE(&t->id, id);
        ADD(&live_listeners_now[di], 1);
        STORE(&t->registered, 1);
        ADD(&ok_listener_adds, 1);
        if (out_id != NULL) {
            *out_id = id;
        }
    } else {
        STORE(&t->refused, 1);
    }
    return rc;
}

static int32_t do_submit(int di, int behaviour, int depth)
{
    struct tracker *t = tracker_new(T_SUBMIT, di, behaviour, depth);
    int32_t rc;
    if (t == NULL) {
        return -1;
    }
    rc = zk_dispatcher_submit(disp[di], submit_cb, t, tracker_free);
    if (rc == ZK_OK) {
        STORE(&t->registered, 1);
        ADD(&ok_submits[di], 1);
    } else {
        STORE(&t->refused, 1);
        note_rc(di, rc);
    }
    return rc;
}

static int32_t do_event(int di, int32_t type, const char *path, int64_t zxid)
{
    int32_t rc = zk_dispatcher_event(disp[di], type, path, zxid);
    if (rc == ZK_OK) {
        ADD(&ok_events[di], 1);
    } else {
        note_rc(di, rc);
    }
    return rc;
}

/* What callbacks do besides checking. */
static void callback_actions(struct tracker *t, uint64_t salt)
{
    uint64_t s = salt ^ ((uint64_t)(uintptr_t)t * UINT64_C(0x9E3779B97F4A7C15)) ^
                 (uint64_t)LOAD(&t->calls);
    int32_t rc;
    if (s == 0) {
        s = 1;
    }
    if ((t->behaviour & B_REMOVE_SELF) && t->kind == T_WATCH) {
        uint64_t id = LOAD(&t->id);
        if (id != 0) {
            rc = zk_watch_remove(disp[t->di], id);
            if (rc != ZK_OK && rc != ZK_ERR_NOT_FOUND) {
                ADD(&unexpected_rc, 1);
            }
        }
    }
    if ((t->behaviour & B_REMOVE_SELF) && t->kind == T_LISTENER) {
        uint64_t id = LOAD(&t->id);
        if (id != 0) {
            rc = zk_listener_remove(disp[t->di], id);
            if (rc != ZK_OK && rc != ZK_ERR_NOT_FOUND) {
                ADD(&unexpected_rc, 1);
            }
        }
    }
    if ((t->behaviour & B_REREGISTER) && rnd(&s, 4) == 0) {
        rc = register_watch(t->di, watch_paths[rnd(&s, ARRAY_LEN(watch_paths))],
                            (int32_t)rnd(&s, 4), (int)rnd(&s, 8) & (B_REMOVE_SELF | B_SUBMIT_MORE),
                            NULL);
        if (rc != ZK_OK && rc != -1) {
            ADD(&unexpected_rc, 1);
        }
    }
    if ((t->behaviour & B_SUBMIT_MORE) && t->depth < 3 && rnd(&s, 2) == 0) {
        do_submit(t->di, (int)rnd(&s, 32) & ~B_RETURN_TRUE, t->depth + 1);
    }
    if ((t->behaviour & B_FEED) && rnd(&s, 4) == 0) {
        do_event(t->di, event_types[rnd(&s, ARRAY_LEN(event_types))],
                 event_paths[rnd(&s, ARRAY_LEN(event_paths))], (int64_t)rnd(&s, 1000));
    }
    if (rnd(&s, 64) == 0) {
        rc = zk_dispatcher_flush(disp[t->di]);
        if (rc != ZK_ERR_WOULD_DEADLOCK) {
            ADD(&unexpected_rc, 1);
        }
    }
}

static int valid_event(const zk_watched_event *ev, int di)
{
    if (ev == NULL) {
        return 0;
    }
    if (ev->type == ZK_EVENT_TYPE_NONE) {
        return ev->path == NULL && ev->path_len == 0 && ev->zxid == ZK_ZXID_UNKNOWN &&
               zk_keeper_state_name(ev->state) != NULL;
    }
    if (ev->type < ZK_EVENT_TYPE_CREATED || ev->type > ZK_EVENT_TYPE_CHILD) {
        return 0;
    }
    if (ev->path == NULL || ev->path[0] != '/' || strlen(ev->path) != ev->path_len) {
        return 0;
    }
    if (di == 2 && strncmp(ev->path, "/app", 4) == 0) {
        return 0; /* the chroot was not stripped */
    }
    return zk_keeper_state_name(ev->state) != NULL;
}

static int closed_state(int32_t s)
{
    return s == ZK_KEEPER_STATE_EXPIRED_SESSION || s == ZK_KEEPER_STATE_AUTH_FAILED ||
           s == ZK_KEEPER_STATE_CLOSED;
}

static void watch_cb(const zk_watched_event *ev, void *p)
{
    struct tracker *t = (struct tracker *)p;
    int one_shot = t->wkind == ZK_WATCH_DATA || t->wkind == ZK_WATCH_CHILD;
    cb_enter(t);
    if (!valid_event(ev, t->di)) {
        ADD(&bad_events, 1);
    }
    /* Which calls make the library forget the watch: a one-shot's node event,
       a NONE event on a lost session, and (kazoo mode) a one-shot's NONE on a
       suspension; dispatcher 1 keeps one-shots across a suspension. */
    if ((one_shot && ev->type != ZK_EVENT_TYPE_NONE) ||
        (ev->type == ZK_EVENT_TYPE_NONE && closed_state(ev->state)) ||
        (one_shot && ev->type == ZK_EVENT_TYPE_NONE && t->di != 1)) {
        STORE(&t->dropped, 1);
    }
    callback_actions(t, (uint64_t)ev->type * 7919u + ev->path_len);
    cb_leave(t);
}

static bool listener_cb(zk_kazoo_state state, void *p)
{
    struct tracker *t = (struct tracker *)p;
    bool ret;
    cb_enter(t);
    if (zk_kazoo_state_name(state) == NULL ||
        (t->di != 1 && (state == ZK_KAZOO_STATE_RECONNECTED || state == ZK_KAZOO_STATE_READ_ONLY))) {
        ADD(&bad_states, 1);
    }
    callback_actions(t, (uint64_t)state + 1);
    ret = (t->behaviour & B_RETURN_TRUE) != 0;
    cb_leave(t);
    return ret;
}

static void submit_cb(void *p)
{
    struct tracker *t = (struct tracker *)p;
    cb_enter(t);
    callback_actions(t, 17);
    cb_leave(t);
}

/* ---- workers ------------------------------------------------------------ */

struct worker {
    int index;
    long iterations;
    pthread_t thread;
};

struct ring_entry {
    int di;
    int kind;
    uint64_t id;
};

static void *worker_main(void *arg)
{
    struct worker *w = (struct worker *)arg;
    uint64_t s = UINT64_C(0x9E3779B97F4A7C15) * (uint64_t)(w->index + 1);
    struct ring_entry ring[RING];
    int ring_n = 0;
    long i;
    memset(ring, 0, sizeof ring);
    for (i = 0; i < w->iterations; i++) {
        int di = (int)rnd(&s, N_DISPATCHERS);
        unsigned op = rnd(&s, 100);
        int32_t rc;
        if (op < 22) { /* add a watch */
            int32_t kind = (int32_t)rnd(&s, 4);
            const char *path = watch_paths[rnd(&s, ARRAY_LEN(watch_paths))];
            int beh = (int)rnd(&s, 32) & ~B_RETURN_TRUE;
            if (rnd(&s, 50) == 0) {
                /* refused registrations: the library must not free them */
                rc = register_watch_impl(di, rnd(&s, 2) ? "not/absolute" : "/a/", kind, beh, NULL,
                                         1);
                if (rc != ZK_ERR_INVALID_PATH) {
                    ADD(&unexpected_rc, 1);
                }
                rc = register_watch_impl(di, path, 4 + (int32_t)rnd(&s, 100), beh, NULL, 1);
                if (rc != ZK_ERR_INVALID_WATCH_KIND) {
                    ADD(&unexpected_rc, 1);
                }
                continue;
            }
            rc = register_watch(di, path, kind, beh, NULL);
            if (rc != ZK_OK && rc != -1) {
                ADD(&unexpected_rc, 1);
            }
        } else if (op < 30) { /* remove a watch or listener we registered */
            if (ring_n > 0) {
                struct ring_entry *e = &ring[rnd(&s, (unsigned)(ring_n < RING ? ring_n : RING))];
                if (e->id != 0) {
                    rc = e->kind == T_WATCH ? zk_watch_remove(disp[e->di], e->id)
                                            : zk_listener_remove(disp[e->di], e->id);
                    if (rc != ZK_OK && rc != ZK_ERR_NOT_FOUND) {
                        ADD(&unexpected_rc, 1);
                    }
                    e->id = 0;
                }
            }
        } else if (op < 36 || op < 40) { /* add a listener or a watch, remember it */
            uint64_t id = 0;
            int kind = op < 36 ? T_LISTENER : T_WATCH;
            rc = kind == T_LISTENER
                     ? register_listener(di, (int)rnd(&s, 32), &id)
                     : register_watch(di, watch_paths[rnd(&s, ARRAY_LEN(watch_paths))],
                                      (int32_t)rnd(&s, 4), (int)rnd(&s, 8) & B_SUBMIT_MORE, &id);
            if (rc == ZK_OK) {
                ring[ring_n % RING].di = di;
                ring[ring_n % RING].kind = kind;
                ring[ring_n % RING].id = id;
                ring_n++;
            } else if (rc != -1) {
                ADD(&unexpected_rc, 1);
            }
        } else if (op < 70) { /* feed a node event */
            do_event(di, event_types[rnd(&s, ARRAY_LEN(event_types))],
                     event_paths[rnd(&s, ARRAY_LEN(event_paths))], (int64_t)i);
        } else if (op < 78) { /* a session change */
            rc = zk_dispatcher_session(disp[di], keeper_states[rnd(&s, ARRAY_LEN(keeper_states))]);
            if (rc == ZK_OK) {
                ADD(&ok_sessions[di], 1);
            } else {
                ADD(&unexpected_rc, 1);
            }
        } else if (op < 97) { /* submit work */
            do_submit(di, (int)rnd(&s, 32) & ~B_RETURN_TRUE, 0);
        } else if (op < 99) { /* flush from a non-dispatch thread */
            rc = zk_dispatcher_flush(disp[di]);
            if (rc != ZK_OK) {
                ADD(&unexpected_rc, 1);
            }
        } else { /* a consistent stats snapshot */
            zk_dispatcher_stats st;
            rc = zk_dispatcher_stats_get(disp[di], &st);
            if (rc != ZK_OK ||
                st.events_fed != st.events_matched + st.events_unmatched + st.events_ignored) {
                ADD(&stats_identity_failures, 1);
            }
        }
    }
    return NULL;
}

/* ---- main --------------------------------------------------------------- */

static double scale_from(int argc, char **argv)
{
    const char *s = argc > 1 ? argv[1] : getenv("ZK_STRESS_SCALE");
    double v = s != NULL ? atof(s) : 1.0;
    return v > 0 ? v : 1.0;
}

/* Whether the dispatcher is quiet: across a flush nothing new was fed or
   submitted, and nothing is queued or unrun. A callback can only run after a
   flush returns if its job was queued after the flush was, which the counters
   show; checking once, without the flush, would race with a callback that
   has just been counted and is about to submit more. */
static int drained(zk_dispatcher *d)
{
    zk_dispatcher_stats before, after;
    if (zk_dispatcher_stats_get(d, &before) != ZK_OK || zk_dispatcher_flush(d) != ZK_OK ||
        zk_dispatcher_stats_get(d, &after) != ZK_OK) {
        return 0;
    }
    return after.submitted == before.submitted && after.events_fed == before.events_fed &&
           after.sessions_fed == before.sessions_fed && after.queued == 0 &&
           after.submit_calls == after.submitted;
}

int main(int argc, char **argv)
{
    struct worker workers[N_WORKERS];
    double scale = scale_from(argc, argv);
    long iterations = (long)(BASE_ITERATIONS * scale);
    int i, di;
    long k;
    zk_dispatcher_stats st[N_DISPATCHERS];
    unsigned long watch_calls[N_DISPATCHERS], listener_calls[N_DISPATCHERS],
        submit_calls[N_DISPATCHERS], live_watches[N_DISPATCHERS], live_listeners[N_DISPATCHERS];
    unsigned long registered = 0, refused_freed = 0, not_freed = 0, freed_twice = 0;
    struct timespec t0, t1;

    if (iterations < 100) {
        iterations = 100;
    }
    tracker_cap = 3L * N_WORKERS * iterations + 4096;
    trackers = (struct tracker **)calloc((size_t)tracker_cap, sizeof *trackers);
    if (trackers == NULL) {
        fprintf(stderr, "out of memory\n");
        return 1;
    }
    clock_gettime(CLOCK_MONOTONIC, &t0);

    disp[0] = zk_dispatcher_new();
    CHECK(disp[0] != NULL);
    CHECK_EQ_INT(zk_dispatcher_new_with(ZK_DISPATCHER_CURATOR_STATES | ZK_DISPATCHER_KEEP_WATCHES,
                                        8, &disp[1]),
                 ZK_OK);
    CHECK_EQ_INT(zk_dispatcher_new_with(0, 0, &disp[2]), ZK_OK);
    CHECK_EQ_INT(zk_dispatcher_set_chroot(disp[2], "/app"), ZK_OK);
    if (disp[0] == NULL || disp[1] == NULL || disp[2] == NULL) {
        return check_summary("test_stress");
    }

    for (i = 0; i < N_WORKERS; i++) {
        workers[i].index = i;
        workers[i].iterations = iterations;
        CHECK_EQ_INT(pthread_create(&workers[i].thread, NULL, worker_main, &workers[i]), 0);
    }
    for (i = 0; i < N_WORKERS; i++) {
        pthread_join(workers[i].thread, NULL);
    }

    /* Drain: callbacks may still be submitting (bounded chains). Two flushes
       in a row also let the dispatch thread retire fired one-shots. */
    for (di = 0; di < N_DISPATCHERS; di++) {
        int rounds = 0, quiet = 0;
        do {
            quiet = drained(disp[di]);
            rounds++;
        } while (!quiet && rounds < 1000);
        CHECK(quiet);
        CHECK_EQ_INT(zk_dispatcher_flush(disp[di]), ZK_OK);
        CHECK_EQ_INT(zk_dispatcher_flush(disp[di]), ZK_OK);
    }

    /* Exact accounting against what we observed. */
    memset(watch_calls, 0, sizeof watch_calls);
    memset(listener_calls, 0, sizeof listener_calls);
    memset(submit_calls, 0, sizeof submit_calls);
    memset(live_watches, 0, sizeof live_watches);
    memset(live_listeners, 0, sizeof live_listeners);
    for (k = 0; k < trackers_used(); k++) {
        struct tracker *t = trackers[k];
        if (t == NULL) {
            continue;
        }
        if (t->kind == T_WATCH) {
            watch_calls[t->di] += (unsigned long)t->calls;
            /* removed ones are freed once a later flush returns; fired
               one-shots at some point after firing */
            if (t->registered && t->frees == 0 && !t->dropped) {
                live_watches[t->di]++;
            }
        } else if (t->kind == T_LISTENER) {
            listener_calls[t->di] += (unsigned long)t->calls;
            if (t->registered && t->frees == 0) {
                live_listeners[t->di]++;
            }
        } else {
            submit_calls[t->di] += (unsigned long)t->calls;
        }
    }
    for (di = 0; di < N_DISPATCHERS; di++) {
        char ctx[32];
        snprintf(ctx, sizeof ctx, "dispatcher %d", di);
        check_set_context(ctx);
        CHECK_EQ_INT(zk_dispatcher_stats_get(disp[di], &st[di]), ZK_OK);
        CHECK_EQ_UINT(st[di].events_fed, ok_events[di]);
        CHECK_EQ_UINT(st[di].events_fed,
                      st[di].events_matched + st[di].events_unmatched + st[di].events_ignored);
        CHECK_EQ_UINT(st[di].sessions_fed, ok_sessions[di]);
        CHECK_EQ_UINT(st[di].submitted, ok_submits[di]);
        CHECK_EQ_UINT(st[di].submit_calls, st[di].submitted);
        CHECK_EQ_UINT(st[di].submit_calls, submit_calls[di]);
        CHECK_EQ_UINT(st[di].watch_calls, watch_calls[di]);
        CHECK_EQ_UINT(st[di].listener_calls, listener_calls[di]);
        CHECK_EQ_UINT(st[di].refused_full, full_refusals[di]);
        CHECK_EQ_UINT(st[di].refused_closed, 0);
        CHECK_EQ_UINT(st[di].callback_panics, 0);
        CHECK_EQ_UINT(st[di].queued, 0);
        CHECK_EQ_UINT(st[di].watches, live_watches[di]);
        CHECK_EQ_UINT(st[di].listeners, live_listeners[di]);
        CHECK_EQ_UINT(st[di].last_seq, st[di].events_fed + st[di].sessions_fed + st[di].submitted);
        if (di != 1) {
            CHECK_EQ_UINT(st[di].refused_full, 0); /* unbounded */
        }
    }
    check_set_context(NULL);

    for (di = 0; di < N_DISPATCHERS; di++) {
        zk_dispatcher_free(disp[di]);
    }

    /* Every successful registration freed exactly once; refused ones never. */
    for (k = 0; k < trackers_used(); k++) {
        struct tracker *t = trackers[k];
        if (t == NULL) {
            continue;
        }
        if (t->registered) {
            registered++;
            if (t->frees == 0) {
                not_freed++;
            } else if (t->frees > 1) {
                freed_twice++;
            }
        } else if (t->frees != 0) {
            refused_freed++;
        }
    }
    CHECK_EQ_UINT(not_freed, 0);
    CHECK_EQ_UINT(freed_twice, 0);
    CHECK_EQ_UINT(refused_freed, 0);
    CHECK_EQ_UINT(total_frees, registered);
    CHECK_EQ_UINT(registered, ok_watch_adds + ok_listener_adds + ok_submits[0] + ok_submits[1] +
                                  ok_submits[2]);
    CHECK_EQ_UINT(double_free, 0);
    CHECK_EQ_UINT(call_after_free, 0);
    CHECK_EQ_UINT(free_in_cb, 0);
    CHECK_EQ_UINT(bad_magic, 0);
    CHECK_EQ_UINT(bad_events, 0);
    CHECK_EQ_UINT(bad_states, 0);
    CHECK_EQ_UINT(unexpected_rc, 0);
    CHECK_EQ_UINT(seq_regressions, 0);
    CHECK_EQ_UINT(zero_seq, 0);
    CHECK_EQ_UINT(stats_identity_failures, 0);
    /* the run did exercise what it claims to (and never ran out of trackers) */
    CHECK(LOAD(&tracker_count) < tracker_cap);
    CHECK(st[0].watch_calls > 0 && st[0].listener_calls > 0 && st[0].submit_calls > 0);
    CHECK(st[1].refused_full > 0 || iterations < 2000);
    CHECK(st[2].events_matched > 0);

    clock_gettime(CLOCK_MONOTONIC, &t1);
    printf("test_stress: scale %.3g, %d workers x %ld iterations, %ld user_data, %lu registered, "
           "%.2f s\n",
           scale, N_WORKERS, iterations, trackers_used(), registered,
           (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
    for (di = 0; di < N_DISPATCHERS; di++) {
        printf("  dispatcher %d: events %llu (matched %llu), sessions %llu, submitted %llu, "
               "watch calls %llu, listener calls %llu, refused full %llu\n",
               di, (unsigned long long)st[di].events_fed, (unsigned long long)st[di].events_matched,
               (unsigned long long)st[di].sessions_fed, (unsigned long long)st[di].submitted,
               (unsigned long long)st[di].watch_calls, (unsigned long long)st[di].listener_calls,
               (unsigned long long)st[di].refused_full);
    }

    for (k = 0; k < trackers_used(); k++) {
        free(trackers[k]);
    }
    free(trackers);
    return check_summary("test_stress");
}
