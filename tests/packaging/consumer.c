/*
 * consumer.c: a minimal program using an *installed* zk-states, the way a
 * downstream project would: found through pkg-config or CMake's
 * find_package(zk_states), linked against the shared or the static library.
 *
 * Built and run by tests/py/test_packaging.py; prints "consumer ok <version>"
 * and exits 0 when every check passes.
 */
#include <zk_states.h>

#include <stdio.h>
#include <string.h>

static int failures;

#define EXPECT(cond)                                                          \
    do {                                                                      \
        if (!(cond)) {                                                        \
            fprintf(stderr, "consumer.c:%d: check failed: %s\n", __LINE__, #cond); \
            failures++;                                                       \
        }                                                                     \
    } while (0)

static void put_be(uint8_t *p, uint64_t v, int bytes)
{
    int i;
    for (i = bytes - 1; i >= 0; i--) {
        p[i] = (uint8_t)(v & 0xffu);
        v >>= 8;
    }
}

static void on_submit(void *args)
{
    int *ran = (int *)args;
    (*ran)++;
}

static void on_watch(const zk_watched_event *ev, void *user_data)
{
    int *fired = (int *)user_data;
    if (ev->type == ZK_EVENT_TYPE_CHANGED && ev->path != NULL && strcmp(ev->path, "/app") == 0)
        (*fired)++;
}

static bool on_state(zk_kazoo_state state, void *user_data)
{
    int *seen = (int *)user_data;
    if (state == ZK_KAZOO_STATE_CONNECTED)
        (*seen)++;
    return false;
}

int main(void)
{
    /* The header and the library agree on the version and the ABI. */
    char expect_version[32];
    snprintf(expect_version, sizeof expect_version, "%d.%d.%d", ZK_STATES_VERSION_MAJOR,
             ZK_STATES_VERSION_MINOR, ZK_STATES_VERSION_PATCH);
    EXPECT(strcmp(zk_states_version(), ZK_STATES_VERSION) == 0);
    EXPECT(strncmp(ZK_STATES_VERSION, expect_version, strlen(expect_version)) == 0);
    EXPECT(zk_states_abi_version() == ZK_STATES_ABI_VERSION);
    EXPECT(strcmp(zk_status_message(ZK_OK), "") != 0);

    /* A Stat off the wire: decode, then kazoo's repr. */
    uint8_t wire[ZK_STAT_WIRE_SIZE];
    memset(wire, 0, sizeof wire);
    put_be(wire + 0, 1, 8);       /* czxid */
    put_be(wire + 8, 2, 8);       /* mzxid */
    put_be(wire + 16, 3, 8);      /* ctime */
    put_be(wire + 24, 4, 8);      /* mtime */
    put_be(wire + 32, 5, 4);      /* version */
    put_be(wire + 36, 6, 4);      /* cversion */
    put_be(wire + 40, 7, 4);      /* aversion */
    put_be(wire + 44, 8, 8);      /* ephemeralOwner */
    put_be(wire + 52, 9, 4);      /* dataLength */
    put_be(wire + 56, 10, 4);     /* numChildren */
    put_be(wire + 60, 11, 8);     /* pzxid */
    zk_stat stat;
    EXPECT(zk_stat_decode(wire, sizeof wire, &stat) == ZK_OK);
    EXPECT(stat.pzxid == 11 && stat.num_children == 10);
    EXPECT(zk_stat_is_ephemeral(&stat));
    char text[ZK_STAT_FORMAT_MAX + 1];
    size_t n = zk_stat_format(&stat, text, sizeof text);
    static const char want[] =
        "ZnodeStat(czxid=1, mzxid=2, ctime=3, mtime=4, version=5, cversion=6, aversion=7, "
        "ephemeralOwner=8, dataLength=9, numChildren=10, pzxid=11)";
    EXPECT(n == strlen(want));
    EXPECT(strcmp(text, want) == 0);
    EXPECT(zk_stat_decode(wire, ZK_STAT_WIRE_SIZE - 1, &stat) == ZK_ERR_TRUNCATED);

    /* A dispatcher round trip: a session, a watch, a listener, a callback. */
    zk_dispatcher *d = zk_dispatcher_new();
    EXPECT(d != NULL);
    if (d != NULL) {
        int fired = 0, seen = 0, ran = 0;
        uint64_t watch_id = 0, listener_id = 0;
        zk_kazoo_state kazoo = ZK_KAZOO_STATE_LOST;
        zk_keeper_state keeper = ZK_KEEPER_STATE_CLOSED;
        zk_dispatcher_stats stats;
        EXPECT(zk_listener_add(d, on_state, &seen, NULL, &listener_id) == ZK_OK);
        EXPECT(zk_watch_add(d, "/app", ZK_WATCH_DATA, on_watch, &fired, NULL, &watch_id) == ZK_OK);
        EXPECT(zk_dispatcher_session(d, ZK_KEEPER_STATE_CONNECTED) == ZK_OK);
        EXPECT(zk_dispatcher_event(d, ZK_EVENT_TYPE_CHANGED, "/app", 42) == ZK_OK);
        EXPECT(zk_dispatcher_submit(d, on_submit, &ran, NULL) == ZK_OK);
        EXPECT(zk_dispatcher_flush(d) == ZK_OK);
        EXPECT(fired == 1 && seen == 1 && ran == 1);
        EXPECT(zk_dispatcher_state(d, &kazoo, &keeper) == ZK_OK);
        EXPECT(kazoo == ZK_KAZOO_STATE_CONNECTED && keeper == ZK_KEEPER_STATE_CONNECTED);
        EXPECT(zk_watch_remove(d, watch_id) == ZK_ERR_NOT_FOUND); /* a fired one-shot is gone */
        EXPECT(zk_dispatcher_stats_get(d, &stats) == ZK_OK);
        EXPECT(stats.events_fed == 1 && stats.watch_calls == 1 && stats.submit_calls == 1);
        zk_dispatcher_free(d);
    }

    if (failures != 0) {
        fprintf(stderr, "consumer: %d check(s) failed\n", failures);
        return 1;
    }
    printf("consumer ok %s\n", zk_states_version());
    return 0;
}
