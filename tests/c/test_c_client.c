/*
 * test_c_client.c: cross-checks against the official ZooKeeper C client
 * (libzookeeper-mt), built only when its headers and library are installed:
 *
 *   - the C client's ZOO_*_EVENT constants equal the zk_event_type values,
 *     and every ZOO_*_STATE converts as the zk_keeper_state_from_c_client()
 *     table says;
 *   - zk_stat_encode() is byte-identical to the C client's serialize_Stat(),
 *     and zk_stat_decode() reads what it writes;
 *   - a WatcherEvent and a whole notification (ReplyHeader + WatcherEvent)
 *     serialized by the C client decode with zk_watched_event_decode() and
 *     zk_notification_decode();
 *   - zk_dispatcher_c_watcher(), the documented watcher_fn adapter, feeds
 *     session and node events into a dispatcher and counts what it cannot
 *     convert in adapter_errors.
 *
 * Built with -std=c99 -Wall -Wextra -Werror -pedantic -pthread, linked with
 * -lzookeeper_mt. No ZooKeeper server is needed.
 */
#define _POSIX_C_SOURCE 200809L

#include <zookeeper/recordio.h>
#include <zookeeper/zookeeper.h>
#include <zookeeper/zookeeper.jute.h>

#include "zk_test_util.h"

static void test_constants(void)
{
    zk_keeper_state s;
    CHECK_EQ_INT(ZOO_CREATED_EVENT, ZK_EVENT_TYPE_CREATED);
    CHECK_EQ_INT(ZOO_DELETED_EVENT, ZK_EVENT_TYPE_DELETED);
    CHECK_EQ_INT(ZOO_CHANGED_EVENT, ZK_EVENT_TYPE_CHANGED);
    CHECK_EQ_INT(ZOO_CHILD_EVENT, ZK_EVENT_TYPE_CHILD);
    CHECK_EQ_INT(ZOO_SESSION_EVENT, ZK_EVENT_TYPE_NONE);
    CHECK_EQ_INT(ZOO_NOTWATCHING_EVENT, ZK_EVENT_TYPE_NOT_WATCHING);

    /* the numeric codes the header's table lists */
    CHECK_EQ_INT(ZOO_CONNECTING_STATE, 1);
    CHECK_EQ_INT(ZOO_ASSOCIATING_STATE, 2);
    CHECK_EQ_INT(ZOO_CONNECTED_STATE, 3);
    CHECK_EQ_INT(ZOO_READONLY_STATE, 5);
    CHECK_EQ_INT(ZOO_EXPIRED_SESSION_STATE, -112);
    CHECK_EQ_INT(ZOO_AUTH_FAILED_STATE, -113);
    CHECK_EQ_INT(ZOO_NOTCONNECTED_STATE, 999);

#define EXPECT_C_STATE(code, want)                                                         \
    do {                                                                                   \
        s = 0x5A5A;                                                                        \
        CHECK_EQ_INT(zk_keeper_state_from_c_client((code), &s), ZK_OK);                    \
        CHECK_EQ_INT(s, (want));                                                           \
    } while (0)
    EXPECT_C_STATE(ZOO_CONNECTING_STATE, ZK_KEEPER_STATE_CONNECTING);
    EXPECT_C_STATE(ZOO_ASSOCIATING_STATE, ZK_KEEPER_STATE_CONNECTING);
    EXPECT_C_STATE(ZOO_CONNECTED_STATE, ZK_KEEPER_STATE_CONNECTED);
    EXPECT_C_STATE(ZOO_READONLY_STATE, ZK_KEEPER_STATE_CONNECTED_RO);
    EXPECT_C_STATE(ZOO_EXPIRED_SESSION_STATE, ZK_KEEPER_STATE_EXPIRED_SESSION);
    EXPECT_C_STATE(ZOO_AUTH_FAILED_STATE, ZK_KEEPER_STATE_AUTH_FAILED);
    EXPECT_C_STATE(ZOO_NOTCONNECTED_STATE, ZK_KEEPER_STATE_CLOSED);
#undef EXPECT_C_STATE
}

static void test_stat_serialization(void)
{
    int i;
    uint64_t rng = UINT64_C(0x1234567887654321);
    for (i = 0; i < 200; i++) {
        struct Stat st;
        struct oarchive *oa = create_buffer_oarchive();
        uint8_t ours[ZK_STAT_WIRE_SIZE];
        zk_stat back;
        int j;
        int64_t *f64[] = {&st.czxid, &st.mzxid, &st.ctime, &st.mtime, &st.ephemeralOwner,
                          &st.pzxid};
        int32_t *f32[] = {&st.version, &st.cversion, &st.aversion, &st.dataLength,
                          &st.numChildren};
        memset(&st, 0, sizeof st);
        for (j = 0; j < 6; j++) {
            rng = rng * UINT64_C(6364136223846793005) + UINT64_C(1442695040888963407);
            /* any 64-bit pattern, negative ones included */
            *f64[j] = (int64_t)(rng >> 1) - (int64_t)((rng & 1) ? INT64_MAX / 2 : 0) -
                      (int64_t)((rng & 2) ? INT64_MAX / 2 : 0);
        }
        for (j = 0; j < 5; j++) {
            rng = rng * UINT64_C(6364136223846793005) + UINT64_C(1442695040888963407);
            *f32[j] = (int32_t)((int64_t)(rng >> 32) - INT64_C(0x80000000));
        }
        if (i == 0) {
            st.czxid = INT64_MIN;
            st.pzxid = INT64_MAX;
            st.version = INT32_MIN;
            st.numChildren = INT32_MAX;
        }
        CHECK(oa != NULL);
        if (oa == NULL) {
            return;
        }
        CHECK_EQ_INT(serialize_Stat(oa, "stat", &st), 0);
        CHECK_EQ_INT(get_buffer_len(oa), ZK_STAT_WIRE_SIZE);
        CHECK_EQ_INT(zk_stat_encode((const zk_stat *)(const void *)&st, ours, sizeof ours), ZK_OK);
        CHECK_MEM(ours, get_buffer(oa), ZK_STAT_WIRE_SIZE);
        memset(&back, 0, sizeof back);
        CHECK_EQ_INT(zk_stat_decode((const uint8_t *)get_buffer(oa), (size_t)get_buffer_len(oa),
                                    &back),
                     ZK_OK);
        CHECK(memcmp(&back.czxid, &st.czxid, 8) == 0 && back.pzxid == st.pzxid &&
              back.ephemeral_owner == st.ephemeralOwner && back.num_children == st.numChildren &&
              back.version == st.version && back.data_length == st.dataLength);
        close_buffer_oarchive(&oa, 1);
    }
}

static void test_event_serialization(void)
{
    static const struct {
        int32_t type, state;
        const char *path;
    } cases[] = {
        {1, 3, "/created"}, {2, 3, "/deleted/x"}, {3, 5, "/changed"}, {4, 3, "/"},
        {-1, -112, ""},     {-1, 0, ""},          {5, 3, "/removed"}, {3, 6, "/\xc3\xa9"},
    };
    size_t i;
    for (i = 0; i < ARRAY_LEN(cases); i++) {
        struct WatcherEvent we;
        struct ReplyHeader h;
        struct oarchive *oa = create_buffer_oarchive();
        zk_watched_event ev;
        zk_keeper_state want_state = 0;
        const uint8_t *buf;
        we.type = cases[i].type;
        we.state = cases[i].state;
        we.path = (char *)(uintptr_t)cases[i].path; /* serialize_String does not write */
        CHECK_EQ_INT(zk_keeper_state_from_wire(cases[i].state, &want_state), ZK_OK);

        CHECK_EQ_INT(serialize_WatcherEvent(oa, "event", &we), 0);
        buf = (const uint8_t *)get_buffer(oa);
        memset(&ev, 0xA5, sizeof ev);
        CHECK_EQ_INT(zk_watched_event_decode(buf, (size_t)get_buffer_len(oa), &ev), ZK_OK);
        CHECK_EQ_INT(ev.type, cases[i].type);
        CHECK_EQ_INT(ev.state, want_state);
        CHECK_EQ_UINT(ev.path_len, strlen(cases[i].path));
        CHECK(ev.path != NULL && memcmp(ev.path, cases[i].path, ev.path_len) == 0);
        CHECK(ev.path == (const char *)buf + 12);
        CHECK_EQ_INT(ev.zxid, ZK_ZXID_UNKNOWN);
        close_buffer_oarchive(&oa, 1);

        oa = create_buffer_oarchive();
        h.xid = -1;
        h.zxid = INT64_C(0x500000000) + (int64_t)i;
        h.err = (int32_t)i;
        CHECK_EQ_INT(serialize_ReplyHeader(oa, "header", &h), 0);
        CHECK_EQ_INT(serialize_WatcherEvent(oa, "event", &we), 0);
        buf = (const uint8_t *)get_buffer(oa);
        memset(&ev, 0xA5, sizeof ev);
        CHECK_EQ_INT(zk_notification_decode(buf, (size_t)get_buffer_len(oa), &ev), ZK_OK);
        CHECK_EQ_INT(ev.zxid, h.zxid);
        CHECK_EQ_INT(ev.type, cases[i].type);
        CHECK_EQ_INT(ev.state, want_state);
        CHECK(ev.path == (const char *)buf + 28);
        close_buffer_oarchive(&oa, 1);

        /* a reply to a request (xid != -1) is not a notification */
        oa = create_buffer_oarchive();
        h.xid = 42;
        CHECK_EQ_INT(serialize_ReplyHeader(oa, "header", &h), 0);
        CHECK_EQ_INT(serialize_WatcherEvent(oa, "event", &we), 0);
        CHECK_EQ_INT(zk_notification_decode((const uint8_t *)get_buffer(oa),
                                            (size_t)get_buffer_len(oa), &ev),
                     ZK_ERR_NOT_A_NOTIFICATION);
        close_buffer_oarchive(&oa, 1);
    }
}

static void test_c_watcher_adapter(void)
{
    zk_dispatcher *d = zk_dispatcher_new();
    struct ud *L = ud_new(1), *D = ud_new(2), *P = ud_new(3);
    zk_dispatcher_stats st;
    watcher_fn fn = zk_dispatcher_c_watcher; /* exactly the C client's watcher_fn type */
    zk_kazoo_state k;
    zk_keeper_state s;

    add_listener(d, L);
    add_watch(d, "/node", ZK_WATCH_DATA, D);
    add_watch(d, "/node", ZK_WATCH_PERSISTENT, P);
    log_reset();
    fn(NULL, ZOO_SESSION_EVENT, ZOO_CONNECTING_STATE, "", d);
    fn(NULL, ZOO_SESSION_EVENT, ZOO_CONNECTED_STATE, "", d);
    fn(NULL, ZOO_SESSION_EVENT, ZOO_CONNECTED_STATE, "", d); /* a per-node watcher's copy */
    fn(NULL, ZOO_CHANGED_EVENT, ZOO_CONNECTED_STATE, "/node", d);
    fn(NULL, ZOO_CHILD_EVENT, ZOO_CONNECTED_STATE, "/node", d);
    fn(NULL, ZOO_NOTWATCHING_EVENT, ZOO_CONNECTED_STATE, "/node", d);
    flush(d);
    EXPECT_TAGS(1, 2, 3, 3);
    CHECK_EQ_INT(log_at(0).state, ZK_KAZOO_STATE_CONNECTED);
    CHECK_EQ_INT(log_at(1).type, ZK_EVENT_TYPE_CHANGED);
    CHECK_EQ_INT(log_at(1).zxid, ZK_ZXID_UNKNOWN);
    CHECK_EQ_INT(log_at(1).state, ZK_KEEPER_STATE_CONNECTED);
    CHECK_STR(log_at(1).path, "/node");
    CHECK_EQ_INT(log_at(3).type, ZK_EVENT_TYPE_CHILD);
    CHECK_EQ_INT(zk_dispatcher_state(d, &k, &s), ZK_OK);
    CHECK_EQ_INT(s, ZK_KEEPER_STATE_CONNECTED);
    st = stats_of(d);
    CHECK_EQ_UINT(st.sessions_fed, 3);
    CHECK_EQ_UINT(st.events_ignored, 1);
    CHECK_EQ_UINT(st.adapter_errors, 0);

    /* what it cannot convert is counted */
    fn(NULL, 99, ZOO_CONNECTED_STATE, "/node", d);        /* unknown type */
    fn(NULL, ZOO_SESSION_EVENT, 12345, "", d);             /* unknown state */
    fn(NULL, ZOO_CHANGED_EVENT, ZOO_CONNECTED_STATE, "node", d); /* invalid path */
    fn(NULL, ZOO_CHANGED_EVENT, ZOO_CONNECTED_STATE, NULL, d);   /* no path */
    fn(NULL, ZOO_SESSION_EVENT, ZOO_CONNECTED_STATE, "", NULL);  /* no dispatcher: ignored */
    flush(d);
    st = stats_of(d);
    CHECK_EQ_UINT(st.adapter_errors, 4);
    CHECK_EQ_UINT(st.events_fed, 3);

    /* a lost session through the adapter */
    log_reset();
    fn(NULL, ZOO_SESSION_EVENT, ZOO_EXPIRED_SESSION_STATE, "", d);
    flush(d);
    EXPECT_TAGS(1, 3);
    CHECK_EQ_INT(log_at(0).state, ZK_KAZOO_STATE_LOST);
    CHECK_EQ_INT(log_at(1).type, ZK_EVENT_TYPE_NONE);
    CHECK_EQ_INT(log_at(1).state, ZK_KEEPER_STATE_EXPIRED_SESSION);
    zk_dispatcher_free(d);
}

int main(void)
{
    test_constants();
    test_stat_serialization();
    test_event_serialization();
    test_c_watcher_adapter();
    return check_summary("test_c_client");
}
