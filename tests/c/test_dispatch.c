/*
 * test_dispatch.c: the zk-states dispatcher through include/zk_states.h:
 * lifecycle, kazoo's one-shot data/child rules, ZooKeeper 3.6 persistent and
 * persistent-recursive watches, event state and fields, chroot stripping,
 * session transitions (kazoo, Curator and keep-watches modes), listener
 * removal by return value, global callback ordering with sequence numbers,
 * flush/submit rules, re-entrancy, freeing from a callback, the bounded
 * queue, user_data ownership (every free_fn exactly once, never on failure),
 * and the stats accounting identities.
 *
 * Built with -std=c99 -Wall -Wextra -Werror -pedantic -pthread.
 */
#define _POSIX_C_SOURCE 200809L

#include "zk_test_util.h"

/* ------------------------------------------------------------------------ */

static void test_lifecycle(void)
{
    zk_dispatcher *d, *d2;
    zk_kazoo_state k = 0x5A5A;
    zk_keeper_state s = 0x5A5A;
    zk_dispatcher_stats st, sentinel;

    zk_dispatcher_free(NULL); /* no-op */
    CHECK_EQ_UINT(zk_dispatch_current_seq(), 0);

    d = zk_dispatcher_new();
    CHECK(d != NULL);
    if (d == NULL) {
        return;
    }
    CHECK_EQ_INT(zk_dispatcher_state(d, &k, &s), ZK_OK);
    CHECK_EQ_INT(k, ZK_KAZOO_STATE_LOST);
    CHECK_EQ_INT(s, ZK_KEEPER_STATE_CLOSED);

    k = 0x5A5A;
    s = 0x5A5A;
    CHECK_EQ_INT(zk_dispatcher_state(NULL, &k, &s), ZK_ERR_NULL_ARGUMENT);
    CHECK_EQ_INT(zk_dispatcher_state(d, NULL, &s), ZK_ERR_NULL_ARGUMENT);
    CHECK_EQ_INT(zk_dispatcher_state(d, &k, NULL), ZK_ERR_NULL_ARGUMENT);
    CHECK_EQ_INT(k, 0x5A5A);
    CHECK_EQ_INT(s, 0x5A5A);

    memset(&st, 0xA5, sizeof st);
    CHECK_EQ_INT(zk_dispatcher_stats_get(d, &st), ZK_OK);
    CHECK_EQ_UINT(st.events_fed, 0);
    CHECK_EQ_UINT(st.events_matched, 0);
    CHECK_EQ_UINT(st.events_unmatched, 0);
    CHECK_EQ_UINT(st.events_ignored, 0);
    CHECK_EQ_UINT(st.sessions_fed, 0);
    CHECK_EQ_UINT(st.submitted, 0);
    CHECK_EQ_UINT(st.refused_full, 0);
    CHECK_EQ_UINT(st.refused_closed, 0);
    CHECK_EQ_UINT(st.watch_calls, 0);
    CHECK_EQ_UINT(st.listener_calls, 0);
    CHECK_EQ_UINT(st.submit_calls, 0);
    CHECK_EQ_UINT(st.callback_panics, 0);
    CHECK_EQ_UINT(st.queued, 0);
    CHECK_EQ_UINT(st.watches, 0);
    CHECK_EQ_UINT(st.listeners, 0);
    CHECK_EQ_UINT(st.last_seq, 0);
    memset(&sentinel, 0xA5, sizeof sentinel);
    memcpy(&st, &sentinel, sizeof st);
    CHECK_EQ_INT(zk_dispatcher_stats_get(NULL, &st), ZK_ERR_NULL_ARGUMENT);
    CHECK_MEM(&st, &sentinel, sizeof st);
    CHECK_EQ_INT(zk_dispatcher_stats_get(d, NULL), ZK_ERR_NULL_ARGUMENT);

    CHECK_EQ_INT(zk_dispatcher_flush(d), ZK_OK); /* nothing queued */
    CHECK_EQ_INT(zk_dispatcher_flush(NULL), ZK_ERR_NULL_ARGUMENT);
    zk_dispatcher_free(d);

    /* zk_dispatcher_new_with */
    d2 = (zk_dispatcher *)(uintptr_t)0x1234;
    CHECK_EQ_INT(zk_dispatcher_new_with(4, 0, &d2), ZK_ERR_INVALID_ARGUMENT);
    CHECK_EQ_INT(zk_dispatcher_new_with(0x80000000u, 0, &d2), ZK_ERR_INVALID_ARGUMENT);
    CHECK_EQ_INT(zk_dispatcher_new_with(~0u, 16, &d2), ZK_ERR_INVALID_ARGUMENT);
    CHECK(d2 == (zk_dispatcher *)(uintptr_t)0x1234);
    CHECK_EQ_INT(zk_dispatcher_new_with(0, 0, NULL), ZK_ERR_NULL_ARGUMENT);
    CHECK_EQ_INT(zk_dispatcher_new_with(ZK_DISPATCHER_ALL_OPTIONS, 0, &d2), ZK_OK);
    CHECK(d2 != NULL && d2 != (zk_dispatcher *)(uintptr_t)0x1234);
    zk_dispatcher_free(d2);
    d2 = NULL;
    CHECK_EQ_INT(zk_dispatcher_new_with(ZK_DISPATCHER_CURATOR_STATES, 5, &d2), ZK_OK);
    k = 0x5A5A;
    CHECK_EQ_INT(zk_dispatcher_state(d2, &k, &s), ZK_OK);
    CHECK_EQ_INT(k, ZK_KAZOO_STATE_LOST);
    CHECK_EQ_INT(s, ZK_KEEPER_STATE_CLOSED);
    zk_dispatcher_free(d2);

    /* zk_dispatcher_free runs every callback already queued */
    {
        struct blocker b;
        struct ud *u[10];
        int i;
        d = zk_dispatcher_new();
        block_dispatch(d, &b, 900);
        for (i = 0; i < 10; i++) {
            u[i] = ud_new(901 + i);
            submit(d, u[i]);
        }
        unblock(&b);
        zk_dispatcher_free(d);
        for (i = 0; i < 10; i++) {
            CHECK_EQ_INT(u[i]->calls, 1);
            CHECK_EQ_INT(u[i]->frees, 1);
        }
        CHECK_EQ_INT(b.u->frees, 1);
    }
    log_reset();
}

/* ------------------------------------------------------------------------ */
/* One-shot rules                                                            */
/* ------------------------------------------------------------------------ */

static void test_one_shot_rules(void)
{
    static const int32_t types[] = {ZK_EVENT_TYPE_CREATED, ZK_EVENT_TYPE_CHANGED,
                                    ZK_EVENT_TYPE_DELETED, ZK_EVENT_TYPE_CHILD};
    /* data fires / child fires */
    static const int fires[4][2] = {{1, 0}, {1, 0}, {1, 1}, {0, 1}};
    size_t i;
    char ctx[64];
    for (i = 0; i < ARRAY_LEN(types); i++) {
        zk_dispatcher *d = zk_dispatcher_new();
        struct ud *D = ud_new(1), *C = ud_new(2);
        uint64_t dz, cz;
        int n, k;
        zk_dispatcher_stats st;
        snprintf(ctx, sizeof ctx, "one-shot type %d", (int)types[i]);
        check_set_context(ctx);
        log_reset();
        dz = add_watch(d, "/a", ZK_WATCH_DATA, D);
        cz = add_watch(d, "/a", ZK_WATCH_CHILD, C);
        CHECK(dz != cz);
        CHECK_EQ_INT(zk_dispatcher_event(d, types[i], "/a", 100 + (int64_t)i), ZK_OK);
        flush(d);
        n = log_count();
        CHECK_EQ_INT(n, fires[i][0] + fires[i][1]);
        for (k = 0; k < n; k++) {
            struct rec r = log_at(k);
            CHECK_EQ_INT(r.kind, REC_WATCH);
            CHECK_EQ_INT(r.type, types[i]);
            CHECK_EQ_INT(r.state, ZK_KEEPER_STATE_CLOSED); /* a new client's state */
            CHECK(r.has_path);
            CHECK_STR(r.path, "/a");
            CHECK_EQ_UINT(r.path_len, 2);
            CHECK(r.nul_terminated);
            CHECK_EQ_INT(r.zxid, 100 + (int64_t)i);
            CHECK(r.seq == 1);
        }
        if (fires[i][0] && fires[i][1]) {
            EXPECT_TAGS(1, 2); /* data first, then child */
        }
        /* fired one-shots are freed (before flush returns) and gone */
        CHECK_EQ_INT(D->calls, fires[i][0]);
        CHECK_EQ_INT(C->calls, fires[i][1]);
        CHECK_EQ_INT(wait_frees(D, fires[i][0]), fires[i][0]);
        CHECK_EQ_INT(wait_frees(C, fires[i][1]), fires[i][1]);
        CHECK_EQ_INT(D->freed_in_callback, 0);
        CHECK_EQ_INT(C->freed_in_callback, 0);
        st = stats_of(d);
        CHECK_EQ_UINT(st.watches, 2 - fires[i][0] - fires[i][1]);
        CHECK_EQ_UINT(st.events_matched, 1);
        CHECK_EQ_UINT(st.watch_calls, (unsigned)(fires[i][0] + fires[i][1]));
        /* the same event again: a fired one-shot does not fire twice */
        log_reset();
        CHECK_EQ_INT(zk_dispatcher_event(d, types[i], "/a", 7), ZK_OK);
        flush(d);
        EXPECT_NO_CALLS();
        st = stats_of(d);
        CHECK_EQ_UINT(st.events_unmatched, 1);
        CHECK_EQ_INT(zk_watch_remove(d, dz), fires[i][0] ? ZK_ERR_NOT_FOUND : ZK_OK);
        CHECK_EQ_INT(zk_watch_remove(d, cz), fires[i][1] ? ZK_ERR_NOT_FOUND : ZK_OK);
        flush(d); /* a removed watch's free_fn has run once flush returns */
        CHECK_EQ_INT(D->frees, 1);
        CHECK_EQ_INT(C->frees, 1);
        CHECK_EQ_INT(D->calls, fires[i][0]);
        CHECK_EQ_INT(C->calls, fires[i][1]);
        zk_dispatcher_free(d);
        CHECK_EQ_INT(D->frees, 1);
        CHECK_EQ_INT(C->frees, 1);
    }
    check_set_context(NULL);

    /* Ignored types: NONE, NOT_WATCHING and the watch-removal events fire
       nothing, pop nothing, and are counted as ignored. */
    {
        static const int32_t ignored[] = {ZK_EVENT_TYPE_NONE, ZK_EVENT_TYPE_NOT_WATCHING,
                                          ZK_EVENT_TYPE_DATA_WATCH_REMOVED,
                                          ZK_EVENT_TYPE_CHILD_WATCH_REMOVED,
                                          ZK_EVENT_TYPE_PERSISTENT_WATCH_REMOVED};
        zk_dispatcher *d = zk_dispatcher_new();
        struct ud *D = ud_new(1), *C = ud_new(2), *P = ud_new(3), *R = ud_new(4);
        zk_dispatcher_stats st;
        log_reset();
        add_watch(d, "/a", ZK_WATCH_DATA, D);
        add_watch(d, "/a", ZK_WATCH_CHILD, C);
        add_watch(d, "/a", ZK_WATCH_PERSISTENT, P);
        add_watch(d, "/", ZK_WATCH_PERSISTENT_RECURSIVE, R);
        for (i = 0; i < ARRAY_LEN(ignored); i++) {
            CHECK_EQ_INT(zk_dispatcher_event(d, ignored[i], "/a", 5), ZK_OK);
        }
        flush(d);
        EXPECT_NO_CALLS();
        st = stats_of(d);
        CHECK_EQ_UINT(st.events_fed, 5);
        CHECK_EQ_UINT(st.events_ignored, 5);
        CHECK_EQ_UINT(st.events_matched, 0);
        CHECK_EQ_UINT(st.events_unmatched, 0);
        CHECK_EQ_UINT(st.watches, 4);
        CHECK_EQ_UINT(st.last_seq, 5);
        /* nothing was popped: DELETED still fires all four */
        feed(d, ZK_EVENT_TYPE_DELETED, "/a");
        flush(d);
        EXPECT_TAGS(1, 2, 3, 4);
        zk_dispatcher_free(d);
        CHECK_EQ_INT(D->frees + C->frees + P->frees + R->frees, 4);
    }
}

/* ------------------------------------------------------------------------ */
/* Persistent and persistent-recursive watches                               */
/* ------------------------------------------------------------------------ */

static void test_persistent(void)
{
    zk_dispatcher *d = zk_dispatcher_new();
    struct ud *P = ud_new(1), *R = ud_new(2), *Root = ud_new(3);
    uint64_t rid;
    zk_dispatcher_stats st;
    int i;

    add_watch(d, "/a", ZK_WATCH_PERSISTENT, P);
    rid = add_watch(d, "/a", ZK_WATCH_PERSISTENT_RECURSIVE, R);
    add_watch(d, "/", ZK_WATCH_PERSISTENT_RECURSIVE, Root);

#define STEP(type, path, ...)                                                              \
    do {                                                                                   \
        log_reset();                                                                       \
        check_set_context(#type " " path);                                                 \
        feed(d, type, path);                                                               \
        flush(d);                                                                          \
        __VA_ARGS__;                                                                       \
    } while (0)

    STEP(ZK_EVENT_TYPE_CREATED, "/a", EXPECT_TAGS(1, 2, 3));
    STEP(ZK_EVENT_TYPE_CHANGED, "/a", EXPECT_TAGS(1, 2, 3));
    STEP(ZK_EVENT_TYPE_CHILD, "/a", EXPECT_TAGS(1)); /* recursive: never on CHILD */
    STEP(ZK_EVENT_TYPE_DELETED, "/a", EXPECT_TAGS(1, 2, 3));
    STEP(ZK_EVENT_TYPE_CREATED, "/a/b", EXPECT_TAGS(2, 3));
    STEP(ZK_EVENT_TYPE_CHILD, "/a/b", EXPECT_NO_CALLS());
    STEP(ZK_EVENT_TYPE_CHANGED, "/a/b/c", EXPECT_TAGS(2, 3));
    STEP(ZK_EVENT_TYPE_DELETED, "/a/b/c/d/e", EXPECT_TAGS(2, 3));
    STEP(ZK_EVENT_TYPE_DELETED, "/ab", EXPECT_TAGS(3)); /* not a descendant of /a */
    STEP(ZK_EVENT_TYPE_CHANGED, "/", EXPECT_TAGS(3));
    STEP(ZK_EVENT_TYPE_CHILD, "/", EXPECT_NO_CALLS());
    STEP(ZK_EVENT_TYPE_CREATED, "/other", EXPECT_TAGS(3));
    check_set_context(NULL);

    /* the delivered path is the event's path, not the watch's */
    log_reset();
    feed(d, ZK_EVENT_TYPE_CHANGED, "/a/x/y");
    flush(d);
    CHECK_EQ_INT(log_count(), 2);
    for (i = 0; i < log_count(); i++) {
        CHECK_STR(log_at(i).path, "/a/x/y");
        CHECK_EQ_INT(log_at(i).type, ZK_EVENT_TYPE_CHANGED);
    }

    /* they stay registered */
    CHECK_EQ_INT(P->frees + R->frees + Root->frees, 0);
    st = stats_of(d);
    CHECK_EQ_UINT(st.watches, 3);
    CHECK_EQ_INT(P->calls, 4);

    CHECK_EQ_INT(zk_watch_remove(d, rid), ZK_OK);
    flush(d);
    CHECK_EQ_INT(R->frees, 1);
    CHECK_EQ_INT(R->freed_in_callback, 0);
    /* removed from another thread: freed on the dispatch thread */
    CHECK(R->free_thread_set && pthread_equal(R->free_thread, P->call_thread));
    STEP(ZK_EVENT_TYPE_CHANGED, "/a/b", EXPECT_TAGS(3));
    check_set_context(NULL);
    CHECK_EQ_INT(zk_watch_remove(d, rid), ZK_ERR_NOT_FOUND);
    zk_dispatcher_free(d);
    CHECK_EQ_INT(P->frees, 1);
    CHECK_EQ_INT(R->frees, 1);
    CHECK_EQ_INT(Root->frees, 1);
}

/* For one event: one-shots (data, then child), then persistent, then
   recursive from the path up to the root, each group in registration order. */
static void test_order_within_event(void)
{
    zk_dispatcher *d = zk_dispatcher_new();
    struct ud *Rroot = ud_new(90), *P1 = ud_new(30), *D1 = ud_new(10), *Ra = ud_new(60);
    struct ud *C1 = ud_new(20), *D2 = ud_new(11), *P2 = ud_new(31), *Rab = ud_new(50);
    struct ud *Ra2 = ud_new(61), *C2 = ud_new(21), *Other = ud_new(99);

    add_watch(d, "/", ZK_WATCH_PERSISTENT_RECURSIVE, Rroot);
    add_watch(d, "/a/b", ZK_WATCH_PERSISTENT, P1);
    add_watch(d, "/a/b", ZK_WATCH_DATA, D1);
    add_watch(d, "/a", ZK_WATCH_PERSISTENT_RECURSIVE, Ra);
    add_watch(d, "/a/b", ZK_WATCH_CHILD, C1);
    add_watch(d, "/a/b", ZK_WATCH_DATA, D2);
    add_watch(d, "/a/b", ZK_WATCH_PERSISTENT, P2);
    add_watch(d, "/a/b", ZK_WATCH_PERSISTENT_RECURSIVE, Rab);
    add_watch(d, "/a", ZK_WATCH_PERSISTENT_RECURSIVE, Ra2);
    add_watch(d, "/a/b", ZK_WATCH_CHILD, C2);
    add_watch(d, "/a/bc", ZK_WATCH_DATA, Other);

    log_reset();
    feed(d, ZK_EVENT_TYPE_DELETED, "/a/b");
    flush(d);
    EXPECT_TAGS(10, 11, 20, 21, 30, 31, 50, 60, 61, 90);

    /* one-shots are gone, the rest stay; the same callback registered twice
       is two watches */
    log_reset();
    {
        uint64_t id1, id2;
        struct ud *Twice = ud_new(12);
        id1 = add_watch(d, "/a/b", ZK_WATCH_DATA, Twice);
        id2 = add_watch(d, "/a/b", ZK_WATCH_DATA, Twice);
        CHECK(id1 != id2);
        feed(d, ZK_EVENT_TYPE_CHANGED, "/a/b");
        flush(d);
        EXPECT_TAGS(12, 12, 30, 31, 50, 60, 61, 90);
        CHECK_EQ_INT(wait_frees(Twice, 2), 2);
    }
    log_reset();
    feed(d, ZK_EVENT_TYPE_CHILD, "/a/b");
    flush(d);
    EXPECT_TAGS(30, 31);
    zk_dispatcher_free(d);
    CHECK_EQ_INT(Other->calls, 0);
    CHECK_EQ_INT(Other->frees, 1);
    CHECK_EQ_INT(Rroot->frees + P1->frees + D1->frees + Ra->frees + C1->frees + D2->frees +
                     P2->frees + Rab->frees + Ra2->frees + C2->frees,
                 10);
}

/* ------------------------------------------------------------------------ */
/* Event fields and the keeper state                                         */
/* ------------------------------------------------------------------------ */

static void test_event_state(void)
{
    zk_dispatcher *d = zk_dispatcher_new();
    struct ud *P = ud_new(1);
    struct rec r;
    add_watch(d, "/s", ZK_WATCH_PERSISTENT, P);

    log_reset();
    CHECK_EQ_INT(zk_dispatcher_event(d, ZK_EVENT_TYPE_CHANGED, "/s", INT64_C(0x123456789)), ZK_OK);
    flush(d);
    CHECK_EQ_INT(log_count(), 1);
    r = log_at(0);
    CHECK_EQ_INT(r.state, ZK_KEEPER_STATE_CLOSED);
    CHECK_EQ_INT(r.zxid, INT64_C(0x123456789));
    CHECK_EQ_INT(r.type, ZK_EVENT_TYPE_CHANGED);
    CHECK(r.nul_terminated);

    session(d, ZK_KEEPER_STATE_CONNECTED);
    log_reset();
    CHECK_EQ_INT(zk_dispatcher_event(d, ZK_EVENT_TYPE_CHILD, "/s", ZK_ZXID_UNKNOWN), ZK_OK);
    flush(d);
    CHECK_EQ_INT(log_count(), 1);
    r = log_at(0);
    CHECK_EQ_INT(r.state, ZK_KEEPER_STATE_CONNECTED);
    CHECK_EQ_INT(r.zxid, ZK_ZXID_UNKNOWN);
    CHECK_EQ_INT(r.type, ZK_EVENT_TYPE_CHILD);

    /* suspension: the persistent watch is told with a NONE session event */
    log_reset();
    session(d, ZK_KEEPER_STATE_CONNECTING);
    CHECK_EQ_INT(zk_dispatcher_event(d, ZK_EVENT_TYPE_CREATED, "/s", INT64_MIN), ZK_OK);
    flush(d);
    CHECK_EQ_INT(log_count(), 2);
    r = log_at(0);
    CHECK_EQ_INT(r.type, ZK_EVENT_TYPE_NONE);
    CHECK_EQ_INT(r.state, ZK_KEEPER_STATE_CONNECTING);
    CHECK(!r.has_path);
    CHECK_EQ_UINT(r.path_len, 0);
    CHECK_EQ_INT(r.zxid, ZK_ZXID_UNKNOWN);
    r = log_at(1);
    CHECK_EQ_INT(r.type, ZK_EVENT_TYPE_CREATED);
    CHECK_EQ_INT(r.state, ZK_KEEPER_STATE_CONNECTING);
    CHECK_EQ_INT(r.zxid, INT64_MIN);

    /* the state is the one when the event was fed, not when it runs */
    {
        struct blocker b;
        block_dispatch(d, &b, 500);
        log_reset();
        session(d, ZK_KEEPER_STATE_CONNECTED_RO);
        feed(d, ZK_EVENT_TYPE_CHANGED, "/s");
        session(d, ZK_KEEPER_STATE_CONNECTED);
        feed(d, ZK_EVENT_TYPE_CHANGED, "/s");
        unblock(&b);
        flush(d);
        CHECK_EQ_INT(log_count(), 2);
        CHECK_EQ_INT(log_at(0).state, ZK_KEEPER_STATE_CONNECTED_RO);
        CHECK_EQ_INT(log_at(1).state, ZK_KEEPER_STATE_CONNECTED);
    }
    zk_dispatcher_free(d);
    CHECK_EQ_INT(P->frees, 1);
}

/* ------------------------------------------------------------------------ */
/* Chroot                                                                    */
/* ------------------------------------------------------------------------ */

static void test_chroot(void)
{
    zk_dispatcher *d = zk_dispatcher_new();
    struct ud *Root = ud_new(1), *X = ud_new(2), *Rec = ud_new(3), *App = ud_new(4);
    zk_dispatcher_stats before, after;

    add_watch(d, "/", ZK_WATCH_PERSISTENT, Root);
    add_watch(d, "/x", ZK_WATCH_PERSISTENT, X);
    add_watch(d, "/", ZK_WATCH_PERSISTENT_RECURSIVE, Rec);
    add_watch(d, "/app/x", ZK_WATCH_PERSISTENT, App); /* never matches while chrooted */
    CHECK_EQ_INT(zk_dispatcher_set_chroot(d, "/app"), ZK_OK);

    log_reset();
    feed(d, ZK_EVENT_TYPE_CHANGED, "/app");
    flush(d);
    EXPECT_TAGS(1, 3);
    CHECK_STR(log_at(0).path, "/");
    CHECK_EQ_UINT(log_at(0).path_len, 1);
    CHECK_STR(log_at(1).path, "/");

    log_reset();
    feed(d, ZK_EVENT_TYPE_CHANGED, "/app/x");
    flush(d);
    EXPECT_TAGS(2, 3);
    CHECK_STR(log_at(0).path, "/x");
    CHECK_EQ_UINT(log_at(0).path_len, 2);
    CHECK(log_at(0).nul_terminated);

    log_reset();
    before = stats_of(d);
    feed(d, ZK_EVENT_TYPE_CHANGED, "/application");
    feed(d, ZK_EVENT_TYPE_CHANGED, "/other");
    feed(d, ZK_EVENT_TYPE_CHANGED, "/ap");
    feed(d, ZK_EVENT_TYPE_CHANGED, "/x");
    flush(d);
    EXPECT_NO_CALLS();
    after = stats_of(d);
    CHECK_EQ_UINT(after.events_unmatched - before.events_unmatched, 4);
    CHECK_EQ_UINT(after.events_fed - before.events_fed, 4);

    /* errors leave the chroot as it was */
    CHECK_EQ_INT(zk_dispatcher_set_chroot(d, ""), ZK_ERR_INVALID_PATH);
    CHECK_EQ_INT(zk_dispatcher_set_chroot(d, "app"), ZK_ERR_INVALID_PATH);
    CHECK_EQ_INT(zk_dispatcher_set_chroot(d, "/app/"), ZK_ERR_INVALID_PATH);
    CHECK_EQ_INT(zk_dispatcher_set_chroot(d, "//"), ZK_ERR_INVALID_PATH);
    CHECK_EQ_INT(zk_dispatcher_set_chroot(d, "/a/../b"), ZK_ERR_INVALID_PATH);
    CHECK_EQ_INT(zk_dispatcher_set_chroot(d, "/\xff"), ZK_ERR_INVALID_UTF8);
    CHECK_EQ_INT(zk_dispatcher_set_chroot(NULL, "/app"), ZK_ERR_NULL_ARGUMENT);
    log_reset();
    feed(d, ZK_EVENT_TYPE_CHANGED, "/app/x");
    flush(d);
    EXPECT_TAGS(2, 3);

    /* a nested chroot */
    CHECK_EQ_INT(zk_dispatcher_set_chroot(d, "/app/deep"), ZK_OK);
    log_reset();
    feed(d, ZK_EVENT_TYPE_CHANGED, "/app/deep/x");
    feed(d, ZK_EVENT_TYPE_CHANGED, "/app/x");
    flush(d);
    EXPECT_TAGS(2, 3);
    CHECK_STR(log_at(0).path, "/x");

    /* NULL clears it, and so does "/" */
    CHECK_EQ_INT(zk_dispatcher_set_chroot(d, NULL), ZK_OK);
    log_reset();
    feed(d, ZK_EVENT_TYPE_CHANGED, "/app/x");
    flush(d);
    EXPECT_TAGS(4, 3);
    CHECK_STR(log_at(0).path, "/app/x");
    CHECK_EQ_INT(zk_dispatcher_set_chroot(d, "/app"), ZK_OK);
    CHECK_EQ_INT(zk_dispatcher_set_chroot(d, "/"), ZK_OK);
    log_reset();
    feed(d, ZK_EVENT_TYPE_CHANGED, "/x");
    flush(d);
    EXPECT_TAGS(2, 3);
    zk_dispatcher_free(d);
    CHECK_EQ_INT(Root->frees + X->frees + Rec->frees + App->frees, 4);
}

/* ------------------------------------------------------------------------ */
/* Session transitions                                                       */
/* ------------------------------------------------------------------------ */

static int count_tag(int tag)
{
    int i, n = 0;
    for (i = 0; i < log_count(); i++) {
        if (log_at(i).tag == tag) {
            n++;
        }
    }
    return n;
}

static void test_sessions_kazoo(void)
{
    zk_dispatcher *d = zk_dispatcher_new();
    struct ud *L1 = ud_new(101), *L2 = ud_new(102);
    struct ud *D = ud_new(1), *C = ud_new(2), *P = ud_new(3), *R = ud_new(4);
    struct ud *D2 = ud_new(5);
    zk_kazoo_state k;
    zk_keeper_state s;
    zk_dispatcher_stats st;
    int i;

    add_listener(d, L1);
    add_listener(d, L2);
    add_watch(d, "/d", ZK_WATCH_DATA, D);
    add_watch(d, "/c", ZK_WATCH_CHILD, C);
    add_watch(d, "/p", ZK_WATCH_PERSISTENT, P);
    add_watch(d, "/r", ZK_WATCH_PERSISTENT_RECURSIVE, R);

    /* CLOSED -> CONNECTING: nothing */
    log_reset();
    session(d, ZK_KEEPER_STATE_CONNECTING);
    flush(d);
    EXPECT_NO_CALLS();
    CHECK_EQ_INT(zk_dispatcher_state(d, &k, &s), ZK_OK);
    CHECK_EQ_INT(k, ZK_KAZOO_STATE_LOST);
    CHECK_EQ_INT(s, ZK_KEEPER_STATE_CONNECTING);

    /* CONNECTED: listeners in registration order, no watch calls */
    log_reset();
    session(d, ZK_KEEPER_STATE_CONNECTED);
    CHECK_EQ_INT(zk_dispatcher_state(d, &k, &s), ZK_OK); /* as of the last call fed */
    CHECK_EQ_INT(k, ZK_KAZOO_STATE_CONNECTED);
    CHECK_EQ_INT(s, ZK_KEEPER_STATE_CONNECTED);
    flush(d);
    EXPECT_TAGS(101, 102);
    CHECK_EQ_INT(log_at(0).state, ZK_KAZOO_STATE_CONNECTED);
    CHECK_EQ_INT(log_at(1).state, ZK_KAZOO_STATE_CONNECTED);
    CHECK_EQ_INT(log_at(0).kind, REC_LISTENER);

    /* a repeat: nothing */
    log_reset();
    session(d, ZK_KEEPER_STATE_CONNECTED);
    flush(d);
    EXPECT_NO_CALLS();

    /* SUSPENDED: listeners first, then NONE to every watch; one-shots dropped */
    log_reset();
    session(d, ZK_KEEPER_STATE_CONNECTING);
    flush(d);
    CHECK_EQ_INT(log_count(), 6);
    CHECK_EQ_INT(log_at(0).tag, 101);
    CHECK_EQ_INT(log_at(1).tag, 102);
    CHECK_EQ_INT(log_at(0).state, ZK_KAZOO_STATE_SUSPENDED);
    CHECK_EQ_INT(log_at(1).state, ZK_KAZOO_STATE_SUSPENDED);
    for (i = 2; i < log_count(); i++) {
        struct rec r = log_at(i);
        CHECK_EQ_INT(r.kind, REC_WATCH);
        CHECK_EQ_INT(r.type, ZK_EVENT_TYPE_NONE);
        CHECK_EQ_INT(r.state, ZK_KEEPER_STATE_CONNECTING);
        CHECK(!r.has_path);
        CHECK_EQ_UINT(r.path_len, 0);
        CHECK_EQ_INT(r.zxid, ZK_ZXID_UNKNOWN);
        CHECK(r.seq == log_at(0).seq); /* the same session change */
    }
    CHECK_EQ_INT(count_tag(1) + count_tag(2) + count_tag(3) + count_tag(4), 4);
    CHECK_EQ_INT(count_tag(1), 1);
    CHECK_EQ_INT(count_tag(4), 1);
    CHECK_EQ_INT(wait_frees(D, 1), 1); /* one-shots fired once and dropped */
    CHECK_EQ_INT(wait_frees(C, 1), 1);
    CHECK_EQ_INT(P->frees, 0); /* persistent kept */
    CHECK_EQ_INT(R->frees, 0);
    st = stats_of(d);
    CHECK_EQ_UINT(st.watches, 2);

    log_reset();
    feed(d, ZK_EVENT_TYPE_CHANGED, "/d");
    feed(d, ZK_EVENT_TYPE_CHILD, "/c");
    feed(d, ZK_EVENT_TYPE_CHANGED, "/p");
    feed(d, ZK_EVENT_TYPE_CHANGED, "/r/x");
    flush(d);
    EXPECT_TAGS(3, 4);

    /* reconnect */
    log_reset();
    session(d, ZK_KEEPER_STATE_CONNECTED);
    flush(d);
    EXPECT_TAGS(101, 102);
    CHECK_EQ_INT(log_at(0).state, ZK_KAZOO_STATE_CONNECTED);

    /* LOST: every watch fires once with NONE and is dropped */
    add_watch(d, "/d2", ZK_WATCH_DATA, D2);
    log_reset();
    session(d, ZK_KEEPER_STATE_EXPIRED_SESSION);
    flush(d);
    CHECK_EQ_INT(log_count(), 5);
    CHECK_EQ_INT(log_at(0).tag, 101);
    CHECK_EQ_INT(log_at(1).tag, 102);
    CHECK_EQ_INT(log_at(0).state, ZK_KAZOO_STATE_LOST);
    for (i = 2; i < log_count(); i++) {
        CHECK_EQ_INT(log_at(i).type, ZK_EVENT_TYPE_NONE);
        CHECK_EQ_INT(log_at(i).state, ZK_KEEPER_STATE_EXPIRED_SESSION);
    }
    CHECK_EQ_INT(count_tag(3), 1);
    CHECK_EQ_INT(count_tag(4), 1);
    CHECK_EQ_INT(count_tag(5), 1);
    CHECK_EQ_INT(wait_frees(P, 1), 1);
    CHECK_EQ_INT(wait_frees(R, 1), 1);
    CHECK_EQ_INT(wait_frees(D2, 1), 1);
    st = stats_of(d);
    CHECK_EQ_UINT(st.watches, 0);
    CHECK_EQ_UINT(st.listeners, 2);

    log_reset();
    feed(d, ZK_EVENT_TYPE_CHANGED, "/p");
    feed(d, ZK_EVENT_TYPE_CHANGED, "/r");
    /* CONNECTING after a closed state: nothing; CLOSED while LOST: no listener call */
    session(d, ZK_KEEPER_STATE_CONNECTING);
    session(d, ZK_KEEPER_STATE_CLOSED);
    flush(d);
    EXPECT_NO_CALLS();

    /* invalid states */
    CHECK_EQ_INT(zk_dispatcher_session(d, 0), ZK_ERR_INVALID_KEEPER_STATE);
    CHECK_EQ_INT(zk_dispatcher_session(d, 2), ZK_ERR_INVALID_KEEPER_STATE);
    CHECK_EQ_INT(zk_dispatcher_session(d, 999), ZK_ERR_INVALID_KEEPER_STATE);
    CHECK_EQ_INT(zk_dispatcher_session(d, -113), ZK_ERR_INVALID_KEEPER_STATE);
    CHECK_EQ_INT(zk_dispatcher_session(NULL, ZK_KEEPER_STATE_CONNECTED), ZK_ERR_NULL_ARGUMENT);
    st = stats_of(d);
    CHECK_EQ_UINT(st.sessions_fed, 8); /* repeats included, invalid ones not */
    CHECK_EQ_INT(zk_dispatcher_state(d, &k, &s), ZK_OK);
    CHECK_EQ_INT(k, ZK_KAZOO_STATE_LOST);
    CHECK_EQ_INT(s, ZK_KEEPER_STATE_CLOSED);

    zk_dispatcher_free(d);
    CHECK_EQ_INT(L1->frees, 1);
    CHECK_EQ_INT(L2->frees, 1);
    CHECK_EQ_INT(L1->calls, 4);
}

static void test_listener_self_removal(void)
{
    zk_dispatcher *d = zk_dispatcher_new();
    struct ud *Once = ud_new(1), *Stay = ud_new(2);
    uint64_t once_id;
    zk_dispatcher_stats st;
    once_id = add_listener(d, Once);
    add_listener(d, Stay);
    Once->listener_ret = 1;
    log_reset();
    session(d, ZK_KEEPER_STATE_CONNECTED);
    session(d, ZK_KEEPER_STATE_CONNECTING);
    session(d, ZK_KEEPER_STATE_CONNECTED);
    flush(d);
    EXPECT_TAGS(1, 2, 2, 2);
    CHECK_EQ_INT(Once->frees, 1);
    CHECK_EQ_INT(Once->freed_in_callback, 0);
    CHECK_EQ_INT(zk_listener_remove(d, once_id), ZK_ERR_NOT_FOUND);
    CHECK_EQ_INT(Once->frees, 1);
    st = stats_of(d);
    CHECK_EQ_UINT(st.listeners, 1);
    CHECK_EQ_UINT(st.listener_calls, 4);
    CHECK_EQ_INT(zk_listener_remove(d, Stay->id), ZK_OK);
    flush(d);
    CHECK_EQ_INT(Stay->frees, 1);
    CHECK_EQ_INT(zk_listener_remove(d, Stay->id), ZK_ERR_NOT_FOUND);
    CHECK_EQ_INT(zk_listener_remove(NULL, Stay->id), ZK_ERR_NULL_ARGUMENT);
    CHECK_EQ_INT(zk_listener_remove(d, 0), ZK_ERR_NOT_FOUND);
    CHECK_EQ_INT(zk_listener_remove(d, UINT64_MAX), ZK_ERR_NOT_FOUND);
    log_reset();
    session(d, ZK_KEEPER_STATE_EXPIRED_SESSION);
    flush(d);
    EXPECT_NO_CALLS();
    zk_dispatcher_free(d);
    CHECK_EQ_INT(Once->frees, 1);
    CHECK_EQ_INT(Stay->frees, 1);
}

static void test_sessions_curator(void)
{
    zk_dispatcher *d = NULL;
    struct ud *L = ud_new(1);
    int i;
    static const int32_t want[] = {ZK_KAZOO_STATE_CONNECTED, ZK_KAZOO_STATE_SUSPENDED,
                                   ZK_KAZOO_STATE_RECONNECTED, ZK_KAZOO_STATE_READ_ONLY,
                                   ZK_KAZOO_STATE_LOST, ZK_KAZOO_STATE_RECONNECTED};
    zk_kazoo_state k;
    zk_keeper_state s;
    CHECK_EQ_INT(zk_dispatcher_new_with(ZK_DISPATCHER_CURATOR_STATES, 0, &d), ZK_OK);
    add_listener(d, L);
    log_reset();
    session(d, ZK_KEEPER_STATE_CONNECTING);
    session(d, ZK_KEEPER_STATE_CONNECTED);
    session(d, ZK_KEEPER_STATE_CONNECTING);
    session(d, ZK_KEEPER_STATE_CONNECTED);
    CHECK_EQ_INT(zk_dispatcher_state(d, &k, &s), ZK_OK);
    CHECK_EQ_INT(k, ZK_KAZOO_STATE_RECONNECTED);
    session(d, ZK_KEEPER_STATE_CONNECTED_RO);
    session(d, ZK_KEEPER_STATE_EXPIRED_SESSION);
    session(d, ZK_KEEPER_STATE_CONNECTING);
    session(d, ZK_KEEPER_STATE_CONNECTED);
    flush(d);
    CHECK_EQ_INT(log_count(), (int)ARRAY_LEN(want));
    for (i = 0; i < log_count() && i < (int)ARRAY_LEN(want); i++) {
        CHECK_EQ_INT(log_at(i).state, want[i]);
    }
    zk_dispatcher_free(d);
    CHECK_EQ_INT(L->frees, 1);
}

static void test_sessions_keep_watches(void)
{
    zk_dispatcher *d = NULL;
    struct ud *D = ud_new(1), *C = ud_new(2), *P = ud_new(3);
    CHECK_EQ_INT(zk_dispatcher_new_with(ZK_DISPATCHER_KEEP_WATCHES, 0, &d), ZK_OK);
    add_watch(d, "/d", ZK_WATCH_DATA, D);
    add_watch(d, "/c", ZK_WATCH_CHILD, C);
    add_watch(d, "/p", ZK_WATCH_PERSISTENT, P);
    session(d, ZK_KEEPER_STATE_CONNECTED);
    log_reset();
    session(d, ZK_KEEPER_STATE_CONNECTING);
    flush(d);
    CHECK_EQ_INT(log_count(), 3); /* every watch told */
    CHECK_EQ_INT(count_tag(1) + count_tag(2) + count_tag(3), 3);
    CHECK_EQ_INT(D->frees + C->frees + P->frees, 0); /* and kept */
    session(d, ZK_KEEPER_STATE_CONNECTED);
    log_reset();
    feed(d, ZK_EVENT_TYPE_CHANGED, "/d");
    feed(d, ZK_EVENT_TYPE_CHILD, "/c");
    feed(d, ZK_EVENT_TYPE_CHANGED, "/d"); /* the one-shot is gone now */
    flush(d);
    EXPECT_TAGS(1, 2);
    CHECK_EQ_INT(wait_frees(D, 1), 1);
    CHECK_EQ_INT(wait_frees(C, 1), 1);
    /* a lost session still resets every watch */
    log_reset();
    session(d, ZK_KEEPER_STATE_EXPIRED_SESSION);
    flush(d);
    EXPECT_TAGS(3);
    CHECK_EQ_INT(wait_frees(P, 1), 1);
    zk_dispatcher_free(d);
}

/* ------------------------------------------------------------------------ */
/* Ordering and sequence numbers                                             */
/* ------------------------------------------------------------------------ */

static void test_ordering(void)
{
    zk_dispatcher *d = zk_dispatcher_new();
    struct ud *P = ud_new(10), *L = ud_new(20);
    struct ud *S1 = ud_new(31), *S2 = ud_new(32), *S3 = ud_new(33), *S4 = ud_new(34);
    zk_dispatcher_stats st;
    int i;
    static const uint64_t want_seq[] = {1, 2, 3, 5, 7, 7, 9, 10, 11};

    add_watch(d, "/o", ZK_WATCH_PERSISTENT, P);
    add_listener(d, L);
    log_reset();
    submit(d, S1);                                /* 1 */
    feed(d, ZK_EVENT_TYPE_CHANGED, "/o");         /* 2: P */
    session(d, ZK_KEEPER_STATE_CONNECTED);        /* 3: L */
    feed(d, ZK_EVENT_TYPE_CHANGED, "/none");      /* 4: unmatched */
    submit(d, S2);                                /* 5 */
    feed(d, ZK_EVENT_TYPE_NONE, "/o");            /* 6: ignored */
    session(d, ZK_KEEPER_STATE_CONNECTING);       /* 7: L, then P (NONE) */
    session(d, ZK_KEEPER_STATE_CONNECTING);       /* 8: a repeat */
    feed(d, ZK_EVENT_TYPE_CHILD, "/o");           /* 9: P */
    submit(d, S3);                                /* 10 */
    /* refused calls take no sequence number */
    CHECK_EQ_INT(zk_dispatcher_event(d, ZK_EVENT_TYPE_CHANGED, "bad", 0), ZK_ERR_INVALID_PATH);
    CHECK_EQ_INT(zk_dispatcher_event(d, 0, "/o", 0), ZK_ERR_INVALID_EVENT_TYPE);
    CHECK_EQ_INT(zk_dispatcher_session(d, 0), ZK_ERR_INVALID_KEEPER_STATE);
    CHECK_EQ_INT(zk_dispatcher_submit(d, NULL, NULL, NULL), ZK_ERR_NULL_ARGUMENT);
    submit(d, S4); /* 11 */
    flush(d);
    EXPECT_TAGS(31, 10, 20, 32, 20, 10, 10, 33, 34);
    for (i = 0; i < log_count() && i < (int)ARRAY_LEN(want_seq); i++) {
        CHECK_EQ_UINT(log_at(i).seq, want_seq[i]);
        if (i > 0) {
            CHECK(log_at(i).seq >= log_at(i - 1).seq);
        }
    }
    CHECK_EQ_INT(log_at(5).type, ZK_EVENT_TYPE_NONE);
    CHECK_EQ_INT(log_at(6).type, ZK_EVENT_TYPE_CHILD);
    st = stats_of(d);
    CHECK_EQ_UINT(st.last_seq, 11);
    CHECK_EQ_UINT(zk_dispatch_current_seq(), 0); /* not in a callback */

    /* every callback runs on one thread, which is not this one */
    for (i = 1; i < log_count(); i++) {
        CHECK(pthread_equal(log_at(i).thread, log_at(0).thread));
    }
    CHECK(!pthread_equal(log_at(0).thread, pthread_self()));

    /* many calls from one thread are delivered in the order made */
    {
        struct ud *Q[200];
        int ok = 1;
        log_reset();
        for (i = 0; i < 200; i++) {
            Q[i] = ud_new(1000 + i);
            if (i % 3 == 0) {
                submit(d, Q[i]);
            } else {
                add_watch(d, i % 3 == 1 ? "/q1" : "/q2", ZK_WATCH_DATA, Q[i]);
                feed(d, ZK_EVENT_TYPE_CHANGED, i % 3 == 1 ? "/q1" : "/q2");
            }
        }
        flush(d);
        CHECK_EQ_INT(log_count(), 200);
        for (i = 0; i < log_count(); i++) {
            if (log_at(i).tag != 1000 + i) {
                ok = 0;
            }
            if (i > 0 && log_at(i).seq <= log_at(i - 1).seq) {
                ok = 0;
            }
        }
        CHECK(ok);
        if (!ok) {
            log_dump("ordering");
        }
    }
    zk_dispatcher_free(d);
}

/* ------------------------------------------------------------------------ */
/* flush and submit                                                          */
/* ------------------------------------------------------------------------ */

static void test_flush_and_submit(void)
{
    zk_dispatcher *d = zk_dispatcher_new();
    struct ud *F1 = ud_new(1), *F2 = ud_new(2), *F3 = ud_new(3);
    struct ud *A = ud_new(4), *B = ud_new(5);
    int before_frees;

    /* flush from every kind of callback: ZK_ERR_WOULD_DEADLOCK */
    F1->actions = ACT_FLUSH;
    submit(d, F1);
    F2->actions = ACT_FLUSH;
    add_watch(d, "/f", ZK_WATCH_PERSISTENT, F2);
    F3->actions = ACT_FLUSH;
    add_listener(d, F3);
    feed(d, ZK_EVENT_TYPE_CHANGED, "/f");
    session(d, ZK_KEEPER_STATE_CONNECTED);
    flush(d);
    CHECK_EQ_INT(F1->rc_flush, ZK_ERR_WOULD_DEADLOCK);
    CHECK_EQ_INT(F2->rc_flush, ZK_ERR_WOULD_DEADLOCK);
    CHECK_EQ_INT(F3->rc_flush, ZK_ERR_WOULD_DEADLOCK);

    /* submit: the callback runs once, then args are freed right after it */
    B->actions = ACT_RECORD_FREES;
    B->observe = A;
    A->observed_frees = -1;
    submit(d, A);
    submit(d, B);
    flush(d);
    CHECK_EQ_INT(A->calls, 1);
    CHECK_EQ_INT(A->frees, 1);
    CHECK_EQ_INT(A->freed_in_callback, 0);
    CHECK_EQ_INT(B->observed_frees, 1); /* A freed before the next callback */
    CHECK_EQ_INT(F1->frees, 1);

    /* failures keep nothing and free nothing */
    {
        struct ud *X = ud_new(6);
        CHECK_EQ_INT(zk_dispatcher_submit(d, NULL, X, ud_free), ZK_ERR_NULL_ARGUMENT);
        CHECK_EQ_INT(zk_dispatcher_submit(NULL, submit_cb, X, ud_free), ZK_ERR_NULL_ARGUMENT);
        flush(d);
        CHECK_EQ_INT(X->frees, 0);
        CHECK_EQ_INT(X->calls, 0);
    }
    /* NULL free_fn and NULL args are fine */
    {
        struct ud *Y = ud_new(7);
        before_frees = Y->frees;
        Y->d = d;
        CHECK_EQ_INT(zk_dispatcher_submit(d, submit_cb, Y, NULL), ZK_OK);
        flush(d);
        CHECK_EQ_INT(Y->calls, 1);
        CHECK_EQ_INT(Y->frees, before_frees);
    }
    zk_dispatcher_free(d);
    CHECK_EQ_INT(F2->frees, 1);
    CHECK_EQ_INT(F3->frees, 1);
}

/* ------------------------------------------------------------------------ */
/* Re-entrancy                                                               */
/* ------------------------------------------------------------------------ */

static void test_reentrancy(void)
{
    zk_dispatcher *d = zk_dispatcher_new();

    /* a persistent watch removing itself */
    {
        struct ud *P = ud_new(1);
        P->actions = ACT_REMOVE_SELF_WATCH;
        add_watch(d, "/r", ZK_WATCH_PERSISTENT, P);
        log_reset();
        feed(d, ZK_EVENT_TYPE_CHANGED, "/r");
        feed(d, ZK_EVENT_TYPE_CHANGED, "/r"); /* queued before the removal: must not run */
        flush(d);
        flush(d); /* a flush made after the removal: its free_fn has run */
        EXPECT_TAGS(1);
        CHECK_EQ_INT(P->rc_remove_self, ZK_OK);
        CHECK_EQ_INT(P->frees, 1);
        CHECK_EQ_INT(P->freed_in_callback, 0);
        CHECK_EQ_INT(zk_watch_remove(d, P->id), ZK_ERR_NOT_FOUND);
    }
    /* a one-shot removing itself: it has fired */
    {
        struct ud *D = ud_new(2);
        D->actions = ACT_REMOVE_SELF_WATCH;
        add_watch(d, "/r1", ZK_WATCH_DATA, D);
        feed(d, ZK_EVENT_TYPE_CHANGED, "/r1");
        flush(d);
        CHECK_EQ_INT(D->calls, 1);
        CHECK_EQ_INT(D->rc_remove_self, ZK_ERR_NOT_FOUND);
        CHECK_EQ_INT(wait_frees(D, 1), 1);
        CHECK_EQ_INT(D->freed_in_callback, 0);
    }
    /* a watch adding a watch on its own path: not fired by the current event */
    {
        struct ud *P = ud_new(3), *X = ud_new(4);
        P->actions = ACT_ADD_WATCH | ACT_ONCE;
        P->child = X;
        P->add_path = "/r2";
        P->add_kind = ZK_WATCH_DATA;
        add_watch(d, "/r2", ZK_WATCH_PERSISTENT, P);
        log_reset();
        feed(d, ZK_EVENT_TYPE_CHANGED, "/r2");
        flush(d);
        EXPECT_TAGS(3);
        CHECK_EQ_INT(P->rc_add, ZK_OK);
        log_reset();
        feed(d, ZK_EVENT_TYPE_CHANGED, "/r2");
        flush(d);
        EXPECT_TAGS(4, 3); /* one-shots first */
        CHECK_EQ_INT(wait_frees(X, 1), 1);
        CHECK(X->id == P->added_id);
        CHECK_EQ_INT(zk_watch_remove(d, P->id), ZK_OK);
    }
    /* a watch submitting work: it runs after, with a later sequence number */
    {
        struct ud *P = ud_new(5), *S = ud_new(6);
        P->actions = ACT_SUBMIT | ACT_ONCE;
        P->child = S;
        add_watch(d, "/r3", ZK_WATCH_PERSISTENT, P);
        log_reset();
        feed(d, ZK_EVENT_TYPE_CHANGED, "/r3");
        flush(d);
        flush(d); /* S was queued behind the first flush */
        EXPECT_TAGS(5, 6);
        CHECK_EQ_INT(P->rc_submit, ZK_OK);
        CHECK(log_count() == 2 && log_at(1).seq > log_at(0).seq);
        CHECK_EQ_INT(S->frees, 1);
        CHECK_EQ_INT(zk_watch_remove(d, P->id), ZK_OK);
    }
    /* listeners removing and adding listeners */
    {
        struct ud *Remover = ud_new(7), *Victim = ud_new(8), *Adder = ud_new(9);
        struct ud *New = ud_new(10);
        add_listener(d, Remover);
        add_listener(d, Adder);
        add_listener(d, Victim); /* registered when the change is fed, removed before its turn */
        Remover->actions = ACT_REMOVE_LISTENER | ACT_ONCE;
        Remover->other_id = Victim->id;
        Adder->actions = ACT_ADD_LISTENER | ACT_ONCE;
        Adder->child = New;
        log_reset();
        session(d, ZK_KEEPER_STATE_CONNECTED);
        flush(d);
        flush(d); /* after the removal made by Remover */
        EXPECT_TAGS(7, 9); /* Victim never runs; New is not told of this change */
        CHECK_EQ_INT(Remover->rc_remove, ZK_OK);
        CHECK_EQ_INT(Adder->rc_add, ZK_OK);
        CHECK_EQ_INT(Victim->frees, 1);
        CHECK_EQ_INT(Victim->calls, 0);
        log_reset();
        session(d, ZK_KEEPER_STATE_CONNECTING);
        flush(d);
        EXPECT_TAGS(7, 9, 10);
        CHECK_EQ_INT(log_at(2).state, ZK_KAZOO_STATE_SUSPENDED);
        CHECK_EQ_INT(zk_listener_remove(d, Remover->id), ZK_OK);
        CHECK_EQ_INT(zk_listener_remove(d, Adder->id), ZK_OK);
        CHECK_EQ_INT(zk_listener_remove(d, New->id), ZK_OK);
        flush(d);
        CHECK_EQ_INT(New->frees, 1);
    }
    /* a listener removing itself with zk_listener_remove */
    {
        struct ud *L = ud_new(11);
        L->actions = ACT_REMOVE_LISTENER;
        add_listener(d, L);
        L->other_id = L->id;
        session(d, ZK_KEEPER_STATE_CONNECTED);
        session(d, ZK_KEEPER_STATE_CONNECTING);
        flush(d);
        flush(d); /* after L's own removal */
        CHECK_EQ_INT(L->calls, 1);
        CHECK_EQ_INT(L->rc_remove, ZK_OK);
        CHECK_EQ_INT(L->frees, 1);
        CHECK_EQ_INT(L->freed_in_callback, 0);
    }
    /* a callback feeding an event and a session change */
    {
        struct ud *S = ud_new(12), *T = ud_new(13), *P = ud_new(14), *L = ud_new(15);
        add_watch(d, "/fed", ZK_WATCH_PERSISTENT, P);
        add_listener(d, L);
        S->actions = ACT_FEED_EVENT;
        S->feed_type = ZK_EVENT_TYPE_CREATED;
        S->feed_path = "/fed";
        T->actions = ACT_FEED_SESSION;
        T->feed_state = ZK_KEEPER_STATE_CONNECTED;
        struct blocker b;
        log_reset();
        /* S and T are both queued before S runs (else S's event could come
         * before T: the queue order is the order calls were accepted) */
        block_dispatch(d, &b, 19);
        submit(d, S);
        submit(d, T);
        unblock(&b);
        flush(d);
        flush(d); /* the fed items were queued behind the first flush */
        EXPECT_TAGS(19, 12, 13, 14, 15);
        CHECK_EQ_INT(S->rc_feed, ZK_OK);
        CHECK_EQ_INT(T->rc_feed, ZK_OK);
        CHECK_EQ_INT(log_at(3).zxid, 4242);
        CHECK_EQ_INT(log_at(4).state, ZK_KAZOO_STATE_CONNECTED);
    }
    /* state and stats from a callback */
    {
        struct ud *Q = ud_new(16), *W = ud_new(17);
        zk_dispatcher_stats st;
        Q->actions = ACT_QUERY;
        Q->rc_state = Q->rc_stats = -1;
        W->actions = ACT_QUERY;
        W->rc_state = W->rc_stats = -1;
        add_watch(d, "/q", ZK_WATCH_DATA, W);
        session(d, ZK_KEEPER_STATE_CONNECTED_RO);
        feed(d, ZK_EVENT_TYPE_CHANGED, "/q");
        submit(d, Q);
        flush(d);
        st = stats_of(d);
        CHECK_EQ_INT(Q->rc_state, ZK_OK);
        CHECK_EQ_INT(Q->rc_stats, ZK_OK);
        CHECK_EQ_INT(Q->queried_keeper, ZK_KEEPER_STATE_CONNECTED_RO);
        CHECK_EQ_UINT(Q->queried_last_seq, st.last_seq);
        CHECK_EQ_INT(W->rc_state, ZK_OK);
        CHECK_EQ_INT(W->rc_stats, ZK_OK);
    }
    zk_dispatcher_free(d);
}

/* ------------------------------------------------------------------------ */
/* zk_dispatcher_free from inside a callback                                 */
/* ------------------------------------------------------------------------ */

static void test_free_from_callback(void)
{
    zk_dispatcher *d = zk_dispatcher_new();
    struct blocker b;
    struct ud *W = ud_new(1), *L = ud_new(2), *Killer = ud_new(3), *After = ud_new(4);
    struct ud *Offered = ud_new(5), *Pending = ud_new(6);
    int done;

    add_watch(d, "/w", ZK_WATCH_PERSISTENT, W);
    add_watch(d, "/pending", ZK_WATCH_DATA, Pending);
    add_listener(d, L);
    Killer->actions = ACT_FREE_DISPATCHER;
    Killer->after_free_ud = Offered;
    log_reset();
    block_dispatch(d, &b, 7);
    submit(d, Killer);
    submit(d, After); /* queued before the free: still runs */
    unblock(&b);

    /* wait for the detached dispatch thread to run the queue ... */
    CHECK(wait_int_eq(&After->frees, 1, WAIT_TIMEOUT_MS));
    /* ... and then, once it exits, to free what is registered */
    {
        long long deadline = now_ms() + SHORT_WAIT_MS;
        do {
            done = ATOMIC_LOAD(&W->frees) == 1 && ATOMIC_LOAD(&L->frees) == 1 &&
                   ATOMIC_LOAD(&Killer->frees) == 1 && ATOMIC_LOAD(&Pending->frees) == 1 &&
                   ATOMIC_LOAD(&b.u->frees) == 1;
            if (!done) {
                sleep_ms(1);
            }
        } while (!done && now_ms() < deadline);
    }
    CHECK(done);
    CHECK_EQ_INT(Killer->calls, 1);
    CHECK_EQ_INT(After->calls, 1);
    CHECK_EQ_INT(Killer->rc_after_free_submit, ZK_ERR_SHUTTING_DOWN);
    CHECK_EQ_INT(Killer->rc_after_free_watch, ZK_ERR_SHUTTING_DOWN);
    CHECK_EQ_INT(Killer->rc_after_free_event, ZK_ERR_SHUTTING_DOWN);
    sleep_ms(50); /* give a wrong extra free a chance to show */
    CHECK_EQ_INT(Offered->frees, 0); /* refused: ownership stayed with the caller */
    CHECK_EQ_INT(Offered->calls, 0);
    CHECK_EQ_INT(W->frees, 1);
    CHECK_EQ_INT(L->frees, 1);
    CHECK_EQ_INT(W->calls, 0);
    CHECK_EQ_INT(L->calls, 0);
    /* the registered ones were freed by the dispatch thread itself */
    CHECK(ATOMIC_LOAD(&W->free_thread_set) && pthread_equal(W->free_thread, Killer->call_thread));
    CHECK(ATOMIC_LOAD(&L->free_thread_set) && pthread_equal(L->free_thread, Killer->call_thread));
    EXPECT_TAGS(7, 3, 4);
}

/* ------------------------------------------------------------------------ */
/* Bounded queue                                                             */
/* ------------------------------------------------------------------------ */

static void test_bounded_queue(void)
{
    zk_dispatcher *d = NULL;
    struct blocker b;
    struct ud *D = ud_new(1), *S1 = ud_new(2), *S2 = ud_new(3), *L = ud_new(4);
    zk_dispatcher_stats st;
    uint64_t seq_before;

    CHECK_EQ_INT(zk_dispatcher_new_with(0, 1, &d), ZK_OK);
    add_watch(d, "/q", ZK_WATCH_DATA, D);
    add_listener(d, L);
    log_reset();
    block_dispatch(d, &b, 9);
    submit(d, S1); /* fills the queue */
    st = stats_of(d);
    CHECK_EQ_UINT(st.queued, 1);
    seq_before = st.last_seq;

    CHECK_EQ_INT(zk_dispatcher_event(d, ZK_EVENT_TYPE_CHANGED, "/q", 1), ZK_ERR_QUEUE_FULL);
    S2->d = d;
    CHECK_EQ_INT(zk_dispatcher_submit(d, submit_cb, S2, ud_free), ZK_ERR_QUEUE_FULL);
    st = stats_of(d);
    CHECK_EQ_UINT(st.refused_full, 2);
    CHECK_EQ_UINT(st.last_seq, seq_before); /* refused: no sequence number */
    CHECK_EQ_UINT(st.events_fed, 0);
    CHECK_EQ_UINT(st.watches, 1); /* the refused event popped no one-shot */
    CHECK_EQ_INT(S2->frees, 0);   /* and the refused submission kept nothing */

    /* session changes are never refused for room */
    CHECK_EQ_INT(zk_dispatcher_session(d, ZK_KEEPER_STATE_CONNECTED), ZK_OK);
    unblock(&b);
    flush(d);
    EXPECT_TAGS(9, 2, 4);
    CHECK_EQ_INT(D->calls, 0);
    CHECK_EQ_INT(S2->calls, 0);
    CHECK_EQ_INT(S2->frees, 0);

    /* with room again, the event fires the still-registered one-shot */
    log_reset();
    CHECK_EQ_INT(zk_dispatcher_event(d, ZK_EVENT_TYPE_CHANGED, "/q", 2), ZK_OK);
    flush(d);
    EXPECT_TAGS(1);
    CHECK_EQ_INT(wait_frees(D, 1), 1);
    st = stats_of(d);
    CHECK_EQ_UINT(st.refused_full, 2);
    CHECK_EQ_UINT(st.refused_closed, 0);
    CHECK_EQ_UINT(st.events_fed, st.events_matched + st.events_unmatched + st.events_ignored);
    zk_dispatcher_free(d);
    CHECK_EQ_INT(L->frees, 1);
    CHECK_EQ_INT(S1->frees, 1);

    /* The bound counts node events and submitted callbacks only: queued
       session work (listener notifications, NONE events) does not use room. */
    {
        struct ud *L2 = ud_new(5), *P2 = ud_new(6), *T1 = ud_new(7), *T2 = ud_new(8);
        d = NULL;
        CHECK_EQ_INT(zk_dispatcher_new_with(0, 1, &d), ZK_OK);
        add_listener(d, L2);
        add_watch(d, "/p", ZK_WATCH_PERSISTENT, P2);
        log_reset();
        block_dispatch(d, &b, 10);
        session(d, ZK_KEEPER_STATE_CONNECTED);
        session(d, ZK_KEEPER_STATE_CONNECTING); /* listener + NONE to P2 */
        session(d, ZK_KEEPER_STATE_CONNECTED);
        submit(d, T1);
        T2->d = d;
        CHECK_EQ_INT(zk_dispatcher_submit(d, submit_cb, T2, ud_free), ZK_ERR_QUEUE_FULL);
        unblock(&b);
        flush(d);
        EXPECT_TAGS(10, 5, 5, 6, 5, 7);
        CHECK_EQ_INT(T2->frees, 0);
        zk_dispatcher_free(d);
    }
}

/* ------------------------------------------------------------------------ */
/* Ownership                                                                 */
/* ------------------------------------------------------------------------ */

static void test_ownership(void)
{
    zk_dispatcher *d = zk_dispatcher_new();
    struct ud *X = ud_new(1);
    uint64_t id = 777;
    size_t i;
    /* ZK_ERR_INVALID_PATH: ZooKeeper's rules (not absolute, empty, '.' or '..'
       components, a trailing '/', control, private-use or non-BMP characters) */
    static const char *bad_paths[] = {"",
                                      "a",
                                      "a/b",
                                      "/a/",
                                      "//",
                                      "/a//b",
                                      "/.",
                                      "/..",
                                      "/a/./b",
                                      "/a/../b",
                                      "/a/.",
                                      "/a\x01",
                                      "/\x1f",
                                      "/\x7f",
                                      "/x\xc2\x85",        /* U+0085, a C1 control */
                                      "/\xee\x80\x80",     /* U+E000, private use */
                                      "/\xef\xa3\xbf",     /* U+F8FF, private use */
                                      "/\xf0\x9f\x98\x80", /* U+1F600, not in the BMP */
                                      "/a/\xf4\x8f\xbf\xbf"};
    X->d = d;

    /* invalid kind / path / NULLs: free_fn not called, *out_id untouched */
    CHECK_EQ_INT(zk_watch_add(d, "/a", 4, watch_cb, X, ud_free, &id), ZK_ERR_INVALID_WATCH_KIND);
    CHECK_EQ_INT(zk_watch_add(d, "/a", -1, watch_cb, X, ud_free, &id), ZK_ERR_INVALID_WATCH_KIND);
    CHECK_EQ_INT(zk_watch_add(d, "/a", INT32_MAX, watch_cb, X, ud_free, &id),
                 ZK_ERR_INVALID_WATCH_KIND);
    for (i = 0; i < ARRAY_LEN(bad_paths); i++) {
        check_set_context(bad_paths[i]);
        CHECK_EQ_INT(zk_watch_add(d, bad_paths[i], ZK_WATCH_DATA, watch_cb, X, ud_free, &id),
                     ZK_ERR_INVALID_PATH);
        CHECK_EQ_INT(zk_dispatcher_event(d, ZK_EVENT_TYPE_CHANGED, bad_paths[i], 0),
                     ZK_ERR_INVALID_PATH);
    }
    check_set_context(NULL);
    CHECK_EQ_INT(zk_watch_add(d, "/\xff", ZK_WATCH_DATA, watch_cb, X, ud_free, &id),
                 ZK_ERR_INVALID_UTF8);
    CHECK_EQ_INT(zk_watch_add(d, "/a\xc3", ZK_WATCH_PERSISTENT, watch_cb, X, ud_free, &id),
                 ZK_ERR_INVALID_UTF8);
    CHECK_EQ_INT(zk_watch_add(NULL, "/a", ZK_WATCH_DATA, watch_cb, X, ud_free, &id),
                 ZK_ERR_NULL_ARGUMENT);
    CHECK_EQ_INT(zk_watch_add(d, NULL, ZK_WATCH_DATA, watch_cb, X, ud_free, &id),
                 ZK_ERR_NULL_ARGUMENT);
    CHECK_EQ_INT(zk_watch_add(d, "/a", ZK_WATCH_DATA, NULL, X, ud_free, &id),
                 ZK_ERR_NULL_ARGUMENT);
    CHECK_EQ_INT(zk_watch_add(d, "/a", ZK_WATCH_DATA, watch_cb, X, ud_free, NULL),
                 ZK_ERR_NULL_ARGUMENT);
    CHECK_EQ_INT(zk_listener_add(NULL, listener_cb, X, ud_free, &id), ZK_ERR_NULL_ARGUMENT);
    CHECK_EQ_INT(zk_listener_add(d, NULL, X, ud_free, &id), ZK_ERR_NULL_ARGUMENT);
    CHECK_EQ_INT(zk_listener_add(d, listener_cb, X, ud_free, NULL), ZK_ERR_NULL_ARGUMENT);
    CHECK_EQ_INT(zk_dispatcher_event(d, ZK_EVENT_TYPE_CHANGED, "/\xff", 0), ZK_ERR_INVALID_UTF8);
    CHECK_EQ_INT(zk_dispatcher_event(d, ZK_EVENT_TYPE_CHANGED, NULL, 0), ZK_ERR_NULL_ARGUMENT);
    CHECK_EQ_INT(zk_dispatcher_event(NULL, ZK_EVENT_TYPE_CHANGED, "/a", 0), ZK_ERR_NULL_ARGUMENT);
    CHECK_EQ_INT(zk_dispatcher_event(d, 0, "/a", 0), ZK_ERR_INVALID_EVENT_TYPE);
    CHECK_EQ_INT(zk_dispatcher_event(d, 8, "/a", 0), ZK_ERR_INVALID_EVENT_TYPE);
    CHECK_EQ_INT(zk_dispatcher_event(d, -3, "/a", 0), ZK_ERR_INVALID_EVENT_TYPE);
    CHECK_EQ_INT(zk_dispatcher_event(d, INT32_MIN, "/a", 0), ZK_ERR_INVALID_EVENT_TYPE);
    flush(d);
    CHECK_EQ_INT(X->frees, 0);
    CHECK_EQ_UINT(id, 777);
    {
        zk_dispatcher_stats st = stats_of(d);
        CHECK_EQ_UINT(st.watches, 0);
        CHECK_EQ_UINT(st.listeners, 0);
        CHECK_EQ_UINT(st.events_fed, 0);
        CHECK_EQ_UINT(st.last_seq, 0);
    }

    /* valid unusual paths */
    {
        static const char *good[] = {"/",     "/a.b", "/..a", "/a/...", "/zookeeper",
                                     "/\xc3\xa9/x", "/a b", "/-_~",  "/.a.",   "/\xef\xbf\xaf",
                                     "/\xe4\xb8\xad/\xe6\x96\x87"};
        for (i = 0; i < ARRAY_LEN(good); i++) {
            struct ud *G = ud_new(50);
            check_set_context(good[i]);
            add_watch(d, good[i], ZK_WATCH_PERSISTENT, G);
            log_reset();
            feed(d, ZK_EVENT_TYPE_CHANGED, good[i]);
            flush(d);
            EXPECT_TAGS(50);
            CHECK_STR(log_at(0).path, good[i]);
            CHECK_EQ_INT(zk_watch_remove(d, G->id), ZK_OK);
            flush(d);
            CHECK_EQ_INT(G->frees, 1);
        }
        check_set_context(NULL);
    }

    /* ids are never reused; removal frees exactly once */
    {
        uint64_t ids[300];
        size_t j, dup = 0;
        for (i = 0; i < 300; i++) {
            struct ud *U = ud_new(60);
            if (i % 2 == 0) {
                ids[i] = add_watch(d, "/ids", (int32_t)(i % 4), U);
                CHECK_EQ_INT(zk_watch_remove(d, ids[i]), ZK_OK);
                CHECK_EQ_INT(zk_watch_remove(d, ids[i]), ZK_ERR_NOT_FOUND);
            } else {
                ids[i] = add_listener(d, U);
                CHECK_EQ_INT(zk_listener_remove(d, ids[i]), ZK_OK);
                CHECK_EQ_INT(zk_listener_remove(d, ids[i]), ZK_ERR_NOT_FOUND);
            }
            flush(d);
            CHECK_EQ_INT(U->frees, 1);
        }
        for (i = 0; i < 300; i++) {
            for (j = i + 1; j < 300; j++) {
                if (ids[i] == ids[j]) {
                    dup++;
                }
            }
        }
        CHECK_EQ_UINT(dup, 0);
        CHECK_EQ_INT(zk_watch_remove(d, 0), ZK_ERR_NOT_FOUND);
        CHECK_EQ_INT(zk_watch_remove(d, UINT64_MAX), ZK_ERR_NOT_FOUND);
        CHECK_EQ_INT(zk_watch_remove(NULL, ids[0]), ZK_ERR_NULL_ARGUMENT);
    }

    /* removing a one-shot that is popped but not started: OK, it never runs */
    {
        struct blocker b;
        struct ud *D = ud_new(70), *P = ud_new(71), *L = ud_new(72);
        add_watch(d, "/pop", ZK_WATCH_DATA, D);
        add_watch(d, "/pop", ZK_WATCH_PERSISTENT, P);
        add_listener(d, L);
        log_reset();
        block_dispatch(d, &b, 73);
        feed(d, ZK_EVENT_TYPE_CHANGED, "/pop");
        session(d, ZK_KEEPER_STATE_CONNECTED);
        CHECK_EQ_INT(zk_watch_remove(d, D->id), ZK_OK);
        CHECK_EQ_INT(zk_watch_remove(d, P->id), ZK_OK);
        CHECK_EQ_INT(zk_listener_remove(d, L->id), ZK_OK);
        unblock(&b);
        flush(d);
        EXPECT_TAGS(73);
        CHECK_EQ_INT(D->frees, 1);
        CHECK_EQ_INT(P->frees, 1);
        CHECK_EQ_INT(L->frees, 1);
        CHECK_EQ_INT(D->calls + P->calls + L->calls, 0);
    }

    /* NULL free_fn is allowed for watches and listeners */
    {
        uint64_t a = 0, l = 0;
        CHECK_EQ_INT(zk_watch_add(d, "/nofree", ZK_WATCH_DATA, watch_cb, X, NULL, &a), ZK_OK);
        CHECK_EQ_INT(zk_listener_add(d, listener_cb, X, NULL, &l), ZK_OK);
        CHECK_EQ_INT(zk_watch_remove(d, a), ZK_OK);
        CHECK_EQ_INT(zk_listener_remove(d, l), ZK_OK);
    }

    /* zk_dispatcher_free frees every still-registered watch and listener,
       exactly once, on the calling thread */
    {
        struct ud *K[4], *Ls[3];
        for (i = 0; i < 4; i++) {
            K[i] = ud_new(80 + (int)i);
            add_watch(d, i < 2 ? "/k" : "/k/deep", (int32_t)i, K[i]);
        }
        for (i = 0; i < 3; i++) {
            Ls[i] = ud_new(90 + (int)i);
            add_listener(d, Ls[i]);
        }
        zk_dispatcher_free(d);
        for (i = 0; i < 4; i++) {
            CHECK_EQ_INT(K[i]->frees, 1);
            CHECK_EQ_INT(K[i]->calls, 0);
            CHECK(K[i]->free_thread_set && pthread_equal(K[i]->free_thread, pthread_self()));
        }
        for (i = 0; i < 3; i++) {
            CHECK_EQ_INT(Ls[i]->frees, 1);
            CHECK(Ls[i]->free_thread_set && pthread_equal(Ls[i]->free_thread, pthread_self()));
        }
    }
    CHECK_EQ_INT(X->frees, 0);
}

/* ------------------------------------------------------------------------ */
/* Stats accounting                                                          */
/* ------------------------------------------------------------------------ */

static void test_stats(void)
{
    zk_dispatcher *d = zk_dispatcher_new();
    struct ud *P = ud_new(1), *L = ud_new(2), *D = ud_new(3);
    int i, fed = 0, matched = 0, unmatched = 0, ignored = 0, sessions = 0, submitted = 0;
    zk_dispatcher_stats st;

    add_watch(d, "/s", ZK_WATCH_PERSISTENT, P);
    add_watch(d, "/d", ZK_WATCH_DATA, D);
    add_listener(d, L);
    for (i = 0; i < 60; i++) {
        switch (i % 6) {
        case 0:
            feed(d, ZK_EVENT_TYPE_CHANGED, "/s");
            fed++;
            matched++;
            break;
        case 1:
            feed(d, ZK_EVENT_TYPE_CHANGED, "/nobody");
            fed++;
            unmatched++;
            break;
        case 2:
            feed(d, ZK_EVENT_TYPE_NOT_WATCHING, "/s");
            fed++;
            ignored++;
            break;
        case 3:
            session(d, i % 12 == 3 ? ZK_KEEPER_STATE_CONNECTED : ZK_KEEPER_STATE_CONNECTED_RO);
            sessions++;
            break;
        case 4: {
            struct ud *S = ud_new(4);
            submit(d, S);
            submitted++;
            break;
        }
        default:
            feed(d, ZK_EVENT_TYPE_CHILD, "/d"); /* a data watch ignores CHILD */
            fed++;
            unmatched++;
            break;
        }
    }
    flush(d);
    st = stats_of(d);
    CHECK_EQ_UINT(st.events_fed, fed);
    CHECK_EQ_UINT(st.events_matched, matched);
    CHECK_EQ_UINT(st.events_unmatched, unmatched);
    CHECK_EQ_UINT(st.events_ignored, ignored);
    CHECK_EQ_UINT(st.events_fed, st.events_matched + st.events_unmatched + st.events_ignored);
    CHECK_EQ_UINT(st.sessions_fed, sessions);
    CHECK_EQ_UINT(st.submitted, submitted);
    CHECK_EQ_UINT(st.submit_calls, submitted);
    CHECK_EQ_UINT(st.watch_calls, P->calls);
    CHECK_EQ_UINT(st.watch_calls, matched);
    CHECK_EQ_UINT(st.listener_calls, L->calls);
    CHECK_EQ_UINT(st.listener_calls, 1); /* CONNECTED and CONNECTED_RO are both CONNECTED */
    CHECK_EQ_UINT(st.last_seq, (unsigned)(fed + sessions + submitted));
    CHECK_EQ_UINT(st.queued, 0);
    CHECK_EQ_UINT(st.watches, 2);
    CHECK_EQ_UINT(st.listeners, 1);
    CHECK_EQ_UINT(st.refused_full, 0);
    CHECK_EQ_UINT(st.refused_closed, 0);
    CHECK_EQ_UINT(st.callback_panics, 0);
    CHECK_EQ_UINT(st.adapter_errors, 0);
    zk_dispatcher_free(d);
}

int main(void)
{
    test_lifecycle();
    test_one_shot_rules();
    test_persistent();
    test_order_within_event();
    test_event_state();
    test_chroot();
    test_sessions_kazoo();
    test_listener_self_removal();
    test_sessions_curator();
    test_sessions_keep_watches();
    test_ordering();
    test_flush_and_submit();
    test_reentrancy();
    test_free_from_callback();
    test_bounded_queue();
    test_ownership();
    test_stats();
    return check_summary("test_dispatch");
}
