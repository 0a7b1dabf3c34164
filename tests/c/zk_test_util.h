/*
 * zk_test_util.h: shared helpers for the dispatcher tests (test_dispatch.c,
 * test_bugs.c): a callback log, user-data trackers with free counting and
 * scripted re-entrant actions, and timed waits. Header-only; include it from
 * exactly one translation unit per program. Needs POSIX threads.
 */
#ifndef ZK_TEST_UTIL_H
#define ZK_TEST_UTIL_H

#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "check.h"
#include "zk_states.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* ------------------------------------------------------------------------ */
/* Atomics (GCC builtins: this code is C99)                                  */
/* ------------------------------------------------------------------------ */

#define ATOMIC_LOAD(p) __atomic_load_n((p), __ATOMIC_SEQ_CST)
#define ATOMIC_STORE(p, v) __atomic_store_n((p), (v), __ATOMIC_SEQ_CST)
#define ATOMIC_INC(p) __atomic_add_fetch((p), 1, __ATOMIC_SEQ_CST)

/* Timeout for every wait on the dispatch thread (generous for valgrind). */
#ifndef WAIT_TIMEOUT_MS
#define WAIT_TIMEOUT_MS 20000
#endif
/* Timeout for things that should already have happened (kept short so that a
   failing check does not make the suite slow). */
#ifndef SHORT_WAIT_MS
#define SHORT_WAIT_MS 3000
#endif

static inline void sleep_ms(long ms)
{
    struct timespec ts;
    ts.tv_sec = ms / 1000;
    ts.tv_nsec = (ms % 1000) * 1000000L;
    nanosleep(&ts, NULL);
}

static inline long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits until *p == want (1 on success, 0 on timeout). */
static inline int wait_int_eq(const int *p, int want, long timeout_ms)
{
    long long deadline = now_ms() + timeout_ms;
    while (ATOMIC_LOAD(p) != want) {
        if (now_ms() > deadline) {
            return 0;
        }
        sleep_ms(1);
    }
    return 1;
}

/* ------------------------------------------------------------------------ */
/* The callback log                                                          */
/* ------------------------------------------------------------------------ */

enum rec_kind { REC_WATCH = 1, REC_LISTENER = 2, REC_SUBMIT = 3 };

struct rec {
    int kind;
    int tag;
    int32_t type;  /* watch: event type */
    int32_t state; /* watch: event state; listener: kazoo state */
    int has_path;
    char path[128];
    size_t path_len;
    int nul_terminated; /* path[path_len] == '\0' */
    int64_t zxid;
    uint64_t seq; /* zk_dispatch_current_seq() inside the callback */
    pthread_t thread;
};

#define LOG_CAP 8192
static struct rec log_recs[LOG_CAP];
static int log_len = 0;
static int log_overflow = 0;
static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;

static inline void log_reset(void)
{
    pthread_mutex_lock(&log_mu);
    log_len = 0;
    log_overflow = 0;
    pthread_mutex_unlock(&log_mu);
}

static inline void log_add(const struct rec *r)
{
    pthread_mutex_lock(&log_mu);
    if (log_len < LOG_CAP) {
        log_recs[log_len++] = *r;
    } else {
        log_overflow = 1;
    }
    pthread_mutex_unlock(&log_mu);
}

static inline int log_count(void)
{
    int n;
    pthread_mutex_lock(&log_mu);
    n = log_len;
    pthread_mutex_unlock(&log_mu);
    return n;
}

static inline struct rec log_at(int i)
{
    struct rec r;
    pthread_mutex_lock(&log_mu);
    r = log_recs[i];
    pthread_mutex_unlock(&log_mu);
    return r;
}

static inline void log_dump(const char *why)
{
    int i, n = log_count();
    fprintf(stderr, "  log (%s), %d entries:\n", why, n);
    for (i = 0; i < n; i++) {
        struct rec r = log_at(i);
        fprintf(stderr, "    [%d] kind=%d tag=%d type=%d state=%d path=%s seq=%llu\n", i, r.kind,
                r.tag, (int)r.type, (int)r.state, r.has_path ? r.path : "(null)",
                (unsigned long long)r.seq);
    }
}

/* The log's tags are exactly `tags`, in order. */
#define EXPECT_TAGS(...)                                                                   \
    do {                                                                                   \
        static const int expect_tags_[] = {__VA_ARGS__};                                   \
        expect_tags_impl(expect_tags_, ARRAY_LEN(expect_tags_), __FILE__, __LINE__);      \
    } while (0)
#define EXPECT_NO_CALLS() expect_tags_impl(NULL, 0, __FILE__, __LINE__)

static inline void expect_tags_impl(const int *tags, size_t n, const char *file, int line)
{
    int ok = log_count() == (int)n && !log_overflow;
    size_t i;
    for (i = 0; ok && i < n; i++) {
        if (log_at((int)i).tag != tags[i]) {
            ok = 0;
        }
    }
    if (check_bool_(ok, file, line, "callback log matches the expected tags")) {
        return;
    }
    fprintf(stderr, "  expected:");
    for (i = 0; i < n; i++) {
        fprintf(stderr, " %d", tags[i]);
    }
    fprintf(stderr, "\n");
    log_dump("actual");
}

/* ------------------------------------------------------------------------ */
/* User data with scripted actions                                           */
/* ------------------------------------------------------------------------ */

enum {
    ACT_REMOVE_SELF_WATCH = 1 << 0,
    ACT_ADD_WATCH = 1 << 1,
    ACT_SUBMIT = 1 << 2,
    ACT_REMOVE_LISTENER = 1 << 3,
    ACT_ADD_LISTENER = 1 << 4,
    ACT_FLUSH = 1 << 5,
    ACT_FREE_DISPATCHER = 1 << 6,
    ACT_BLOCK = 1 << 7,
    ACT_FEED_EVENT = 1 << 8,
    ACT_FEED_SESSION = 1 << 9,
    ACT_REMOVE_WATCH = 1 << 10,
    ACT_RECORD_FREES = 1 << 11, /* snapshot other->frees into observed_frees */
    ACT_QUERY = 1 << 12,        /* zk_dispatcher_state() and _stats_get() */
    ACT_ONCE = 1 << 30          /* clear the actions after the first call */
};

struct ud {
    int tag;
    int calls;         /* atomic */
    int frees;         /* atomic */
    int in_callback;   /* atomic */
    int freed_in_callback;
    int free_thread_set;
    pthread_t free_thread;
    zk_dispatcher *d;
    uint64_t id;       /* own watch/listener id */
    int actions;
    int listener_ret;  /* listener return value */
    /* parameters and results of actions */
    struct ud *child;  /* user data given to an added watch/listener/submission */
    const char *add_path;
    int32_t add_kind;
    int32_t rc_add;
    uint64_t added_id;
    uint64_t other_id; /* for ACT_REMOVE_LISTENER / ACT_REMOVE_WATCH */
    int32_t rc_remove;
    int32_t rc_remove_self;
    int32_t rc_flush;
    int32_t rc_submit;
    int32_t rc_feed;
    int32_t rc_after_free_submit;
    int32_t rc_after_free_watch;
    int32_t rc_after_free_event;
    struct ud *after_free_ud; /* offered to submit/watch_add after the free */
    int32_t feed_type;
    const char *feed_path;
    int32_t feed_state;
    int *block_started;       /* ACT_BLOCK: set to 1, then wait for *block_release */
    int *block_release;
    int observed_frees;       /* ACT_RECORD_FREES */
    int32_t rc_state, rc_stats; /* ACT_QUERY */
    int32_t queried_keeper;
    uint64_t queried_last_seq;
    struct ud *observe;
    pthread_t call_thread;
    uint64_t call_seq;
};

#define UD_POOL 4096
static struct ud ud_pool[UD_POOL];
static int ud_used = 0;

static inline struct ud *ud_new(int tag)
{
    struct ud *u;
    if (ud_used >= UD_POOL) {
        fprintf(stderr, "ud pool exhausted\n");
        abort();
    }
    u = &ud_pool[ud_used++];
    memset(u, 0, sizeof *u);
    u->tag = tag;
    u->rc_add = u->rc_remove = u->rc_remove_self = u->rc_flush = -1;
    u->rc_submit = u->rc_feed = -1;
    u->rc_after_free_submit = u->rc_after_free_watch = u->rc_after_free_event = -1;
    return u;
}

static inline void ud_free(void *p)
{
    struct ud *u = (struct ud *)p;
    if (ATOMIC_LOAD(&u->in_callback)) {
        u->freed_in_callback = 1;
    }
    u->free_thread = pthread_self();
    ATOMIC_STORE(&u->free_thread_set, 1);
    ATOMIC_INC(&u->frees);
}

static inline void watch_cb(const zk_watched_event *ev, void *p);
static inline bool listener_cb(zk_kazoo_state state, void *p);
static inline void submit_cb(void *p);

static inline void do_actions(struct ud *u)
{
    int a = u->actions;
    zk_dispatcher *d = u->d;
    if (a & ACT_ONCE) {
        u->actions = 0;
    }
    if (a & ACT_BLOCK) {
        ATOMIC_STORE(u->block_started, 1);
        if (!wait_int_eq(u->block_release, 1, WAIT_TIMEOUT_MS)) {
            CHECK(!"blocked callback was never released");
        }
    }
    if (a & ACT_QUERY) {
        zk_kazoo_state k;
        zk_keeper_state ks = 0;
        zk_dispatcher_stats st;
        u->rc_state = zk_dispatcher_state(d, &k, &ks);
        u->rc_stats = zk_dispatcher_stats_get(d, &st);
        u->queried_keeper = ks;
        u->queried_last_seq = st.last_seq;
    }
    if (a & ACT_RECORD_FREES) {
        u->observed_frees = ATOMIC_LOAD(&u->observe->frees);
    }
    if (a & ACT_REMOVE_SELF_WATCH) {
        u->rc_remove_self = zk_watch_remove(d, u->id);
    }
    if (a & ACT_REMOVE_WATCH) {
        u->rc_remove = zk_watch_remove(d, u->other_id);
    }
    if (a & ACT_ADD_WATCH) {
        u->child->d = d;
        u->rc_add = zk_watch_add(d, u->add_path, u->add_kind, watch_cb, u->child, ud_free,
                                 &u->added_id);
        if (u->rc_add == ZK_OK) {
            u->child->id = u->added_id;
        }
    }
    if (a & ACT_ADD_LISTENER) {
        u->child->d = d;
        u->rc_add = zk_listener_add(d, listener_cb, u->child, ud_free, &u->added_id);
        if (u->rc_add == ZK_OK) {
            u->child->id = u->added_id;
        }
    }
    if (a & ACT_REMOVE_LISTENER) {
        u->rc_remove = zk_listener_remove(d, u->other_id);
    }
    if (a & ACT_SUBMIT) {
        u->child->d = d;
        u->rc_submit = zk_dispatcher_submit(d, submit_cb, u->child, ud_free);
    }
    if (a & ACT_FEED_EVENT) {
        u->rc_feed = zk_dispatcher_event(d, u->feed_type, u->feed_path, 4242);
    }
    if (a & ACT_FEED_SESSION) {
        u->rc_feed = zk_dispatcher_session(d, u->feed_state);
    }
    if (a & ACT_FLUSH) {
        u->rc_flush = zk_dispatcher_flush(d);
    }
    if (a & ACT_FREE_DISPATCHER) {
        uint64_t id = 0;
        zk_dispatcher_free(d);
        /* Queued callbacks may still use the dispatcher; new work is refused. */
        u->rc_after_free_submit = zk_dispatcher_submit(d, submit_cb, u->after_free_ud, ud_free);
        u->rc_after_free_watch = zk_watch_add(d, "/after/free", ZK_WATCH_PERSISTENT, watch_cb,
                                              u->after_free_ud, ud_free, &id);
        u->rc_after_free_event = zk_dispatcher_event(d, ZK_EVENT_TYPE_CHANGED, "/w", 1);
    }
}

static inline void enter(struct ud *u)
{
    ATOMIC_STORE(&u->in_callback, 1);
    ATOMIC_INC(&u->calls);
    u->call_thread = pthread_self();
    u->call_seq = zk_dispatch_current_seq();
}

static inline void leave(struct ud *u) { ATOMIC_STORE(&u->in_callback, 0); }

static inline void watch_cb(const zk_watched_event *ev, void *p)
{
    struct ud *u = (struct ud *)p;
    struct rec r;
    enter(u);
    memset(&r, 0, sizeof r);
    r.kind = REC_WATCH;
    r.tag = u->tag;
    r.type = ev->type;
    r.state = ev->state;
    r.has_path = ev->path != NULL;
    r.path_len = ev->path_len;
    if (ev->path != NULL) {
        size_t n = ev->path_len < sizeof r.path - 1 ? ev->path_len : sizeof r.path - 1;
        memcpy(r.path, ev->path, n);
        r.path[n] = '\0';
        r.nul_terminated = ev->path[ev->path_len] == '\0' && strlen(ev->path) == ev->path_len;
    }
    r.zxid = ev->zxid;
    r.seq = zk_dispatch_current_seq();
    r.thread = pthread_self();
    log_add(&r);
    do_actions(u);
    leave(u);
}

static inline bool listener_cb(zk_kazoo_state state, void *p)
{
    struct ud *u = (struct ud *)p;
    struct rec r;
    bool ret;
    enter(u);
    memset(&r, 0, sizeof r);
    r.kind = REC_LISTENER;
    r.tag = u->tag;
    r.state = state;
    r.seq = zk_dispatch_current_seq();
    r.thread = pthread_self();
    log_add(&r);
    do_actions(u);
    ret = u->listener_ret != 0;
    leave(u);
    return ret;
}

static inline void submit_cb(void *p)
{
    struct ud *u = (struct ud *)p;
    struct rec r;
    enter(u);
    memset(&r, 0, sizeof r);
    r.kind = REC_SUBMIT;
    r.tag = u->tag;
    r.seq = zk_dispatch_current_seq();
    r.thread = pthread_self();
    log_add(&r);
    do_actions(u);
    leave(u);
}

/* ------------------------------------------------------------------------ */
/* Registration helpers (they CHECK success)                                 */
/* ------------------------------------------------------------------------ */

static inline uint64_t add_watch(zk_dispatcher *d, const char *path, int32_t kind, struct ud *u)
{
    uint64_t id = 0;
    u->d = d;
    CHECK_EQ_INT(zk_watch_add(d, path, kind, watch_cb, u, ud_free, &id), ZK_OK);
    u->id = id;
    return id;
}

static inline uint64_t add_listener(zk_dispatcher *d, struct ud *u)
{
    uint64_t id = 0;
    u->d = d;
    CHECK_EQ_INT(zk_listener_add(d, listener_cb, u, ud_free, &id), ZK_OK);
    u->id = id;
    return id;
}

static inline void submit(zk_dispatcher *d, struct ud *u)
{
    u->d = d;
    CHECK_EQ_INT(zk_dispatcher_submit(d, submit_cb, u, ud_free), ZK_OK);
}

static inline void flush(zk_dispatcher *d) { CHECK_EQ_INT(zk_dispatcher_flush(d), ZK_OK); }

static inline void feed(zk_dispatcher *d, int32_t type, const char *path)
{
    CHECK_EQ_INT(zk_dispatcher_event(d, type, path, ZK_ZXID_UNKNOWN), ZK_OK);
}

static inline void session(zk_dispatcher *d, int32_t state)
{
    CHECK_EQ_INT(zk_dispatcher_session(d, state), ZK_OK);
}

static inline zk_dispatcher_stats stats_of(const zk_dispatcher *d)
{
    zk_dispatcher_stats st;
    memset(&st, 0, sizeof st);
    CHECK_EQ_INT(zk_dispatcher_stats_get(d, &st), ZK_OK);
    return st;
}

/* The free count of u, after waiting (briefly) for it to reach n: a fired
   one-shot's free_fn runs "after it has fired", with no promised moment. */
static inline int wait_frees(struct ud *u, int n)
{
    wait_int_eq(&u->frees, n, SHORT_WAIT_MS);
    return ATOMIC_LOAD(&u->frees);
}

/* Blocks the dispatch thread in a submitted callback until unblock() is called. */
struct blocker {
    int started;
    int release;
    struct ud *u;
};

static inline void block_dispatch(zk_dispatcher *d, struct blocker *b, int tag)
{
    b->started = 0;
    b->release = 0;
    b->u = ud_new(tag);
    b->u->actions = ACT_BLOCK;
    b->u->block_started = &b->started;
    b->u->block_release = &b->release;
    submit(d, b->u);
    CHECK(wait_int_eq(&b->started, 1, WAIT_TIMEOUT_MS));
}

static inline void unblock(struct blocker *b) { ATOMIC_STORE(&b->release, 1); }

#endif /* ZK_TEST_UTIL_H */
