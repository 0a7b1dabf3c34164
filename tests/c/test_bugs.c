/*
 * test_bugs.c: regression tests: minimal reproductions of library bugs and
 * doc/behaviour mismatches found while writing the C suite, all fixed. Each
 * case asserts what include/zk_states.h documents. Run one
 * case with `test_bugs <case>` (the pytest driver runs each case as its own
 * test), `test_bugs --list` to list them, or all with no argument.
 *
 * Status, checked by building older commits (git archive) against this file:
 *   free_leaks_registered         present adebc80..e5cf6f6, fixed in 16d7b86
 *   listener_free_timing          present adebc80..e5cf6f6, fixed in 16d7b86
 *   free_under_lock_listener      present adebc80..e5cf6f6, fixed in 16d7b86
 *   free_under_lock_watch         present adebc80..16d7b86, fixed by d7d4984
 *   listener_free_timing_pending  present up to 6b5362a, fixed when the dispatch
 *                                 thread got its own listener references
 *   listener_remove_free_thread   present up to 6b5362a, fixed the same way
 *
 * Built with -std=c99 -Wall -Wextra -Werror -pedantic -pthread.
 */
#define _POSIX_C_SOURCE 200809L

#include "zk_test_util.h"

/*
 * LIBRARY BUG: zk_dispatcher_free() never frees the dispatcher, so the
 * free_fn of every still-registered watch and listener never runs (and the
 * dispatcher leaks). Header, zk_dispatcher_free(): "... then frees every
 * registered watch's and listener's user_data (their free functions run on
 * the calling thread)"; zk_watch_add(): free_fn runs exactly once "... or at
 * zk_dispatcher_free()".
 */
static void bug_free_leaks_registered(void)
{
    zk_dispatcher *d = zk_dispatcher_new();
    struct ud *W = ud_new(1), *L = ud_new(2);
    add_watch(d, "/a", ZK_WATCH_PERSISTENT, W);
    add_listener(d, L);
    zk_dispatcher_free(d);
    CHECK_EQ_INT(W->frees, 1);
    CHECK_EQ_INT(L->frees, 1);
}

/*
 * DOC MISMATCH: zk_listener_add(): "a listener returning true is removed (its
 * free_fn runs right after it returns)". It runs only when the dispatch
 * thread finishes its current batch, after later callbacks have run.
 */
static void bug_listener_free_timing(void)
{
    zk_dispatcher *d = zk_dispatcher_new();
    struct blocker b;
    struct ud *L = ud_new(1), *S = ud_new(2);
    add_listener(d, L);
    L->listener_ret = 1;
    S->actions = ACT_RECORD_FREES;
    S->observe = L;
    S->observed_frees = -1;
    block_dispatch(d, &b, 3);
    session(d, ZK_KEEPER_STATE_CONNECTED); /* L returns true ... */
    submit(d, S);                          /* ... and S runs after it */
    unblock(&b);
    flush(d);
    CHECK_EQ_INT(L->calls, 1);
    CHECK_EQ_INT(S->calls, 1);
    CHECK_EQ_INT(S->observed_frees, 1); /* L's free_fn ran right after L returned */
    zk_dispatcher_free(d);
}

/*
 * DOC MISMATCH (variant of the above): when a later state change was fed
 * before the listener returned true, that queued notification keeps the
 * listener alive, so its free_fn runs only when that notification is
 * processed, after callbacks queued in between.
 */
static void bug_listener_free_timing_pending(void)
{
    zk_dispatcher *d = zk_dispatcher_new();
    struct blocker b;
    struct ud *L = ud_new(1), *S = ud_new(2);
    add_listener(d, L);
    L->listener_ret = 1;
    S->actions = ACT_RECORD_FREES;
    S->observe = L;
    S->observed_frees = -1;
    block_dispatch(d, &b, 3);
    session(d, ZK_KEEPER_STATE_CONNECTED);  /* L is told, returns true ... */
    submit(d, S);                           /* ... S runs next ... */
    session(d, ZK_KEEPER_STATE_CONNECTING); /* ... this change was fed while L was live */
    unblock(&b);
    flush(d);
    CHECK_EQ_INT(L->calls, 1);
    CHECK_EQ_INT(S->calls, 1);
    CHECK_EQ_INT(S->observed_frees, 1); /* L's free_fn ran right after L returned */
    CHECK_EQ_INT(L->frees, 1);
    zk_dispatcher_free(d);
}

/*
 * DOC MISMATCH: zk_listener_remove() has "the same guarantees as
 * zk_watch_remove()", whose free_fn "runs on the dispatch thread once the
 * events queued before the removal have been passed". A listener removed
 * from another thread is freed synchronously on the calling thread instead
 * (when no queued notification still holds it), i.e. inside
 * zk_listener_remove(), so a caller holding a lock its free_fn takes
 * deadlocks. (zk_watch_remove() does free on the dispatch thread.)
 */
static void bug_listener_remove_free_thread(void)
{
    zk_dispatcher *d = zk_dispatcher_new();
    struct ud *L = ud_new(1), *W = ud_new(2), *Probe = ud_new(3);
    add_listener(d, L);
    add_watch(d, "/w", ZK_WATCH_PERSISTENT, W);
    submit(d, Probe); /* learn the dispatch thread */
    flush(d);
    CHECK_EQ_INT(zk_watch_remove(d, W->id), ZK_OK);
    CHECK_EQ_INT(zk_listener_remove(d, L->id), ZK_OK);
    flush(d);
    CHECK_EQ_INT(W->frees, 1);
    CHECK_EQ_INT(L->frees, 1);
    CHECK(W->free_thread_set && pthread_equal(W->free_thread, Probe->call_thread));
    CHECK(L->free_thread_set && pthread_equal(L->free_thread, Probe->call_thread));
    zk_dispatcher_free(d);
}

/* A free function that checks, from a helper thread, whether the
   dispatcher's lock is free while it runs. */
struct lock_probe {
    zk_dispatcher *d;
    int done;
    int lock_was_held; /* -1: not run */
    pthread_t thread;
    int started;
};
static struct lock_probe probe;

static void *probe_main(void *arg)
{
    zk_dispatcher_stats st;
    zk_kazoo_state k;
    zk_keeper_state s;
    (void)arg;
    /* Each blocks while the dispatcher's (registry) lock is held. */
    zk_dispatcher_stats_get(probe.d, &st);
    zk_dispatcher_state(probe.d, &k, &s);
    zk_watch_remove(probe.d, UINT64_MAX);
    zk_listener_remove(probe.d, UINT64_MAX);
    ATOMIC_STORE(&probe.done, 1);
    return NULL;
}

static void probing_free(void *p)
{
    probe.done = 0;
    if (pthread_create(&probe.thread, NULL, probe_main, NULL) == 0) {
        probe.started = 1;
        probe.lock_was_held = !wait_int_eq(&probe.done, 1, 2000);
    }
    ud_free(p);
}

/*
 * LIBRARY BUG: zk_watch_remove() on a one-shot that has fired (its callback
 * returned, but the dispatch thread has not retired it yet) drops the last
 * reference while holding the dispatcher's lock, so its free_fn runs under
 * that lock: a free_fn calling any zk_ function on the dispatcher deadlocks,
 * and every other thread is blocked meanwhile. (Rust: `watch_remove` returns
 * Err(NOT_FOUND) from inside the locked block, and `watch` is dropped before
 * the guard.) zk_free_fn only forbids calling zk_dispatcher_free().
 */
static void bug_free_under_lock_watch(void)
{
    zk_dispatcher *d = zk_dispatcher_new();
    struct ud *D = ud_new(1), *C = ud_new(2);
    uint64_t id = 0;
    /* control: a free_fn run by zk_watch_remove() of a live watch runs
       outside the lock, and the probe says so */
    {
        struct ud *Ctl = ud_new(9);
        memset(&probe, 0, sizeof probe);
        probe.d = d;
        probe.lock_was_held = -1;
        CHECK_EQ_INT(zk_watch_add(d, "/ctl", ZK_WATCH_PERSISTENT, watch_cb, Ctl, probing_free, &id),
                     ZK_OK);
        CHECK_EQ_INT(zk_watch_remove(d, id), ZK_OK);
        flush(d);
        CHECK_EQ_INT(Ctl->frees, 1);
        CHECK_EQ_INT(probe.lock_was_held, 0);
        if (probe.started) {
            pthread_join(probe.thread, NULL);
        }
    }
    memset(&probe, 0, sizeof probe);
    probe.d = d;
    probe.lock_was_held = -1;
    D->d = d;
    CHECK_EQ_INT(zk_watch_add(d, "/x", ZK_WATCH_DATA, watch_cb, D, probing_free, &id), ZK_OK);
    D->id = id;
    add_watch(d, "/x", ZK_WATCH_CHILD, C);
    C->actions = ACT_REMOVE_WATCH;
    C->other_id = D->id; /* DELETED fires D, then C, which removes the fired D */
    feed(d, ZK_EVENT_TYPE_DELETED, "/x");
    flush(d);
    CHECK_EQ_INT(C->rc_remove, ZK_ERR_NOT_FOUND);
    CHECK_EQ_INT(D->frees, 1);
    CHECK_EQ_INT(probe.lock_was_held, 0);
    if (probe.started) {
        pthread_join(probe.thread, NULL);
    }
    zk_dispatcher_free(d);
}

/* LIBRARY BUG: the same with zk_listener_remove() on a listener that removed
   itself by returning true. */
static void bug_free_under_lock_listener(void)
{
    zk_dispatcher *d = zk_dispatcher_new();
    struct ud *L = ud_new(1), *S = ud_new(2);
    struct blocker b;
    uint64_t id = 0;
    memset(&probe, 0, sizeof probe);
    probe.d = d;
    probe.lock_was_held = -1;
    L->d = d;
    L->listener_ret = 1;
    CHECK_EQ_INT(zk_listener_add(d, listener_cb, L, probing_free, &id), ZK_OK);
    L->id = id;
    S->actions = ACT_REMOVE_LISTENER;
    S->other_id = id;
    block_dispatch(d, &b, 3);
    session(d, ZK_KEEPER_STATE_CONNECTED);
    submit(d, S);
    unblock(&b);
    flush(d);
    CHECK_EQ_INT(S->rc_remove, ZK_ERR_NOT_FOUND);
    CHECK_EQ_INT(L->frees, 1);
    CHECK_EQ_INT(probe.lock_was_held, 0);
    if (probe.started) {
        pthread_join(probe.thread, NULL);
    }
    zk_dispatcher_free(d);
}

struct bug_case {
    const char *name;
    void (*fn)(void);
};

static const struct bug_case cases[] = {
    {"free_leaks_registered", bug_free_leaks_registered},
    {"listener_free_timing", bug_listener_free_timing},
    {"listener_free_timing_pending", bug_listener_free_timing_pending},
    {"listener_remove_free_thread", bug_listener_remove_free_thread},
    {"free_under_lock_watch", bug_free_under_lock_watch},
    {"free_under_lock_listener", bug_free_under_lock_listener},
};

int main(int argc, char **argv)
{
    size_t i;
    int ran = 0;
    if (argc > 1 && strcmp(argv[1], "--list") == 0) {
        for (i = 0; i < ARRAY_LEN(cases); i++) {
            printf("%s\n", cases[i].name);
        }
        return 0;
    }
    for (i = 0; i < ARRAY_LEN(cases); i++) {
        if (argc > 1 && strcmp(argv[1], cases[i].name) != 0) {
            continue;
        }
        printf("case %s\n", cases[i].name);
        cases[i].fn();
        ran++;
    }
    if (ran == 0) {
        fprintf(stderr, "no such case: %s\n", argc > 1 ? argv[1] : "");
        return 2;
    }
    return check_summary(argc > 1 ? argv[1] : "test_bugs");
}
