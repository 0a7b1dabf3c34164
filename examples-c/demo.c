/*
 * demo.c: zk-states in one page. Decodes a znode Stat and a watch
 * notification straight off the wire and prints them the way kazoo does, then
 * feeds a dispatcher a short session story and prints every callback.
 *
 * Build and run: scripts/demo
 */
#include <stdio.h>
#include <string.h>

#include "zk_states.h"

static void put64(uint8_t *p, int64_t v) {
    for (int i = 7; i >= 0; i--) { p[i] = (uint8_t)(v & 0xff); v = (int64_t)((uint64_t)v >> 8); }
}

static void put32(uint8_t *p, int32_t v) {
    for (int i = 3; i >= 0; i--) { p[i] = (uint8_t)(v & 0xff); v = (int32_t)((uint32_t)v >> 8); }
}

static void on_watch(const zk_watched_event *ev, void *user_data) {
    /* ev->path is NUL-terminated here, or NULL for a session (NONE) event. */
    char path[256];
    if (ev->path)
        snprintf(path, sizeof path, "'%s'", ev->path);
    else
        snprintf(path, sizeof path, "None");
    printf("  [seq %2llu] watch %-6s WatchedEvent(type='%s', state='%s', path=%s)\n",
           (unsigned long long)zk_dispatch_current_seq(), (const char *)user_data,
           zk_event_type_name(ev->type), zk_keeper_state_name(ev->state), path);
}

static bool on_state(zk_kazoo_state state, void *user_data) {
    (void)user_data;
    printf("  [seq %2llu] listener KazooState.%s\n", (unsigned long long)zk_dispatch_current_seq(),
           zk_kazoo_state_name(state));
    return false;
}

static int check(int32_t rc, const char *what) {
    if (rc != ZK_OK) { fprintf(stderr, "%s: %s\n", what, zk_status_message(rc)); return 1; }
    return 0;
}

int main(void) {
    printf("zk-states %s (ABI %u)\n\n", zk_states_version(), (unsigned)zk_states_abi_version());

    /* A Stat as a server sends it: 68 big-endian bytes. */
    uint8_t wire[ZK_STAT_WIRE_SIZE];
    put64(wire + 0, 4294967298LL);   /* czxid */
    put64(wire + 8, 4294967301LL);   /* mzxid */
    put64(wire + 16, 1732550400123LL); /* ctime, ms */
    put64(wire + 24, 1732550461500LL); /* mtime, ms */
    put32(wire + 32, 3);             /* version */
    put32(wire + 36, 0);             /* cversion */
    put32(wire + 40, 0);             /* aversion */
    put64(wire + 44, 0x1000a2b3c4d0001LL); /* ephemeralOwner */
    put32(wire + 52, 11);            /* dataLength */
    put32(wire + 56, 0);             /* numChildren */
    put64(wire + 60, 4294967298LL);  /* pzxid */

    zk_stat stat;
    if (check(zk_stat_decode(wire, sizeof wire, &stat), "zk_stat_decode")) return 1;
    char text[ZK_STAT_FORMAT_MAX + 1];
    zk_stat_format(&stat, text, sizeof text);
    printf("%s\n", text);
    zk_stat_properties props;
    if (check(zk_stat_properties_get(&stat, &props), "zk_stat_properties_get")) return 1;
    printf("  created=%.3f last_modified=%.3f version=%d data_length=%d children_count=%d\n",
           props.created, props.last_modified, props.version, props.data_length, props.children_count);
    if (props.has_owner)
        printf("  owner_session_id=0x%llx (ephemeral)\n\n", (unsigned long long)props.owner_session_id);
    else
        printf("  owner_session_id=None\n\n");

    /* A watch notification: reply header (xid -1, zxid, err) + WatcherEvent. */
    const char *path = "/app/config";
    uint8_t note[16 + 12 + 32];
    size_t n = 0;
    put32(note + n, -1); n += 4;
    put64(note + n, 4294967302LL); n += 8;
    put32(note + n, 0); n += 4;
    put32(note + n, ZK_EVENT_TYPE_CHANGED); n += 4;
    put32(note + n, 3 /* SyncConnected on the wire */); n += 4;
    put32(note + n, (int32_t)strlen(path)); n += 4;
    memcpy(note + n, path, strlen(path)); n += strlen(path);
    zk_watched_event ev;
    if (check(zk_notification_decode(note, n, &ev), "zk_notification_decode")) return 1;
    printf("WatchedEvent(type='%s', state='%s', path='%.*s') zxid=0x%llx\n\n", zk_event_type_name(ev.type),
           zk_keeper_state_name(ev.state), (int)ev.path_len, ev.path, (unsigned long long)ev.zxid);

    /* The dispatcher: kazoo's watch and listener bookkeeping on its own thread. */
    zk_dispatcher *d = zk_dispatcher_new();
    if (!d) return 1;
    uint64_t id;
    if (check(zk_listener_add(d, on_state, NULL, NULL, &id), "zk_listener_add")) return 1;
    if (check(zk_watch_add(d, "/app/config", ZK_WATCH_DATA, on_watch, (void *)"data", NULL, &id), "watch")) return 1;
    if (check(zk_watch_add(d, "/app", ZK_WATCH_CHILD, on_watch, (void *)"child", NULL, &id), "watch")) return 1;
    if (check(zk_watch_add(d, "/app", ZK_WATCH_PERSISTENT_RECURSIVE, on_watch, (void *)"tree", NULL, &id), "watch"))
        return 1;

    printf("session story:\n");
    zk_dispatcher_session(d, ZK_KEEPER_STATE_CONNECTING);   /* from CLOSED: nothing */
    zk_dispatcher_session(d, ZK_KEEPER_STATE_CONNECTED);    /* CONNECTED */
    zk_dispatcher_event(d, ev.type, "/app/config", ev.zxid); /* data + tree fire; data is gone */
    zk_dispatcher_event(d, ZK_EVENT_TYPE_CHANGED, "/app/config", ev.zxid + 1); /* only tree */
    zk_dispatcher_session(d, ZK_KEEPER_STATE_CONNECTING);   /* SUSPENDED: child fires NONE */
    zk_dispatcher_session(d, ZK_KEEPER_STATE_CONNECTED);    /* CONNECTED again */
    zk_dispatcher_session(d, ZK_KEEPER_STATE_EXPIRED_SESSION); /* LOST: tree fires NONE, all reset */
    if (check(zk_dispatcher_flush(d), "zk_dispatcher_flush")) return 1;

    zk_dispatcher_stats stats;
    zk_dispatcher_stats_get(d, &stats);
    printf("\n%llu watch calls, %llu listener calls, %llu watches left\n", (unsigned long long)stats.watch_calls,
           (unsigned long long)stats.listener_calls, (unsigned long long)stats.watches);
    zk_dispatcher_free(d);
    return 0;
}
