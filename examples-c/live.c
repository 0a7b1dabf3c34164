/*
 * live.c: zk-states with the official ZooKeeper C client (libzookeeper-mt)
 * against a real server.
 *
 *   live [HOSTS] [NODE] [TIMEOUT]
 *        (defaults: 127.0.0.1:2181 /zk-states-live 15; TIMEOUT: seconds per step)
 *
 * Connects with zk_dispatcher_c_watcher as the C client's watcher, waits for
 * the connection (a state listener and a condition variable), creates NODE if
 * needed, reads its Stat with zoo_wget() and prints it the way kazoo does,
 * registers data, child, persistent and persistent-recursive watches through
 * the dispatcher, changes the node and its children so that they fire, prints
 * every watch event and kazoo state change, then closes everything. It stops
 * by itself: exit status 0 when every expected event arrived, 1 on any
 * failure or when a step (connecting, or the events of one change) takes
 * longer than TIMEOUT seconds, 2 for bad arguments.
 *
 * Persistent watches and the C client: the C client (3.8) has no AddWatch, so
 * the server only sends events for paths with one of the client's one-shot
 * watches (zoo_wget, zoo_wexists, zoo_wget_children). A ZK_WATCH_PERSISTENT or
 * ZK_WATCH_PERSISTENT_RECURSIVE watch registered with zk_watch_add() sees
 * exactly those events (the dispatcher matches them by path as ZooKeeper 3.6
 * would); to get every event of a path, re-arm the one-shot server watch
 * after each event, as this program does before deleting the child. A client
 * speaking the wire protocol itself can send AddWatch and feed each
 * notification with zk_notification_decode() + zk_dispatcher_event().
 *
 * Build: make -C examples-c (see examples-c/Makefile).
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <zookeeper/zookeeper.h>

#include "zk_states.h"

static int step_timeout = 15; /* seconds */

/* What the callbacks (on the dispatch thread) tell main(). */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t changed = PTHREAD_COND_INITIALIZER;
static zk_kazoo_state current_state = ZK_KAZOO_STATE_LOST;
static int watch_events;

static void print_event(const char *label, const zk_watched_event *ev) {
    /* ev->path is NUL-terminated here, or NULL for a session (NONE) event. */
    printf("  watch %-18s WatchedEvent(type='%s', state='%s', path=%s%s%s)\n", label,
           zk_event_type_name(ev->type), zk_keeper_state_name(ev->state), ev->path ? "'" : "",
           ev->path ? ev->path : "None", ev->path ? "'" : "");
    fflush(stdout);
}

static void on_watch(const zk_watched_event *ev, void *user_data) {
    print_event((const char *)user_data, ev);
    pthread_mutex_lock(&lock);
    if (ev->type != ZK_EVENT_TYPE_NONE) watch_events++;
    pthread_cond_broadcast(&changed);
    pthread_mutex_unlock(&lock);
}

static bool on_state(zk_kazoo_state state, void *user_data) {
    (void)user_data;
    printf("  listener KazooState.%s\n", zk_kazoo_state_name(state));
    fflush(stdout);
    pthread_mutex_lock(&lock);
    current_state = state;
    pthread_cond_broadcast(&changed);
    pthread_mutex_unlock(&lock);
    return false; /* true would remove the listener, as in kazoo */
}

/* Waits until the kazoo state is `state` (want_state) or until `events` watch
 * events have arrived; false after step_timeout seconds. */
static bool wait_for(bool want_state, zk_kazoo_state state, int events) {
    struct timespec deadline;
    bool ok;
    int rc = 0;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += step_timeout;
    pthread_mutex_lock(&lock);
    while (!(want_state ? current_state == state : watch_events >= events) && rc != ETIMEDOUT)
        rc = pthread_cond_timedwait(&changed, &lock, &deadline);
    ok = want_state ? current_state == state : watch_events >= events;
    pthread_mutex_unlock(&lock);
    return ok;
}

static bool watch(zk_dispatcher *d, const char *path, int32_t kind, const char *label) {
    uint64_t id;
    /* The label is a string literal: nothing to free (free_fn NULL). */
    int32_t rc = zk_watch_add(d, path, kind, on_watch, (void *)label, NULL, &id);
    if (rc != ZK_OK) fprintf(stderr, "zk_watch_add(%s): %s\n", path, zk_status_message(rc));
    return rc == ZK_OK;
}

static void print_stat(const struct Stat *stat) {
    /* The C client's struct Stat has zk_stat's exact layout. */
    const zk_stat *st = (const zk_stat *)stat;
    char text[ZK_STAT_FORMAT_MAX + 1];
    zk_stat_properties p;
    zk_stat_format(st, text, sizeof text);
    printf("  %s\n", text);
    if (zk_stat_properties_get(st, &p) != ZK_OK) return;
    printf("  created=%.3f last_modified=%.3f version=%d children_version=%d acl_version=%d\n"
           "  data_length=%d children_count=%d creation_transaction_id=%lld"
           " last_modified_transaction_id=%lld owner_session_id=",
           p.created, p.last_modified, p.version, p.children_version, p.acl_version, p.data_length,
           p.children_count, (long long)p.creation_transaction_id,
           (long long)p.last_modified_transaction_id);
    if (p.has_owner)
        printf("0x%llx\n", (unsigned long long)p.owner_session_id);
    else
        printf("None\n");
}

static bool zcheck(int rc, const char *what, const char *path) {
    if (rc == ZOK) return true;
    fprintf(stderr, "%s(%s): %s\n", what, path, zerror(rc));
    return false;
}

int main(int argc, char **argv) {
    const char *hosts = argc > 1 ? argv[1] : "127.0.0.1:2181";
    const char *node = argc > 2 ? argv[2] : "/zk-states-live";
    char child[512], buf[256];
    int len = (int)sizeof buf, rc, expected = 0;
    struct Stat stat;
    struct String_vector kids;
    zk_dispatcher *d;
    zhandle_t *zh;
    uint64_t listener_id;
    bool ok = false;

    if (argc > 3) step_timeout = atoi(argv[3]);
    if (argc > 4 || node[0] != '/' || strlen(node) > 400 || step_timeout <= 0) {
        fprintf(stderr, "usage: %s [HOSTS] [NODE] [TIMEOUT]\n"
                "  NODE: an absolute path; TIMEOUT: seconds per step (> 0)\n", argv[0]);
        return 2;
    }
    snprintf(child, sizeof child, "%s/child", node);
    zoo_set_debug_level(ZOO_LOG_LEVEL_WARN);
    printf("zk-states %s, ZooKeeper C client %s, server %s\n", zk_states_version(), ZOO_VERSION,
           hosts);

    d = zk_dispatcher_new();
    if (!d) { fprintf(stderr, "zk_dispatcher_new failed\n"); return 1; }
    if (zk_listener_add(d, on_state, NULL, NULL, &listener_id) != ZK_OK) {
        zk_dispatcher_free(d);
        return 1;
    }

    /* The adapter is the global watcher; its context is the dispatcher. */
    zh = zookeeper_init(hosts, zk_dispatcher_c_watcher, 10000, 0, d, 0);
    if (!zh) {
        perror("zookeeper_init");
        zk_dispatcher_free(d);
        return 1;
    }

    printf("connecting...\n");
    if (!wait_for(true, ZK_KAZOO_STATE_CONNECTED, 0)) {
        fprintf(stderr, "not connected to %s after %d s\n", hosts, step_timeout);
        goto out;
    }

    rc = zoo_create(zh, node, "hello", 5, &ZOO_OPEN_ACL_UNSAFE, 0, NULL, 0);
    if (rc != ZNODEEXISTS && !zcheck(rc, "zoo_create", node)) goto out;
    printf("%s %s\n", rc == ZOK ? "created" : "found", node);
    rc = zoo_delete(zh, child, -1); /* a leftover of an interrupted run */
    if (rc != ZNONODE && !zcheck(rc, "zoo_delete", child)) goto out;

    /* Dispatcher watches first, then the server-side one-shot watches: no
     * event can arrive before its callback is registered. */
    if (!watch(d, node, ZK_WATCH_DATA, "data") || !watch(d, node, ZK_WATCH_CHILD, "child")
        || !watch(d, node, ZK_WATCH_PERSISTENT, "persistent")
        || !watch(d, node, ZK_WATCH_PERSISTENT_RECURSIVE, "recursive"))
        goto out;
    /* zk_dispatcher_c_watcher as the per-node watcher, the dispatcher as context. */
    rc = zoo_wget(zh, node, zk_dispatcher_c_watcher, d, buf, &len, &stat);
    if (!zcheck(rc, "zoo_wget", node)) goto out;
    printf("%s holds %d bytes:\n", node, len);
    print_stat(&stat);
    rc = zoo_wget_children(zh, node, zk_dispatcher_c_watcher, d, &kids);
    if (!zcheck(rc, "zoo_wget_children", node)) goto out;
    deallocate_String_vector(&kids);

    /* 1. Data change: the data watch, the persistent and the recursive watch. */
    printf("set %s\n", node);
    if (!zcheck(zoo_set(zh, node, "changed", 7, -1), "zoo_set", node)) goto out;
    if (!wait_for(false, 0, expected += 3)) goto timeout;

    /* 2. A child appears: the child watch and the persistent watch (a
     *    recursive watch never sees CHILD events). */
    printf("create %s\n", child);
    rc = zoo_create(zh, child, "c", 1, &ZOO_OPEN_ACL_UNSAFE, 0, NULL, 0);
    if (!zcheck(rc, "zoo_create", child)) goto out;
    if (!wait_for(false, 0, expected += 2)) goto timeout;

    /* 3. The child goes: re-arm the server's one-shot watches (the exists
     *    watch on the child makes the server send its DELETED, which the
     *    recursive watch on the parent sees), then delete. */
    if (!watch(d, child, ZK_WATCH_DATA, "child-data") || !watch(d, node, ZK_WATCH_CHILD, "child-again"))
        goto out;
    rc = zoo_wexists(zh, child, zk_dispatcher_c_watcher, d, &stat);
    if (!zcheck(rc, "zoo_wexists", child)) goto out;
    rc = zoo_wget_children(zh, node, zk_dispatcher_c_watcher, d, &kids);
    if (!zcheck(rc, "zoo_wget_children", node)) goto out;
    deallocate_String_vector(&kids);
    printf("delete %s\n", child);
    if (!zcheck(zoo_delete(zh, child, -1), "zoo_delete", child)) goto out;
    if (!wait_for(false, 0, expected += 4)) goto timeout;

    len = (int)sizeof buf;
    if (!zcheck(zoo_get(zh, node, 0, buf, &len, &stat), "zoo_get", node)) goto out;
    printf("%s now:\n", node);
    print_stat(&stat);
    ok = true;
    goto out;

timeout:
    pthread_mutex_lock(&lock);
    fprintf(stderr, "timed out: %d of %d watch events after %d s\n", watch_events, expected,
            step_timeout);
    pthread_mutex_unlock(&lock);
out:
    /* The C client reports no final state: feed CLOSED so that listeners see
     * LOST and the remaining (persistent) watches their NONE event. */
    printf("closing\n");
    zookeeper_close(zh);
    zk_dispatcher_session(d, ZK_KEEPER_STATE_CLOSED);
    zk_dispatcher_flush(d);
    zk_dispatcher_free(d);
    printf("%s\n", ok ? "done" : "FAILED");
    return ok ? 0 : 1;
}
