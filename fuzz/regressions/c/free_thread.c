/*
 * KNOWN ISSUES watch-free-thread and listener-free-thread (fuzz/KNOWN_ISSUES.md):
 * where a removal's free function runs.
 *
 * include/zk_states.h, zk_watch_remove(): "free_fn runs on the dispatch thread
 * once the events queued before the removal have been passed (so never during
 * a call)"; zk_listener_remove(): "the same guarantees as zk_watch_remove()".
 *
 * This program registers and removes watches (then listeners) and records the
 * thread each free function runs on. It exits 0 when every free ran on the
 * dispatch thread, 1 (printing the counts) otherwise. Found by the
 * dispatcher_script fuzz target.
 *
 * Build: gcc -std=c99 -Iinclude free_thread.c -Ltarget/debug -lzk_states -lpthread
 */
#include <pthread.h>
#include <stdio.h>

#include "zk_states.h"

static pthread_t dispatch_thread;
static unsigned on_caller, on_dispatch;

static void probe(void *args)
{
    (void)args;
    dispatch_thread = pthread_self();
}

static void watch_cb(const zk_watched_event *event, void *user_data)
{
    (void)event;
    (void)user_data;
}

static bool listener_cb(zk_kazoo_state state, void *user_data)
{
    (void)state;
    (void)user_data;
    return false;
}

static void free_fn(void *user_data)
{
    (void)user_data;
    if (pthread_equal(pthread_self(), dispatch_thread)) {
        on_dispatch++;
    } else {
        on_caller++;
    }
}

static int run(int listeners, int rounds)
{
    zk_dispatcher *d = zk_dispatcher_new();
    int i;
    on_caller = on_dispatch = 0;
    if (d == NULL || zk_dispatcher_submit(d, probe, NULL, NULL) != ZK_OK || zk_dispatcher_flush(d) != ZK_OK) {
        fprintf(stderr, "setup failed\n");
        return 2;
    }
    /* Without a flush in between, the dispatch thread is busy (or spinning)
     * while the removals happen: the race window of the watch case. */
    for (i = 0; i < rounds && on_caller == 0; i++) {
        uint64_t id;
        int32_t rc;
        if (listeners) {
            rc = zk_listener_add(d, listener_cb, NULL, free_fn, &id);
            if (rc == ZK_OK) rc = zk_listener_remove(d, id);
        } else {
            rc = zk_watch_add(d, "/a", ZK_WATCH_PERSISTENT, watch_cb, NULL, free_fn, &id);
            if (rc == ZK_OK) rc = zk_watch_remove(d, id);
        }
        if (rc != ZK_OK) {
            fprintf(stderr, "unexpected status %d\n", (int)rc);
            return 2;
        }
        if (i % 256 == 0) {
            (void)zk_dispatcher_flush(d);
        }
    }
    (void)zk_dispatcher_flush(d);
    zk_dispatcher_free(d);
    printf("%s: free_fn ran on the calling thread %u times, on the dispatch thread %u times\n",
           listeners ? "zk_listener_remove" : "zk_watch_remove", on_caller, on_dispatch);
    return on_caller != 0;
}

int main(void)
{
    int watch = run(0, 2000000);
    int listener = run(1, 2000000);
    if (watch == 1) {
        printf("KNOWN ISSUE watch-free-thread reproduced\n");
    }
    if (listener == 1) {
        printf("KNOWN ISSUE listener-free-thread reproduced\n");
    }
    return (watch || listener) ? 1 : 0;
}
