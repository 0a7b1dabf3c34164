// live.cpp: live.c in idiomatic C++17. zk-states with the official ZooKeeper
// C client (libzookeeper-mt) against a real server.
//
//   live_cpp [HOSTS] [NODE] [TIMEOUT]
//        (defaults: 127.0.0.1:2181 /zk-states-live-cpp 15; TIMEOUT: seconds per step)
//
// RAII owns the dispatcher and the C client's handle (std::unique_ptr with
// custom deleters; the handle is closed before the dispatcher is freed),
// callbacks are lambdas behind user_data trampolines (the library frees each
// std::function exactly once through the free function), and the main thread
// waits on a condition variable. Exit status 0 when every expected event
// arrived, 1 on failure or timeout, 2 for bad arguments.
//
// Persistent watches: the C client has no AddWatch, so a ZK_WATCH_PERSISTENT
// or ZK_WATCH_PERSISTENT_RECURSIVE watch only sees the events the server sends
// for the client's one-shot watches (zoo_wget, zoo_wexists,
// zoo_wget_children); see live.c.
//
// Build: make -C examples-c (see examples-c/Makefile).

#include <zookeeper/zookeeper.h>

#include "zk_states.h"

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <utility>

namespace {

using WatchFn = std::function<void(const zk_watched_event &)>;
using ListenerFn = std::function<bool(zk_kazoo_state)>;

// Trampolines: C function pointers that call the std::function in user_data.
// Callbacks must not unwind into the library, so exceptions stop here.
extern "C" void watch_trampoline(const zk_watched_event *event, void *user_data) {
    try {
        (*static_cast<WatchFn *>(user_data))(*event);
    } catch (const std::exception &e) {
        std::fprintf(stderr, "watch callback threw: %s\n", e.what());
    } catch (...) {
        std::fprintf(stderr, "watch callback threw\n");
    }
}

extern "C" bool listener_trampoline(zk_kazoo_state state, void *user_data) {
    try {
        return (*static_cast<ListenerFn *>(user_data))(state);
    } catch (...) {
        std::fprintf(stderr, "listener threw\n");
        return false;
    }
}

extern "C" void delete_watch_fn(void *user_data) { delete static_cast<WatchFn *>(user_data); }
extern "C" void delete_listener_fn(void *user_data) { delete static_cast<ListenerFn *>(user_data); }

struct ZkStatesError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

void check(int32_t status, const std::string &what) {
    if (status != ZK_OK) throw ZkStatesError(what + ": " + zk_status_message(status));
}

void zcheck(int rc, const std::string &what) {
    if (rc != ZOK) throw std::runtime_error(what + ": " + zerror(rc));
}

// The dispatcher, freed by zk_dispatcher_free.
struct DispatcherDeleter {
    void operator()(zk_dispatcher *d) const noexcept { zk_dispatcher_free(d); }
};
using Dispatcher = std::unique_ptr<zk_dispatcher, DispatcherDeleter>;

Dispatcher make_dispatcher() {
    zk_dispatcher *raw = nullptr;
    check(zk_dispatcher_new_with(0, 0, &raw), "zk_dispatcher_new_with");
    return Dispatcher(raw);
}

// The C client's handle. Closing it reports no final state, so the deleter
// feeds CLOSED to the dispatcher: listeners then see LOST.
struct HandleCloser {
    zk_dispatcher *dispatcher = nullptr;
    void operator()(zhandle_t *zh) const noexcept {
        zookeeper_close(zh);
        if (dispatcher) zk_dispatcher_session(dispatcher, ZK_KEEPER_STATE_CLOSED);
    }
};
using Handle = std::unique_ptr<zhandle_t, HandleCloser>;

Handle connect(const std::string &hosts, zk_dispatcher *d) {
    // zk_dispatcher_c_watcher has the C client's watcher_fn type exactly.
    zhandle_t *zh = zookeeper_init(hosts.c_str(), zk_dispatcher_c_watcher, 10000, nullptr, d, 0);
    if (!zh) throw std::runtime_error("zookeeper_init failed");
    return Handle(zh, HandleCloser{d});
}

uint64_t add_watch(zk_dispatcher *d, const std::string &path, int32_t kind, WatchFn fn) {
    auto box = std::make_unique<WatchFn>(std::move(fn));
    uint64_t id = 0;
    check(zk_watch_add(d, path.c_str(), kind, watch_trampoline, box.get(), delete_watch_fn, &id),
          "zk_watch_add " + path);
    box.release();  // owned by the library now: delete_watch_fn runs exactly once
    return id;
}

uint64_t add_listener(zk_dispatcher *d, ListenerFn fn) {
    auto box = std::make_unique<ListenerFn>(std::move(fn));
    uint64_t id = 0;
    check(zk_listener_add(d, listener_trampoline, box.get(), delete_listener_fn, &id), "zk_listener_add");
    box.release();
    return id;
}

std::string describe(const zk_watched_event &ev) {
    // ev.path is NUL-terminated in a callback, or null for a session event.
    std::string path = ev.path ? "'" + std::string(ev.path, ev.path_len) + "'" : "None";
    return std::string("WatchedEvent(type='") + zk_event_type_name(ev.type) + "', state='" +
           zk_keeper_state_name(ev.state) + "', path=" + path + ")";
}

void print_stat(const Stat &stat) {
    // The C client's struct Stat has zk_stat's exact layout.
    const auto *st = reinterpret_cast<const zk_stat *>(&stat);
    char text[ZK_STAT_FORMAT_MAX + 1];
    zk_stat_format(st, text, sizeof text);
    std::printf("  %s\n", text);
    zk_stat_properties p{};
    check(zk_stat_properties_get(st, &p), "zk_stat_properties_get");
    std::printf("  created=%.3f last_modified=%.3f version=%d children_version=%d data_length=%d"
                " children_count=%d owner_session_id=%s\n",
                p.created, p.last_modified, p.version, p.children_version, p.data_length,
                p.children_count, p.has_owner ? std::to_string(p.owner_session_id).c_str() : "None");
}

// What the callbacks tell the main thread.
class Progress {
  public:
    void state(zk_kazoo_state s) {
        std::lock_guard<std::mutex> g(m_);
        state_ = s;
        cv_.notify_all();
    }
    void event() {
        std::lock_guard<std::mutex> g(m_);
        ++events_;
        cv_.notify_all();
    }
    bool wait_state(zk_kazoo_state s, std::chrono::seconds timeout) {
        std::unique_lock<std::mutex> g(m_);
        return cv_.wait_for(g, timeout, [&] { return state_ == s; });
    }
    bool wait_events(int n, std::chrono::seconds timeout) {
        std::unique_lock<std::mutex> g(m_);
        return cv_.wait_for(g, timeout, [&] { return events_ >= n; });
    }
    int events() {
        std::lock_guard<std::mutex> g(m_);
        return events_;
    }

  private:
    std::mutex m_;
    std::condition_variable cv_;
    zk_kazoo_state state_ = ZK_KAZOO_STATE_LOST;
    int events_ = 0;
};

int run(const std::string &hosts, const std::string &node, std::chrono::seconds step_timeout) {
    const std::string child = node + "/child";
    std::printf("zk-states %s (C++), server %s\n", zk_states_version(), hosts.c_str());

    // Declaration order is destruction order reversed: the handle is closed
    // first, then the dispatcher runs what is queued and is freed, and
    // `progress`, which the callbacks use, outlives both.
    Progress progress;
    Dispatcher dispatcher = make_dispatcher();
    zk_dispatcher *d = dispatcher.get();

    add_listener(d, [&progress](zk_kazoo_state s) {
        std::printf("  listener KazooState.%s\n", zk_kazoo_state_name(s));
        std::fflush(stdout);
        progress.state(s);
        return false;  // true would remove the listener, as in kazoo
    });
    auto watcher = [&progress](std::string label) {
        return [&progress, label = std::move(label)](const zk_watched_event &ev) {
            std::printf("  watch %-18s %s\n", label.c_str(), describe(ev).c_str());
            std::fflush(stdout);
            if (ev.type != ZK_EVENT_TYPE_NONE) progress.event();
        };
    };

    Handle zh = connect(hosts, d);
    std::printf("connecting...\n");
    if (!progress.wait_state(ZK_KAZOO_STATE_CONNECTED, step_timeout))
        throw std::runtime_error("not connected to " + hosts);

    int rc = zoo_create(zh.get(), node.c_str(), "hello", 5, &ZOO_OPEN_ACL_UNSAFE, 0, nullptr, 0);
    if (rc != ZNODEEXISTS) zcheck(rc, "zoo_create " + node);
    std::printf("%s %s\n", rc == ZOK ? "created" : "found", node.c_str());
    rc = zoo_delete(zh.get(), child.c_str(), -1);  // a leftover of an interrupted run
    if (rc != ZNONODE) zcheck(rc, "zoo_delete " + child);

    // Dispatcher watches first, then the server's one-shot watches.
    add_watch(d, node, ZK_WATCH_DATA, watcher("data"));
    add_watch(d, node, ZK_WATCH_CHILD, watcher("child"));
    add_watch(d, node, ZK_WATCH_PERSISTENT, watcher("persistent"));
    add_watch(d, node, ZK_WATCH_PERSISTENT_RECURSIVE, watcher("recursive"));
    char buf[256];
    int len = sizeof buf;
    Stat stat{};
    zcheck(zoo_wget(zh.get(), node.c_str(), zk_dispatcher_c_watcher, d, buf, &len, &stat), "zoo_wget " + node);
    std::printf("%s holds %d bytes:\n", node.c_str(), len);
    print_stat(stat);
    auto arm_children = [&] {
        String_vector kids{};
        zcheck(zoo_wget_children(zh.get(), node.c_str(), zk_dispatcher_c_watcher, d, &kids),
               "zoo_wget_children " + node);
        deallocate_String_vector(&kids);
    };
    arm_children();

    int expected = 0;
    auto step = [&](const char *what, int events, const std::function<void()> &change) {
        std::printf("%s\n", what);
        change();
        expected += events;
        if (!progress.wait_events(expected, step_timeout))
            throw std::runtime_error("timed out: " + std::to_string(progress.events()) + " of " +
                                     std::to_string(expected) + " watch events");
    };

    // 1. Data change: data, persistent and recursive watches.
    step(("set " + node).c_str(), 3, [&] {
        zcheck(zoo_set(zh.get(), node.c_str(), "changed", 7, -1), "zoo_set " + node);
    });
    // 2. A child appears: child and persistent watches (never recursive: no CHILD).
    step(("create " + child).c_str(), 2, [&] {
        zcheck(zoo_create(zh.get(), child.c_str(), "c", 1, &ZOO_OPEN_ACL_UNSAFE, 0, nullptr, 0),
               "zoo_create " + child);
    });
    // 3. The child goes: re-arm the server's one-shot watches first.
    add_watch(d, child, ZK_WATCH_DATA, watcher("child-data"));
    add_watch(d, node, ZK_WATCH_CHILD, watcher("child-again"));
    zcheck(zoo_wexists(zh.get(), child.c_str(), zk_dispatcher_c_watcher, d, &stat), "zoo_wexists " + child);
    arm_children();
    step(("delete " + child).c_str(), 4, [&] {
        zcheck(zoo_delete(zh.get(), child.c_str(), -1), "zoo_delete " + child);
    });

    len = sizeof buf;
    zcheck(zoo_get(zh.get(), node.c_str(), 0, buf, &len, &stat), "zoo_get " + node);
    std::printf("%s now:\n", node.c_str());
    print_stat(stat);

    std::printf("closing\n");
    zh.reset();  // zookeeper_close, then CLOSED fed: listeners see LOST
    check(zk_dispatcher_flush(d), "zk_dispatcher_flush");
    return 0;
}

}  // namespace

int main(int argc, char **argv) {
    const std::string hosts = argc > 1 ? argv[1] : "127.0.0.1:2181";
    const std::string node = argc > 2 ? argv[2] : "/zk-states-live-cpp";
    const int timeout = argc > 3 ? std::atoi(argv[3]) : 15;
    if (argc > 4 || node.empty() || node[0] != '/' || timeout <= 0) {
        std::fprintf(stderr, "usage: %s [HOSTS] [NODE] [TIMEOUT]\n"
                     "  NODE: an absolute path; TIMEOUT: seconds per step (> 0)\n", argv[0]);
        return 2;
    }
    zoo_set_debug_level(ZOO_LOG_LEVEL_WARN);
    try {
        int status = run(hosts, node, std::chrono::seconds(timeout));
        std::printf("done\n");
        return status;
    } catch (const std::exception &e) {
        std::fprintf(stderr, "error: %s\n", e.what());
        std::printf("FAILED\n");
        return 1;
    }
}
