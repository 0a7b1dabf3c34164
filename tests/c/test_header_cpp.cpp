/*
 * test_header_cpp.cpp: include/zk_states.h compiled as C++ (the driver builds
 * it with -std=c++11 and -std=c++17, -Wall -Wextra -Werror -pedantic) and
 * used: the enums are real enums with an int32_t underlying type, a switch
 * over zk_event_type covers every enumerator (-Wswitch is an error if one is
 * missing), the typed out-parameters take the enum types, and the dispatcher
 * works with captureless lambdas as callbacks.
 */
#include "zk_states.h"
#include "zk_states.h" /* include guard */

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <type_traits>

#include "check.h"

/* The C client's watcher_fn type, when its header is installed. */
#if defined(__has_include)
#if __has_include(<zookeeper/zookeeper.h>)
#include <zookeeper/zookeeper.h>
#define HAVE_ZOOKEEPER_H 1
#endif
#endif

static_assert(sizeof(zk_event_type) == 4, "zk_event_type is 4 bytes");
static_assert(sizeof(zk_keeper_state) == 4, "zk_keeper_state is 4 bytes");
static_assert(sizeof(zk_kazoo_state) == 4, "zk_kazoo_state is 4 bytes");
static_assert(sizeof(zk_status) == 4, "zk_status is 4 bytes");
static_assert(sizeof(zk_watch_kind) == 4, "zk_watch_kind is 4 bytes");
static_assert(std::is_enum<zk_event_type>::value, "a real enum in C++");
static_assert(std::is_same<std::underlying_type<zk_event_type>::type, int32_t>::value, "");
static_assert(std::is_same<std::underlying_type<zk_keeper_state>::type, int32_t>::value, "");
static_assert(std::is_same<std::underlying_type<zk_kazoo_state>::type, int32_t>::value, "");
static_assert(std::is_same<std::underlying_type<zk_status>::type, int32_t>::value, "");
static_assert(std::is_same<std::underlying_type<zk_watch_kind>::type, int32_t>::value, "");
static_assert(ZK_EVENT_TYPE_NONE == -1 && ZK_EVENT_TYPE_NOT_WATCHING == -2, "");
static_assert(ZK_KEEPER_STATE_EXPIRED_SESSION == -112, "");
static_assert(ZK_OK == 0, "");
static_assert(sizeof(zk_stat) == 72, "zk_stat matches struct Stat");
static_assert(offsetof(zk_stat, ephemeral_owner) == 48, "");
static_assert(offsetof(zk_stat, pzxid) == 64, "");
static_assert(std::is_standard_layout<zk_stat>::value, "");
static_assert(std::is_trivially_copyable<zk_watched_event>::value, "");
static_assert(ZK_STAT_FORMAT_MAX == 300, "");

static const char *describe(zk_event_type t)
{
    switch (t) { /* no default: every enumerator must be handled */
    case ZK_EVENT_TYPE_NONE:
        return "NONE";
    case ZK_EVENT_TYPE_CREATED:
        return "CREATED";
    case ZK_EVENT_TYPE_DELETED:
        return "DELETED";
    case ZK_EVENT_TYPE_CHANGED:
        return "CHANGED";
    case ZK_EVENT_TYPE_CHILD:
        return "CHILD";
    case ZK_EVENT_TYPE_DATA_WATCH_REMOVED:
    case ZK_EVENT_TYPE_CHILD_WATCH_REMOVED:
    case ZK_EVENT_TYPE_PERSISTENT_WATCH_REMOVED:
    case ZK_EVENT_TYPE_NOT_WATCHING:
        return "other";
    }
    return "?";
}

static bool is_connected(zk_kazoo_state s)
{
    switch (s) {
    case ZK_KAZOO_STATE_CONNECTED:
    case ZK_KAZOO_STATE_RECONNECTED:
    case ZK_KAZOO_STATE_READ_ONLY:
        return true;
    case ZK_KAZOO_STATE_SUSPENDED:
    case ZK_KAZOO_STATE_LOST:
        return false;
    }
    return false;
}

static int watch_calls = 0;
static int listener_calls = 0;
static int frees = 0;

int main()
{
    const zk_event_type kazoo_types[] = {ZK_EVENT_TYPE_NONE, ZK_EVENT_TYPE_CREATED,
                                         ZK_EVENT_TYPE_DELETED, ZK_EVENT_TYPE_CHANGED,
                                         ZK_EVENT_TYPE_CHILD};
    for (zk_event_type t : kazoo_types) {
        CHECK_STR(zk_event_type_name(t), describe(t));
    }

    zk_event_type t = ZK_EVENT_TYPE_NONE;
    CHECK_EQ_INT(zk_event_type_from_name("CHILD", &t), ZK_OK);
    CHECK(t == ZK_EVENT_TYPE_CHILD);
    zk_keeper_state ks = ZK_KEEPER_STATE_CLOSED;
    CHECK_EQ_INT(zk_keeper_state_from_wire(6, &ks), ZK_OK);
    CHECK(ks == ZK_KEEPER_STATE_CONNECTED);
    CHECK_EQ_INT(zk_keeper_state_from_c_client(-113, &ks), ZK_OK);
    CHECK(ks == ZK_KEEPER_STATE_AUTH_FAILED);
    zk_kazoo_state kz = ZK_KAZOO_STATE_CONNECTED;
    CHECK_EQ_INT(zk_kazoo_state_from_name("READ_ONLY", &kz), ZK_OK);
    CHECK(kz == ZK_KAZOO_STATE_READ_ONLY);
    CHECK(is_connected(kz));
    zk_status rc = static_cast<zk_status>(zk_kazoo_state_from_name("nope", &kz));
    CHECK(rc == ZK_ERR_UNKNOWN_NAME);
    CHECK(std::strlen(zk_status_message(rc)) > 0);
    CHECK_STR(zk_states_version(), ZK_STATES_VERSION);
    CHECK_EQ_UINT(zk_states_abi_version(), ZK_STATES_ABI_VERSION);

    zk_stat st = zk_stat();
    st.czxid = 1;
    st.pzxid = 11;
    char buf[ZK_STAT_FORMAT_MAX + 1];
    std::size_t n = zk_stat_format(&st, buf, sizeof buf);
    CHECK_EQ_UINT(n, std::strlen(buf));
    CHECK(std::strncmp(buf, "ZnodeStat(czxid=1, ", 19) == 0);
    std::uint8_t wire[ZK_STAT_WIRE_SIZE];
    CHECK_EQ_INT(zk_stat_encode(&st, wire, sizeof wire), ZK_OK);
    zk_stat back = zk_stat();
    CHECK_EQ_INT(zk_stat_decode(wire, sizeof wire, &back), ZK_OK);
    CHECK_EQ_INT(back.pzxid, 11);

    zk_session_machine m;
    zk_session_step step;
    CHECK_EQ_INT(zk_session_machine_init(&m), ZK_OK);
    CHECK_EQ_INT(zk_session_machine_step(&m, ZK_KEEPER_STATE_CONNECTED, 0, &step), ZK_OK);
    CHECK(step.notify);
    CHECK_EQ_INT(step.kazoo_state, ZK_KAZOO_STATE_CONNECTED);

#ifdef HAVE_ZOOKEEPER_H
    {
        /* zk_dispatcher_c_watcher has exactly the C client's watcher_fn type */
        watcher_fn fn = zk_dispatcher_c_watcher;
        CHECK(fn != nullptr);
    }
#endif

    zk_dispatcher *d = zk_dispatcher_new();
    CHECK(d != nullptr);
    if (d == nullptr) {
        return check_summary("test_header_cpp");
    }
    zk_watch_fn on_watch = [](const zk_watched_event *ev, void *) {
        if (ev->type == ZK_EVENT_TYPE_CHANGED && std::strcmp(ev->path, "/cpp") == 0) {
            ++watch_calls;
        }
    };
    zk_listener_fn on_state = [](zk_kazoo_state s, void *) -> bool {
        if (s == ZK_KAZOO_STATE_CONNECTED) {
            ++listener_calls;
        }
        return false;
    };
    zk_free_fn on_free = [](void *) { ++frees; };
    std::uint64_t wid = 0, lid = 0;
    CHECK_EQ_INT(zk_watch_add(d, "/cpp", ZK_WATCH_PERSISTENT, on_watch, nullptr, on_free, &wid),
                 ZK_OK);
    CHECK_EQ_INT(zk_listener_add(d, on_state, nullptr, on_free, &lid), ZK_OK);
    CHECK_EQ_INT(zk_dispatcher_session(d, ZK_KEEPER_STATE_CONNECTED), ZK_OK);
    CHECK_EQ_INT(zk_dispatcher_event(d, ZK_EVENT_TYPE_CHANGED, "/cpp", ZK_ZXID_UNKNOWN), ZK_OK);
    CHECK_EQ_INT(zk_dispatcher_flush(d), ZK_OK);
    CHECK_EQ_INT(watch_calls, 1);
    CHECK_EQ_INT(listener_calls, 1);
    kz = ZK_KAZOO_STATE_LOST;
    ks = ZK_KEEPER_STATE_CLOSED;
    CHECK_EQ_INT(zk_dispatcher_state(d, &kz, &ks), ZK_OK);
    CHECK(kz == ZK_KAZOO_STATE_CONNECTED);
    CHECK(ks == ZK_KEEPER_STATE_CONNECTED);
    CHECK_EQ_INT(zk_watch_remove(d, wid), ZK_OK);
    CHECK_EQ_INT(zk_listener_remove(d, lid), ZK_OK);
    CHECK_EQ_INT(zk_dispatcher_flush(d), ZK_OK); /* removed: freed once a flush returns */
    CHECK_EQ_INT(frees, 2);
    zk_dispatcher_free(d);
    return check_summary("test_header_cpp");
}
