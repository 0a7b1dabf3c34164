/*
 * test_core.c: every contract item of the core C ABI of zk-states (states,
 * events, names, conversion tables, the Stat codec and repr, the watch-event
 * decoders, version information and the session state machine), exercised
 * through include/zk_states.h only.
 *
 * Built by tests/py/test_c_suite.py with -std=c99 -Wall -Wextra -Werror
 * -pedantic. When the driver finds the ZooKeeper C client's headers it passes
 * -DZK_TEST_HAVE_ZOOKEEPER_JUTE_H and the zk_stat / struct Stat layout is
 * compared field by field.
 */
#include "zk_states.h"
#include "zk_states.h" /* the include guard makes a second inclusion harmless */

#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

#if !defined(ZK_TEST_HAVE_ZOOKEEPER_JUTE_H) && defined(__has_include)
#if __has_include(<zookeeper/zookeeper.jute.h>)
#define ZK_TEST_HAVE_ZOOKEEPER_JUTE_H 1
#endif
#endif

#ifdef ZK_TEST_HAVE_ZOOKEEPER_JUTE_H
#include <zookeeper/zookeeper.jute.h>
#endif

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* Compile-time checks (C99 has no _Static_assert). */
#define STATIC_CHECK(name, cond) typedef char static_check_##name[(cond) ? 1 : -1]
STATIC_CHECK(sizeof_zk_stat, sizeof(zk_stat) == 72);
STATIC_CHECK(sizeof_event_type, sizeof(zk_event_type) == 4);
STATIC_CHECK(sizeof_keeper_state, sizeof(zk_keeper_state) == 4);
STATIC_CHECK(sizeof_kazoo_state, sizeof(zk_kazoo_state) == 4);
STATIC_CHECK(stat_wire_size, ZK_STAT_WIRE_SIZE == 68);

static char ctx_buf[160];
static void set_ctx_int(const char *what, long long v)
{
    snprintf(ctx_buf, sizeof ctx_buf, "%s=%lld", what, v);
    check_set_context(ctx_buf);
}

/* ------------------------------------------------------------------------ */
/* Enum values, sizes, versions                                              */
/* ------------------------------------------------------------------------ */

static void test_enum_values(void)
{
    CHECK_EQ_INT(ZK_EVENT_TYPE_NONE, -1);
    CHECK_EQ_INT(ZK_EVENT_TYPE_CREATED, 1);
    CHECK_EQ_INT(ZK_EVENT_TYPE_DELETED, 2);
    CHECK_EQ_INT(ZK_EVENT_TYPE_CHANGED, 3);
    CHECK_EQ_INT(ZK_EVENT_TYPE_CHILD, 4);
    CHECK_EQ_INT(ZK_EVENT_TYPE_DATA_WATCH_REMOVED, 5);
    CHECK_EQ_INT(ZK_EVENT_TYPE_CHILD_WATCH_REMOVED, 6);
    CHECK_EQ_INT(ZK_EVENT_TYPE_PERSISTENT_WATCH_REMOVED, 7);
    CHECK_EQ_INT(ZK_EVENT_TYPE_NOT_WATCHING, -2);

    CHECK_EQ_INT(ZK_KEEPER_STATE_CONNECTING, 1);
    CHECK_EQ_INT(ZK_KEEPER_STATE_CONNECTED, 3);
    CHECK_EQ_INT(ZK_KEEPER_STATE_AUTH_FAILED, 4);
    CHECK_EQ_INT(ZK_KEEPER_STATE_CONNECTED_RO, 5);
    CHECK_EQ_INT(ZK_KEEPER_STATE_CLOSED, 7);
    CHECK_EQ_INT(ZK_KEEPER_STATE_EXPIRED_SESSION, -112);

    /* Curator's ConnectionState ordinals. */
    CHECK_EQ_INT(ZK_KAZOO_STATE_CONNECTED, 0);
    CHECK_EQ_INT(ZK_KAZOO_STATE_SUSPENDED, 1);
    CHECK_EQ_INT(ZK_KAZOO_STATE_RECONNECTED, 2);
    CHECK_EQ_INT(ZK_KAZOO_STATE_LOST, 3);
    CHECK_EQ_INT(ZK_KAZOO_STATE_READ_ONLY, 4);

    CHECK_EQ_INT(ZK_WATCH_DATA, 0);
    CHECK_EQ_INT(ZK_WATCH_CHILD, 1);
    CHECK_EQ_INT(ZK_WATCH_PERSISTENT, 2);
    CHECK_EQ_INT(ZK_WATCH_PERSISTENT_RECURSIVE, 3);

    CHECK_EQ_INT(ZK_ZXID_UNKNOWN, -1);
    CHECK_EQ_INT(ZK_WATCH_XID, -1);
    CHECK_EQ_INT(ZK_STAT_WIRE_SIZE, 68);
    CHECK_EQ_INT(ZK_STAT_FORMAT_MAX, 300);

    CHECK_EQ_UINT(ZK_DISPATCHER_CURATOR_STATES, 1);
    CHECK_EQ_UINT(ZK_DISPATCHER_KEEP_WATCHES, 2);
    CHECK_EQ_UINT(ZK_DISPATCHER_ALL_OPTIONS, 3);
    /* The session actions are distinct single bits. */
    {
        const uint32_t actions[] = {
            ZK_SESSION_ACTION_FIRE_ONE_SHOT,     ZK_SESSION_ACTION_NOTIFY_ONE_SHOT,
            ZK_SESSION_ACTION_NOTIFY_PERSISTENT, ZK_SESSION_ACTION_DROP_PERSISTENT,
            ZK_SESSION_ACTION_FAIL_PENDING,      ZK_SESSION_ACTION_RESET_SESSION,
        };
        uint32_t seen = 0;
        size_t i;
        for (i = 0; i < ARRAY_LEN(actions); i++) {
            CHECK(actions[i] != 0 && (actions[i] & (actions[i] - 1)) == 0);
            CHECK((seen & actions[i]) == 0);
            seen |= actions[i];
        }
    }
}

static void test_enum_sizes(void)
{
    CHECK_EQ_UINT(sizeof(zk_event_type), 4);
    CHECK_EQ_UINT(sizeof(zk_keeper_state), 4);
    CHECK_EQ_UINT(sizeof(zk_kazoo_state), 4);
    CHECK_EQ_UINT(sizeof(zk_status), 4);
    CHECK_EQ_UINT(sizeof(zk_watch_kind), 4);
    CHECK_EQ_UINT(sizeof(enum zk_event_type), 4);
    CHECK_EQ_UINT(sizeof(enum zk_keeper_state), 4);
    CHECK_EQ_UINT(sizeof(enum zk_kazoo_state), 4);
    CHECK_EQ_UINT(sizeof(enum zk_status), 4);
    CHECK_EQ_UINT(sizeof(enum zk_watch_kind), 4);
}

static void test_versions(void)
{
    char want[64];
    const char *v = zk_states_version();
    CHECK(v != NULL);
    CHECK_STR(v, ZK_STATES_VERSION);
    snprintf(want, sizeof want, "%d.%d.%d", ZK_STATES_VERSION_MAJOR, ZK_STATES_VERSION_MINOR,
             ZK_STATES_VERSION_PATCH);
    CHECK_STR(v, want);
    CHECK(zk_states_version() == v); /* static */
    CHECK_EQ_UINT(zk_states_abi_version(), ZK_STATES_ABI_VERSION);
}

/* ------------------------------------------------------------------------ */
/* Status codes and messages                                                 */
/* ------------------------------------------------------------------------ */

static const int32_t all_statuses[] = {
    ZK_OK,
    ZK_ERR_NULL_ARGUMENT,
    ZK_ERR_TRUNCATED,
    ZK_ERR_INVALID_EVENT_TYPE,
    ZK_ERR_INVALID_KEEPER_STATE,
    ZK_ERR_INVALID_KAZOO_STATE,
    ZK_ERR_INVALID_UTF8,
    ZK_ERR_BUFFER_TOO_SMALL,
    ZK_ERR_NEGATIVE_LENGTH,
    ZK_ERR_LENGTH_EXCEEDS_INPUT,
    ZK_ERR_NOT_A_NOTIFICATION,
    ZK_ERR_UNKNOWN_NAME,
    ZK_ERR_INVALID_WATCH_KIND,
    ZK_ERR_INVALID_PATH,
    ZK_ERR_NOT_FOUND,
    ZK_ERR_WOULD_DEADLOCK,
    ZK_ERR_SHUTTING_DOWN,
    ZK_ERR_QUEUE_FULL,
    ZK_ERR_SIZE_TOO_LARGE,
    ZK_ERR_INVALID_ARGUMENT,
    ZK_ERR_PANIC,
    ZK_ERR_SYSTEM,
};

static int is_status(int32_t code)
{
    size_t i;
    for (i = 0; i < ARRAY_LEN(all_statuses); i++) {
        if (all_statuses[i] == code) {
            return 1;
        }
    }
    return 0;
}

static void test_statuses(void)
{
    size_t i, j;
    const char *unknown = zk_status_message(-1);
    CHECK_EQ_INT(ZK_OK, 0);
    CHECK(unknown != NULL);
    CHECK_STR(unknown, "unknown status code");
    for (i = 0; i < ARRAY_LEN(all_statuses); i++) {
        const char *mi = zk_status_message(all_statuses[i]);
        set_ctx_int("status", all_statuses[i]);
        if (i > 0) {
            CHECK(all_statuses[i] != 0);
        }
        CHECK(mi != NULL);
        if (mi == NULL) {
            continue;
        }
        CHECK(mi[0] != '\0');
        CHECK(strchr(mi, '\n') == NULL); /* one line */
        CHECK(strcmp(mi, unknown) != 0);
        CHECK(zk_status_message(all_statuses[i]) == mi); /* static */
        for (j = i + 1; j < ARRAY_LEN(all_statuses); j++) {
            const char *mj = zk_status_message(all_statuses[j]);
            CHECK(all_statuses[i] != all_statuses[j]);
            CHECK(mj != NULL && strcmp(mi, mj) != 0);
        }
    }
    check_set_context(NULL);
    {
        const int32_t bad[] = {-1, -2, 22, 23, 100, 1000, INT32_MIN, INT32_MAX};
        for (i = 0; i < ARRAY_LEN(bad); i++) {
            const char *m = zk_status_message(bad[i]);
            set_ctx_int("code", bad[i]);
            CHECK(!is_status(bad[i]));
            CHECK(m != NULL);
            CHECK_STR(m, "unknown status code");
        }
        check_set_context(NULL);
    }
}

/* ------------------------------------------------------------------------ */
/* Names and reverse parsing                                                 */
/* ------------------------------------------------------------------------ */

struct code_name {
    int32_t code;
    const char *name;
};

static const struct code_name event_names[] = {
    {ZK_EVENT_TYPE_NONE, "NONE"},
    {ZK_EVENT_TYPE_CREATED, "CREATED"},
    {ZK_EVENT_TYPE_DELETED, "DELETED"},
    {ZK_EVENT_TYPE_CHANGED, "CHANGED"},
    {ZK_EVENT_TYPE_CHILD, "CHILD"},
    /* Not kazoo names: the header only says "named here in the same style";
       the exact strings are checked below for round trips and style. */
    {ZK_EVENT_TYPE_DATA_WATCH_REMOVED, NULL},
    {ZK_EVENT_TYPE_CHILD_WATCH_REMOVED, NULL},
    {ZK_EVENT_TYPE_PERSISTENT_WATCH_REMOVED, NULL},
    {ZK_EVENT_TYPE_NOT_WATCHING, NULL},
};

static const struct code_name keeper_names[] = {
    {ZK_KEEPER_STATE_CONNECTING, "CONNECTING"},
    {ZK_KEEPER_STATE_CONNECTED, "CONNECTED"},
    {ZK_KEEPER_STATE_AUTH_FAILED, "AUTH_FAILED"},
    {ZK_KEEPER_STATE_CONNECTED_RO, "CONNECTED_RO"},
    {ZK_KEEPER_STATE_CLOSED, "CLOSED"},
    {ZK_KEEPER_STATE_EXPIRED_SESSION, "EXPIRED_SESSION"},
};

static const struct code_name kazoo_names[] = {
    {ZK_KAZOO_STATE_CONNECTED, "CONNECTED"},
    {ZK_KAZOO_STATE_SUSPENDED, "SUSPENDED"},
    {ZK_KAZOO_STATE_RECONNECTED, "RECONNECTED"},
    {ZK_KAZOO_STATE_LOST, "LOST"},
    {ZK_KAZOO_STATE_READ_ONLY, "READ_ONLY"},
};

typedef const char *(*name_fn)(int32_t);
typedef int32_t (*parse_fn)(const char *, int32_t *);

static int upper_snake(const char *s)
{
    if (s == NULL || *s == '\0') {
        return 0;
    }
    for (; *s != '\0'; s++) {
        if (!((*s >= 'A' && *s <= 'Z') || *s == '_')) {
            return 0;
        }
    }
    return 1;
}

/* Every code in [-1000, 1000] plus the extremes: the name is non-NULL exactly
   for the listed codes, each name parses back to its code, and the names are
   distinct. */
static void check_names(const char *what, const struct code_name *table, size_t n, name_fn name,
                        parse_fn parse)
{
    int64_t c;
    size_t i, j;
    const int32_t extremes[] = {INT32_MIN, INT32_MIN + 1, -1001, 1001, INT32_MAX - 1, INT32_MAX};
    for (c = -1000; c <= 1000 + (int64_t)ARRAY_LEN(extremes); c++) {
        int32_t code = c <= 1000 ? (int32_t)c : extremes[c - 1001];
        const char *got = name(code);
        const struct code_name *want = NULL;
        for (i = 0; i < n; i++) {
            if (table[i].code == code) {
                want = &table[i];
            }
        }
        if (want == NULL) {
            if (got != NULL) {
                set_ctx_int(what, code);
                CHECK(got == NULL);
                check_set_context(NULL);
            } else {
                check_pass_();
            }
            continue;
        }
        set_ctx_int(what, code);
        CHECK(got != NULL);
        if (want->name != NULL) {
            CHECK_STR(got, want->name);
        }
        CHECK(upper_snake(got));
        CHECK(name(code) == got); /* static */
        {
            int32_t parsed = 0x5A5A5A5A;
            CHECK_EQ_INT(parse(got, &parsed), ZK_OK);
            CHECK_EQ_INT(parsed, code);
        }
        check_set_context(NULL);
    }
    for (i = 0; i < n; i++) {
        for (j = i + 1; j < n; j++) {
            const char *a = name(table[i].code);
            const char *b = name(table[j].code);
            CHECK(a != NULL && b != NULL && strcmp(a, b) != 0);
        }
    }
}

/* Unknown names (including case variants of every valid name) are
   ZK_ERR_UNKNOWN_NAME with *out untouched; NULLs are ZK_ERR_NULL_ARGUMENT. */
static void check_parse_errors(const struct code_name *table, size_t n, name_fn name,
                               parse_fn parse)
{
    const char *bad[] = {"",          " ",         "created", "Created",  "CREATED ",
                         " CREATED",  "CONNECTED\n", "connected", "Connected", "LOST_",
                         "SUSPEND",   "EXPIRED",   "NONE\t",  "none",     "nONE",
                         "READ-ONLY", "ReadOnly",  "0",       "-1",       "3",
                         "\xff\xfe",  "CLOSED!",   "CHILDREN"};
    size_t i;
    int32_t out;
    for (i = 0; i < ARRAY_LEN(bad); i++) {
        size_t k;
        int valid = 0;
        for (k = 0; k < n; k++) {
            const char *nm = name(table[k].code);
            if (nm != NULL && strcmp(nm, bad[i]) == 0) {
                valid = 1;
            }
        }
        if (valid) {
            continue; /* e.g. "CONNECTED" for the kazoo table */
        }
        out = 0x5A5A5A5A;
        check_set_context(bad[i]);
        CHECK_EQ_INT(parse(bad[i], &out), ZK_ERR_UNKNOWN_NAME);
        CHECK_EQ_INT(out, 0x5A5A5A5A);
        check_set_context(NULL);
    }
    /* Case variants of every valid name: lower case and first-letter-only. */
    for (i = 0; i < n; i++) {
        const char *nm = name(table[i].code);
        char lower[64], capital[64];
        size_t k, len;
        if (nm == NULL || strlen(nm) >= sizeof lower) {
            continue;
        }
        len = strlen(nm);
        for (k = 0; k <= len; k++) {
            lower[k] = (char)((nm[k] >= 'A' && nm[k] <= 'Z') ? nm[k] - 'A' + 'a' : nm[k]);
            capital[k] = k == 0 ? nm[k] : lower[k];
        }
        out = 0x5A5A5A5A;
        CHECK_EQ_INT(parse(lower, &out), ZK_ERR_UNKNOWN_NAME);
        CHECK_EQ_INT(parse(capital, &out), ZK_ERR_UNKNOWN_NAME);
        CHECK_EQ_INT(out, 0x5A5A5A5A);
        /* a prefix and an extension are not names */
        lower[0] = '\0';
        memcpy(lower, nm, len - 1);
        lower[len - 1] = '\0';
        CHECK_EQ_INT(parse(lower, &out), ZK_ERR_UNKNOWN_NAME);
        memcpy(capital, nm, len);
        capital[len] = 'X';
        capital[len + 1] = '\0';
        CHECK_EQ_INT(parse(capital, &out), ZK_ERR_UNKNOWN_NAME);
        CHECK_EQ_INT(out, 0x5A5A5A5A);
    }
    out = 0x5A5A5A5A;
    CHECK_EQ_INT(parse(NULL, &out), ZK_ERR_NULL_ARGUMENT);
    CHECK_EQ_INT(out, 0x5A5A5A5A);
    CHECK_EQ_INT(parse(name(table[0].code), NULL), ZK_ERR_NULL_ARGUMENT);
    CHECK_EQ_INT(parse(NULL, NULL), ZK_ERR_NULL_ARGUMENT);
}

/* Adapters with the exact typedef'd signatures (zk_event_type * etc. are
   int32_t * in C, so these are plain calls). */
static int32_t parse_event(const char *s, int32_t *out) { return zk_event_type_from_name(s, out); }
static int32_t parse_keeper(const char *s, int32_t *out) { return zk_keeper_state_from_name(s, out); }
static int32_t parse_kazoo(const char *s, int32_t *out) { return zk_kazoo_state_from_name(s, out); }

static void test_names(void)
{
    check_names("event_type", event_names, ARRAY_LEN(event_names), zk_event_type_name, parse_event);
    check_names("keeper_state", keeper_names, ARRAY_LEN(keeper_names), zk_keeper_state_name,
                parse_keeper);
    check_names("kazoo_state", kazoo_names, ARRAY_LEN(kazoo_names), zk_kazoo_state_name,
                parse_kazoo);
    check_parse_errors(event_names, ARRAY_LEN(event_names), zk_event_type_name, parse_event);
    check_parse_errors(keeper_names, ARRAY_LEN(keeper_names), zk_keeper_state_name, parse_keeper);
    check_parse_errors(kazoo_names, ARRAY_LEN(kazoo_names), zk_kazoo_state_name, parse_kazoo);

    /* The typed out-parameters work with the typedefs directly. */
    {
        zk_event_type t = 0;
        zk_keeper_state s = 0;
        zk_kazoo_state k = 0;
        CHECK_EQ_INT(zk_event_type_from_name("CHILD", &t), ZK_OK);
        CHECK_EQ_INT(t, ZK_EVENT_TYPE_CHILD);
        CHECK_EQ_INT(zk_keeper_state_from_name("EXPIRED_SESSION", &s), ZK_OK);
        CHECK_EQ_INT(s, ZK_KEEPER_STATE_EXPIRED_SESSION);
        CHECK_EQ_INT(zk_kazoo_state_from_name("LOST", &k), ZK_OK);
        CHECK_EQ_INT(k, ZK_KAZOO_STATE_LOST);
        /* The same name in two tables maps to each table's own code. */
        CHECK_EQ_INT(zk_keeper_state_from_name("CONNECTED", &s), ZK_OK);
        CHECK_EQ_INT(s, 3);
        CHECK_EQ_INT(zk_kazoo_state_from_name("CONNECTED", &k), ZK_OK);
        CHECK_EQ_INT(k, 0);
        /* A keeper-only name is not a kazoo name and vice versa. */
        CHECK_EQ_INT(zk_kazoo_state_from_name("CONNECTING", &k), ZK_ERR_UNKNOWN_NAME);
        CHECK_EQ_INT(zk_keeper_state_from_name("SUSPENDED", &s), ZK_ERR_UNKNOWN_NAME);
        CHECK_EQ_INT(zk_event_type_from_name("CONNECTED", &t), ZK_ERR_UNKNOWN_NAME);
    }
}

/* ------------------------------------------------------------------------ */
/* Keeper state conversion tables                                            */
/* ------------------------------------------------------------------------ */

struct code_map {
    int32_t code;
    int32_t state;
};

static const struct code_map wire_table[] = {
    {0, ZK_KEEPER_STATE_CONNECTING},   {1, ZK_KEEPER_STATE_CONNECTING},
    {3, ZK_KEEPER_STATE_CONNECTED},    {4, ZK_KEEPER_STATE_AUTH_FAILED},
    {5, ZK_KEEPER_STATE_CONNECTED_RO}, {6, ZK_KEEPER_STATE_CONNECTED},
    {7, ZK_KEEPER_STATE_CLOSED},       {-112, ZK_KEEPER_STATE_EXPIRED_SESSION},
};

static const struct code_map c_client_table[] = {
    {0, ZK_KEEPER_STATE_CONNECTING},        {1, ZK_KEEPER_STATE_CONNECTING},
    {2, ZK_KEEPER_STATE_CONNECTING},        {3, ZK_KEEPER_STATE_CONNECTED},
    {5, ZK_KEEPER_STATE_CONNECTED_RO},      {7, ZK_KEEPER_STATE_CONNECTING},
    {-112, ZK_KEEPER_STATE_EXPIRED_SESSION}, {-113, ZK_KEEPER_STATE_AUTH_FAILED},
    {999, ZK_KEEPER_STATE_CLOSED},
};

typedef int32_t (*convert_fn)(int32_t, zk_keeper_state *);

static void check_table(const char *what, const struct code_map *table, size_t n,
                        convert_fn convert)
{
    int64_t c;
    size_t i;
    const int32_t extremes[] = {INT32_MIN, INT32_MIN + 1, -113, -112, -111, 999, 1000, 1001,
                                65535, INT32_MAX - 1, INT32_MAX};
    for (c = -1000; c <= 1000 + (int64_t)ARRAY_LEN(extremes); c++) {
        int32_t code = c <= 1000 ? (int32_t)c : extremes[c - 1001];
        zk_keeper_state out = 0x5A5A5A5A;
        int32_t rc = convert(code, &out);
        const struct code_map *want = NULL;
        for (i = 0; i < n; i++) {
            if (table[i].code == code) {
                want = &table[i];
            }
        }
        if (want != NULL) {
            set_ctx_int(what, code);
            CHECK_EQ_INT(rc, ZK_OK);
            CHECK_EQ_INT(out, want->state);
            CHECK(zk_keeper_state_name(out) != NULL);
            check_set_context(NULL);
        } else if (rc != ZK_ERR_INVALID_KEEPER_STATE || out != 0x5A5A5A5A) {
            set_ctx_int(what, code);
            CHECK_EQ_INT(rc, ZK_ERR_INVALID_KEEPER_STATE);
            CHECK_EQ_INT(out, 0x5A5A5A5A);
            check_set_context(NULL);
        } else {
            check_pass_();
        }
    }
    for (i = 0; i < n; i++) {
        CHECK_EQ_INT(convert(table[i].code, NULL), ZK_ERR_NULL_ARGUMENT);
    }
}

static void test_state_tables(void)
{
    zk_keeper_state out = 0x5A5A5A5A;
    check_table("wire", wire_table, ARRAY_LEN(wire_table), zk_keeper_state_from_wire);
    check_table("c_client", c_client_table, ARRAY_LEN(c_client_table),
                zk_keeper_state_from_c_client);
    /* The documented differences between the two tables. */
    CHECK_EQ_INT(zk_keeper_state_from_wire(7, &out), ZK_OK);
    CHECK_EQ_INT(out, ZK_KEEPER_STATE_CLOSED);
    CHECK_EQ_INT(zk_keeper_state_from_c_client(7, &out), ZK_OK);
    CHECK_EQ_INT(out, ZK_KEEPER_STATE_CONNECTING);
    out = 0x5A5A5A5A;
    CHECK_EQ_INT(zk_keeper_state_from_wire(-1, &out), ZK_ERR_INVALID_KEEPER_STATE); /* Unknown */
    CHECK_EQ_INT(zk_keeper_state_from_wire(-113, &out), ZK_ERR_INVALID_KEEPER_STATE);
    CHECK_EQ_INT(zk_keeper_state_from_wire(999, &out), ZK_ERR_INVALID_KEEPER_STATE);
    CHECK_EQ_INT(zk_keeper_state_from_c_client(4, &out), ZK_ERR_INVALID_KEEPER_STATE);
    CHECK_EQ_INT(zk_keeper_state_from_c_client(6, &out), ZK_ERR_INVALID_KEEPER_STATE);
    CHECK_EQ_INT(out, 0x5A5A5A5A);
}

/* ------------------------------------------------------------------------ */
/* zk_stat layout                                                            */
/* ------------------------------------------------------------------------ */

static void test_stat_layout(void)
{
    CHECK_EQ_UINT(sizeof(zk_stat), 72);
    CHECK_EQ_UINT(offsetof(zk_stat, czxid), 0);
    CHECK_EQ_UINT(offsetof(zk_stat, mzxid), 8);
    CHECK_EQ_UINT(offsetof(zk_stat, ctime), 16);
    CHECK_EQ_UINT(offsetof(zk_stat, mtime), 24);
    CHECK_EQ_UINT(offsetof(zk_stat, version), 32);
    CHECK_EQ_UINT(offsetof(zk_stat, cversion), 36);
    CHECK_EQ_UINT(offsetof(zk_stat, aversion), 40);
    CHECK_EQ_UINT(offsetof(zk_stat, ephemeral_owner), 48);
    CHECK_EQ_UINT(offsetof(zk_stat, data_length), 56);
    CHECK_EQ_UINT(offsetof(zk_stat, num_children), 60);
    CHECK_EQ_UINT(offsetof(zk_stat, pzxid), 64);
#ifdef ZK_TEST_HAVE_ZOOKEEPER_JUTE_H
    printf("zk_stat vs <zookeeper/zookeeper.jute.h> struct Stat: comparing layouts\n");
    CHECK_EQ_UINT(sizeof(zk_stat), sizeof(struct Stat));
    CHECK_EQ_UINT(offsetof(zk_stat, czxid), offsetof(struct Stat, czxid));
    CHECK_EQ_UINT(offsetof(zk_stat, mzxid), offsetof(struct Stat, mzxid));
    CHECK_EQ_UINT(offsetof(zk_stat, ctime), offsetof(struct Stat, ctime));
    CHECK_EQ_UINT(offsetof(zk_stat, mtime), offsetof(struct Stat, mtime));
    CHECK_EQ_UINT(offsetof(zk_stat, version), offsetof(struct Stat, version));
    CHECK_EQ_UINT(offsetof(zk_stat, cversion), offsetof(struct Stat, cversion));
    CHECK_EQ_UINT(offsetof(zk_stat, aversion), offsetof(struct Stat, aversion));
    CHECK_EQ_UINT(offsetof(zk_stat, ephemeral_owner), offsetof(struct Stat, ephemeralOwner));
    CHECK_EQ_UINT(offsetof(zk_stat, data_length), offsetof(struct Stat, dataLength));
    CHECK_EQ_UINT(offsetof(zk_stat, num_children), offsetof(struct Stat, numChildren));
    CHECK_EQ_UINT(offsetof(zk_stat, pzxid), offsetof(struct Stat, pzxid));
    CHECK_EQ_UINT(sizeof(((zk_stat *)0)->version), sizeof(((struct Stat *)0)->version));
    CHECK_EQ_UINT(sizeof(((zk_stat *)0)->ephemeral_owner),
                  sizeof(((struct Stat *)0)->ephemeralOwner));
#else
    printf("zk_stat vs struct Stat: <zookeeper/zookeeper.jute.h> not available, skipped\n");
#endif
}

#ifdef ZK_TEST_HAVE_ZOOKEEPER_JUTE_H
static void test_struct_stat_interop(void)
{
    struct Stat st;
    zk_stat_properties p;
    char buf[ZK_STAT_FORMAT_MAX + 1];
    uint8_t wire[ZK_STAT_WIRE_SIZE];
    zk_stat back;
    size_t n;
    memset(&st, 0, sizeof st);
    st.czxid = 101;
    st.mzxid = 102;
    st.ctime = 1500;
    st.mtime = 2500;
    st.version = 5;
    st.cversion = 6;
    st.aversion = 7;
    st.ephemeralOwner = 0x1234;
    st.dataLength = 9;
    st.numChildren = 10;
    st.pzxid = 111;
    n = zk_stat_format((const zk_stat *)(const void *)&st, buf, sizeof buf);
    CHECK_STR(buf, "ZnodeStat(czxid=101, mzxid=102, ctime=1500, mtime=2500, version=5, "
                   "cversion=6, aversion=7, ephemeralOwner=4660, dataLength=9, numChildren=10, "
                   "pzxid=111)");
    CHECK_EQ_UINT(n, strlen(buf));
    CHECK_EQ_INT(zk_stat_properties_get((const zk_stat *)(const void *)&st, &p), ZK_OK);
    CHECK_EQ_INT(p.creation_transaction_id, 101);
    CHECK_EQ_INT(p.last_modified_transaction_id, 102);
    CHECK(p.created == 1.5);
    CHECK(p.last_modified == 2.5);
    CHECK(p.has_owner);
    CHECK_EQ_INT(p.owner_session_id, 0x1234);
    CHECK_EQ_INT(p.version, 5);
    CHECK_EQ_INT(p.children_version, 6);
    CHECK_EQ_INT(p.acl_version, 7);
    CHECK_EQ_INT(p.data_length, 9);
    CHECK_EQ_INT(p.children_count, 10);
    CHECK(zk_stat_is_ephemeral((const zk_stat *)(const void *)&st));
    CHECK(zk_stat_created((const zk_stat *)(const void *)&st) == 1.5);
    /* encode from a struct Stat and decode into one */
    CHECK_EQ_INT(zk_stat_encode((const zk_stat *)(const void *)&st, wire, sizeof wire), ZK_OK);
    memset(&back, 0, sizeof back);
    CHECK_EQ_INT(zk_stat_decode(wire, sizeof wire, (zk_stat *)(void *)&back), ZK_OK);
    CHECK_EQ_INT(back.czxid, st.czxid);
    CHECK_EQ_INT(back.ephemeral_owner, st.ephemeralOwner);
    CHECK_EQ_INT(back.pzxid, st.pzxid);
    {
        struct Stat st2;
        memset(&st2, 0xAB, sizeof st2);
        CHECK_EQ_INT(zk_stat_decode(wire, sizeof wire, (zk_stat *)(void *)&st2), ZK_OK);
        CHECK_EQ_INT(st2.czxid, 101);
        CHECK_EQ_INT(st2.mzxid, 102);
        CHECK_EQ_INT(st2.ctime, 1500);
        CHECK_EQ_INT(st2.mtime, 2500);
        CHECK_EQ_INT(st2.version, 5);
        CHECK_EQ_INT(st2.cversion, 6);
        CHECK_EQ_INT(st2.aversion, 7);
        CHECK_EQ_INT(st2.ephemeralOwner, 0x1234);
        CHECK_EQ_INT(st2.dataLength, 9);
        CHECK_EQ_INT(st2.numChildren, 10);
        CHECK_EQ_INT(st2.pzxid, 111);
    }
}
#endif

/* ------------------------------------------------------------------------ */
/* Stat codec                                                                */
/* ------------------------------------------------------------------------ */

static zk_stat sample_stat(void)
{
    zk_stat s;
    memset(&s, 0, sizeof s);
    s.czxid = INT64_C(0x0102030405060708);
    s.mzxid = INT64_C(0x1112131415161718);
    s.ctime = INT64_C(0x2122232425262728);
    s.mtime = INT64_C(0x3132333435363738);
    s.version = INT32_C(0x41424344);
    s.cversion = INT32_C(0x51525354);
    s.aversion = INT32_C(0x61626364);
    s.ephemeral_owner = INT64_C(0x7172737475767778);
    s.data_length = INT32_C(0x0A0B0C0D);
    s.num_children = INT32_C(0x1A1B1C1D);
    /* 0x8182838485868788 as a two's complement int64 */
    s.pzxid = INT64_MIN + INT64_C(0x0182838485868788);
    return s;
}

/* The jute encoding of sample_stat(), written out by hand. */
static const uint8_t sample_wire[68] = {
    0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, /* czxid */
    0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, /* mzxid */
    0x21, 0x22, 0x23, 0x24, 0x25, 0x26, 0x27, 0x28, /* ctime */
    0x31, 0x32, 0x33, 0x34, 0x35, 0x36, 0x37, 0x38, /* mtime */
    0x41, 0x42, 0x43, 0x44,                         /* version */
    0x51, 0x52, 0x53, 0x54,                         /* cversion */
    0x61, 0x62, 0x63, 0x64,                         /* aversion */
    0x71, 0x72, 0x73, 0x74, 0x75, 0x76, 0x77, 0x78, /* ephemeralOwner */
    0x0A, 0x0B, 0x0C, 0x0D,                         /* dataLength */
    0x1A, 0x1B, 0x1C, 0x1D,                         /* numChildren */
    0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, /* pzxid */
};

static int stat_eq(const zk_stat *a, const zk_stat *b)
{
    return a->czxid == b->czxid && a->mzxid == b->mzxid && a->ctime == b->ctime &&
           a->mtime == b->mtime && a->version == b->version && a->cversion == b->cversion &&
           a->aversion == b->aversion && a->ephemeral_owner == b->ephemeral_owner &&
           a->data_length == b->data_length && a->num_children == b->num_children &&
           a->pzxid == b->pzxid;
}

static uint64_t rng_state = UINT64_C(0x9E3779B97F4A7C15);
static uint64_t rng_next(void)
{
    /* xorshift64* */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * UINT64_C(0x2545F4914F6CDD1D);
}

static int64_t u64_to_i64(uint64_t u)
{
    /* two's complement without implementation-defined conversions */
    if (u <= (uint64_t)INT64_MAX) {
        return (int64_t)u;
    }
    return (int64_t)(u - (uint64_t)INT64_MAX - 1) + INT64_MIN;
}

static int32_t u32_to_i32(uint32_t u)
{
    if (u <= (uint32_t)INT32_MAX) {
        return (int32_t)u;
    }
    return (int32_t)(u - (uint32_t)INT32_MAX - 1) + INT32_MIN;
}

static zk_stat random_stat(void)
{
    zk_stat s;
    memset(&s, 0, sizeof s);
    s.czxid = u64_to_i64(rng_next());
    s.mzxid = u64_to_i64(rng_next());
    s.ctime = u64_to_i64(rng_next());
    s.mtime = u64_to_i64(rng_next());
    s.version = u32_to_i32((uint32_t)rng_next());
    s.cversion = u32_to_i32((uint32_t)rng_next());
    s.aversion = u32_to_i32((uint32_t)rng_next());
    s.ephemeral_owner = u64_to_i64(rng_next());
    s.data_length = u32_to_i32((uint32_t)rng_next());
    s.num_children = u32_to_i32((uint32_t)rng_next());
    s.pzxid = u64_to_i64(rng_next());
    return s;
}

static void put_be64(uint8_t *p, int64_t v)
{
    uint64_t u = (uint64_t)v;
    int i;
    for (i = 7; i >= 0; i--) {
        p[i] = (uint8_t)(u & 0xFF);
        u >>= 8;
    }
}

static void put_be32(uint8_t *p, int32_t v)
{
    uint32_t u = (uint32_t)v;
    int i;
    for (i = 3; i >= 0; i--) {
        p[i] = (uint8_t)(u & 0xFF);
        u >>= 8;
    }
}

/* A reference encoder written independently of the library. */
static void reference_encode(const zk_stat *s, uint8_t out[68])
{
    put_be64(out + 0, s->czxid);
    put_be64(out + 8, s->mzxid);
    put_be64(out + 16, s->ctime);
    put_be64(out + 24, s->mtime);
    put_be32(out + 32, s->version);
    put_be32(out + 36, s->cversion);
    put_be32(out + 40, s->aversion);
    put_be64(out + 44, s->ephemeral_owner);
    put_be32(out + 52, s->data_length);
    put_be32(out + 56, s->num_children);
    put_be64(out + 60, s->pzxid);
}

static void test_stat_codec(void)
{
    zk_stat want = sample_stat();
    zk_stat got, sentinel;
    uint8_t buf[80], ref[68], before[80];
    size_t n;
    int i;

    /* the hand-written encoding and the reference encoder agree */
    reference_encode(&want, ref);
    CHECK_MEM(ref, sample_wire, 68);

    /* decode the hand-written bytes */
    memset(&got, 0xA5, sizeof got);
    CHECK_EQ_INT(zk_stat_decode(sample_wire, sizeof sample_wire, &got), ZK_OK);
    CHECK(stat_eq(&got, &want));
    CHECK_EQ_INT(got.pzxid, INT64_MIN + INT64_C(0x0182838485868788));

    /* encode: byte-exact; bytes after the first 68 untouched */
    memset(buf, 0xEE, sizeof buf);
    CHECK_EQ_INT(zk_stat_encode(&want, buf, sizeof buf), ZK_OK);
    CHECK_MEM(buf, sample_wire, 68);
    for (i = 68; i < 80; i++) {
        CHECK_EQ_UINT(buf[i], 0xEE);
    }
    memset(buf, 0xEE, sizeof buf);
    CHECK_EQ_INT(zk_stat_encode(&want, buf, 68), ZK_OK);
    CHECK_MEM(buf, sample_wire, 68);

    /* trailing bytes ignored on decode */
    memcpy(buf, sample_wire, 68);
    memset(buf + 68, 0x99, 12);
    memset(&got, 0, sizeof got);
    CHECK_EQ_INT(zk_stat_decode(buf, sizeof buf, &got), ZK_OK);
    CHECK(stat_eq(&got, &want));

    /* every short length is ZK_ERR_TRUNCATED, output untouched */
    for (n = 0; n < 68; n++) {
        memset(&sentinel, 0xA5, sizeof sentinel);
        memcpy(&got, &sentinel, sizeof got);
        set_ctx_int("len", (long long)n);
        CHECK_EQ_INT(zk_stat_decode(sample_wire, n, &got), ZK_ERR_TRUNCATED);
        CHECK_MEM(&got, &sentinel, sizeof got);
    }
    check_set_context(NULL);
    CHECK_EQ_INT(zk_stat_decode(sample_wire, 67, &got), ZK_ERR_TRUNCATED);

    /* len > PTRDIFF_MAX */
    memset(&sentinel, 0xA5, sizeof sentinel);
    memcpy(&got, &sentinel, sizeof got);
    CHECK_EQ_INT(zk_stat_decode(sample_wire, (size_t)PTRDIFF_MAX + 1u, &got),
                 ZK_ERR_SIZE_TOO_LARGE);
    CHECK_EQ_INT(zk_stat_decode(sample_wire, SIZE_MAX, &got), ZK_ERR_SIZE_TOO_LARGE);
    CHECK_MEM(&got, &sentinel, sizeof got);

    /* NULLs */
    CHECK_EQ_INT(zk_stat_decode(NULL, 68, &got), ZK_ERR_NULL_ARGUMENT);
    CHECK_EQ_INT(zk_stat_decode(NULL, 0, &got), ZK_ERR_NULL_ARGUMENT);
    CHECK_EQ_INT(zk_stat_decode(sample_wire, 68, NULL), ZK_ERR_NULL_ARGUMENT);
    CHECK_EQ_INT(zk_stat_decode(NULL, 68, NULL), ZK_ERR_NULL_ARGUMENT);
    CHECK_MEM(&got, &sentinel, sizeof got);
    CHECK_EQ_INT(zk_stat_encode(NULL, buf, sizeof buf), ZK_ERR_NULL_ARGUMENT);
    CHECK_EQ_INT(zk_stat_encode(&want, NULL, 68), ZK_ERR_NULL_ARGUMENT);
    CHECK_EQ_INT(zk_stat_encode(&want, NULL, 0), ZK_ERR_NULL_ARGUMENT);

    /* short output buffer: ZK_ERR_BUFFER_TOO_SMALL, nothing written */
    for (n = 0; n < 68; n++) {
        memset(buf, 0xEE, sizeof buf);
        memcpy(before, buf, sizeof buf);
        set_ctx_int("cap", (long long)n);
        CHECK_EQ_INT(zk_stat_encode(&want, buf, n), ZK_ERR_BUFFER_TOO_SMALL);
        CHECK_MEM(buf, before, sizeof buf);
    }
    check_set_context(NULL);
    memset(buf, 0xEE, sizeof buf);
    memcpy(before, buf, sizeof buf);
    CHECK_EQ_INT(zk_stat_encode(&want, buf, (size_t)PTRDIFF_MAX + 1u), ZK_ERR_SIZE_TOO_LARGE);
    CHECK_EQ_INT(zk_stat_encode(&want, buf, SIZE_MAX), ZK_ERR_SIZE_TOO_LARGE);
    CHECK_MEM(buf, before, sizeof buf);

    /* extremes and random round trips, both directions */
    {
        zk_stat ext;
        memset(&ext, 0, sizeof ext);
        ext.czxid = INT64_MIN;
        ext.mzxid = INT64_MAX;
        ext.ctime = -1;
        ext.mtime = 0;
        ext.version = INT32_MIN;
        ext.cversion = INT32_MAX;
        ext.aversion = -1;
        ext.ephemeral_owner = INT64_MIN;
        ext.data_length = INT32_MAX;
        ext.num_children = INT32_MIN;
        ext.pzxid = INT64_MAX;
        CHECK_EQ_INT(zk_stat_encode(&ext, buf, 68), ZK_OK);
        reference_encode(&ext, ref);
        CHECK_MEM(buf, ref, 68);
        CHECK_EQ_UINT(buf[0], 0x80);
        CHECK_EQ_UINT(buf[8], 0x7F);
        CHECK_EQ_UINT(buf[16], 0xFF);
        memset(&got, 0, sizeof got);
        CHECK_EQ_INT(zk_stat_decode(buf, 68, &got), ZK_OK);
        CHECK(stat_eq(&got, &ext));
    }
    {
        int bad = 0;
        for (i = 0; i < 2000; i++) {
            zk_stat r = random_stat(), back;
            uint8_t enc[68], raw[68], re[68];
            int k;
            memset(&back, 0, sizeof back);
            reference_encode(&r, ref);
            if (zk_stat_encode(&r, enc, sizeof enc) != ZK_OK || memcmp(enc, ref, 68) != 0 ||
                zk_stat_decode(enc, sizeof enc, &back) != ZK_OK || !stat_eq(&back, &r)) {
                bad++;
            }
            for (k = 0; k < 68; k++) {
                raw[k] = (uint8_t)rng_next();
            }
            if (zk_stat_decode(raw, sizeof raw, &back) != ZK_OK ||
                zk_stat_encode(&back, re, sizeof re) != ZK_OK || memcmp(raw, re, 68) != 0) {
                bad++;
            }
        }
        CHECK_EQ_INT(bad, 0);
    }
}

/* ------------------------------------------------------------------------ */
/* Stat properties                                                           */
/* ------------------------------------------------------------------------ */

static int same_double(double a, double b)
{
    uint64_t ua, ub;
    memcpy(&ua, &a, sizeof ua);
    memcpy(&ub, &b, sizeof ub);
    return ua == ub;
}

static void test_stat_properties(void)
{
    static const int64_t ms_values[] = {
        0,
        1,
        -1,
        999,
        1000,
        1001,
        1500,
        -1500,
        123456789,
        1234567890123,
        1700000000123,
        -1700000000123,
        (INT64_C(1) << 53) - 1,
        (INT64_C(1) << 53) + 1,
        (INT64_C(1) << 53) + 3,
        -(INT64_C(1) << 53) - 1,
        (INT64_C(1) << 62) + 1,
        INT64_MAX,
        INT64_MAX - 1,
        INT64_MIN,
        INT64_MIN + 1,
    };
    size_t i;
    zk_stat s = sample_stat();
    double nan_value;

    for (i = 0; i < ARRAY_LEN(ms_values); i++) {
        volatile int64_t ms = ms_values[i]; /* no constant folding */
        double want = (double)ms / 1000.0;
        zk_stat_properties p;
        s.ctime = ms;
        s.mtime = ms_values[ARRAY_LEN(ms_values) - 1 - i];
        set_ctx_int("ms", (long long)ms);
        CHECK(same_double(zk_stat_created(&s), want));
        CHECK(same_double(zk_stat_last_modified(&s), (double)s.mtime / 1000.0));
        CHECK_EQ_INT(zk_stat_properties_get(&s, &p), ZK_OK);
        CHECK(same_double(p.created, want));
        CHECK(same_double(p.last_modified, (double)s.mtime / 1000.0));
    }
    check_set_context(NULL);
    s.ctime = 1500;
    CHECK(zk_stat_created(&s) == 1.5);
    s.mtime = -1;
    CHECK(zk_stat_last_modified(&s) == -0.001);
    s.ctime = 0;
    CHECK(same_double(zk_stat_created(&s), 0.0)); /* +0.0, not -0.0 */

    nan_value = zk_stat_created(NULL);
    CHECK(nan_value != nan_value);
    nan_value = zk_stat_last_modified(NULL);
    CHECK(nan_value != nan_value);

    /* owner_session_id / is_ephemeral */
    {
        static const int64_t owners[] = {1, 42, -1, -5, INT64_MIN, INT64_MAX,
                                         INT64_C(0x100000000)};
        int64_t out;
        for (i = 0; i < ARRAY_LEN(owners); i++) {
            s.ephemeral_owner = owners[i];
            out = 0x5A5A;
            set_ctx_int("owner", (long long)owners[i]);
            CHECK(zk_stat_owner_session_id(&s, &out));
            CHECK_EQ_INT(out, owners[i]);
            CHECK(zk_stat_owner_session_id(&s, NULL)); /* NULL out: still true, no crash */
            CHECK(zk_stat_is_ephemeral(&s));
        }
        check_set_context(NULL);
        s.ephemeral_owner = 0;
        out = 0x5A5A;
        CHECK(!zk_stat_owner_session_id(&s, &out));
        CHECK_EQ_INT(out, 0x5A5A);
        CHECK(!zk_stat_owner_session_id(&s, NULL));
        CHECK(!zk_stat_is_ephemeral(&s));
        CHECK(!zk_stat_owner_session_id(NULL, &out));
        CHECK_EQ_INT(out, 0x5A5A);
        CHECK(!zk_stat_owner_session_id(NULL, NULL));
        CHECK(!zk_stat_is_ephemeral(NULL));
    }

    /* zk_stat_properties_get: every field */
    {
        zk_stat_properties p, sentinel;
        zk_stat t = sample_stat();
        memset(&p, 0xA5, sizeof p);
        CHECK_EQ_INT(zk_stat_properties_get(&t, &p), ZK_OK);
        CHECK_EQ_INT(p.creation_transaction_id, t.czxid);
        CHECK_EQ_INT(p.last_modified_transaction_id, t.mzxid);
        CHECK(same_double(p.created, (double)t.ctime / 1000.0));
        CHECK(same_double(p.last_modified, (double)t.mtime / 1000.0));
        CHECK_EQ_INT(p.owner_session_id, t.ephemeral_owner);
        CHECK(p.has_owner == true);
        CHECK_EQ_INT(p.version, t.version);
        CHECK_EQ_INT(p.children_version, t.cversion);
        CHECK_EQ_INT(p.acl_version, t.aversion);
        CHECK_EQ_INT(p.data_length, t.data_length);
        CHECK_EQ_INT(p.children_count, t.num_children);

        t.ephemeral_owner = 0;
        memset(&p, 0xA5, sizeof p);
        CHECK_EQ_INT(zk_stat_properties_get(&t, &p), ZK_OK);
        CHECK(p.has_owner == false);
        CHECK_EQ_INT(p.owner_session_id, 0);

        t.ephemeral_owner = -7;
        CHECK_EQ_INT(zk_stat_properties_get(&t, &p), ZK_OK);
        CHECK(p.has_owner == true);
        CHECK_EQ_INT(p.owner_session_id, -7);

        memset(&sentinel, 0xA5, sizeof sentinel);
        memcpy(&p, &sentinel, sizeof p);
        CHECK_EQ_INT(zk_stat_properties_get(NULL, &p), ZK_ERR_NULL_ARGUMENT);
        CHECK_MEM(&p, &sentinel, sizeof p);
        CHECK_EQ_INT(zk_stat_properties_get(&t, NULL), ZK_ERR_NULL_ARGUMENT);
        CHECK_EQ_INT(zk_stat_properties_get(NULL, NULL), ZK_ERR_NULL_ARGUMENT);
    }
}

/* ------------------------------------------------------------------------ */
/* Stat repr                                                                 */
/* ------------------------------------------------------------------------ */

static size_t reference_repr(const zk_stat *s, char *buf, size_t cap)
{
    int n = snprintf(buf, cap,
                     "ZnodeStat(czxid=%" PRId64 ", mzxid=%" PRId64 ", ctime=%" PRId64
                     ", mtime=%" PRId64 ", version=%" PRId32 ", cversion=%" PRId32
                     ", aversion=%" PRId32 ", ephemeralOwner=%" PRId64 ", dataLength=%" PRId32
                     ", numChildren=%" PRId32 ", pzxid=%" PRId64 ")",
                     s->czxid, s->mzxid, s->ctime, s->mtime, s->version, s->cversion,
                     s->aversion, s->ephemeral_owner, s->data_length, s->num_children, s->pzxid);
    return (size_t)n;
}

static void check_truncation(const zk_stat *s)
{
    char full[ZK_STAT_FORMAT_MAX + 1];
    char buf[ZK_STAT_FORMAT_MAX + 16];
    size_t len = zk_stat_format(s, full, sizeof full);
    size_t cap;
    int bad = 0;
    CHECK(len > 0 && len <= ZK_STAT_FORMAT_MAX);
    CHECK_EQ_UINT(strlen(full), len);
    CHECK_EQ_UINT(zk_stat_format(s, NULL, 0), len);
    for (cap = 0; cap <= len + 1; cap++) {
        size_t k, keep;
        memset(buf, 0x7F, sizeof buf);
        if (zk_stat_format(s, buf, cap) != len) {
            bad++;
            continue;
        }
        if (cap == 0) {
            for (k = 0; k < sizeof buf; k++) {
                if (buf[k] != 0x7F) {
                    bad++;
                    break;
                }
            }
            continue;
        }
        keep = cap - 1 < len ? cap - 1 : len;
        if (memcmp(buf, full, keep) != 0 || buf[keep] != '\0') {
            bad++;
        }
        for (k = cap; k < sizeof buf; k++) { /* nothing written past cap */
            if (buf[k] != 0x7F) {
                bad++;
                break;
            }
        }
    }
    set_ctx_int("len", (long long)len);
    CHECK_EQ_INT(bad, 0);
    check_set_context(NULL);
}

static void test_stat_format(void)
{
    zk_stat s;
    char buf[ZK_STAT_FORMAT_MAX + 1], ref[512];
    const char *want = "ZnodeStat(czxid=1, mzxid=2, ctime=3, mtime=4, version=5, cversion=6, "
                       "aversion=7, ephemeralOwner=8, dataLength=9, numChildren=10, pzxid=11)";
    size_t n;
    int i;

    memset(&s, 0, sizeof s);
    s.czxid = 1;
    s.mzxid = 2;
    s.ctime = 3;
    s.mtime = 4;
    s.version = 5;
    s.cversion = 6;
    s.aversion = 7;
    s.ephemeral_owner = 8;
    s.data_length = 9;
    s.num_children = 10;
    s.pzxid = 11;
    memset(buf, 0x7F, sizeof buf);
    n = zk_stat_format(&s, buf, sizeof buf);
    CHECK_STR(buf, want);
    CHECK_EQ_UINT(n, strlen(want));
    CHECK_EQ_UINT(zk_stat_format(&s, NULL, 0), strlen(want));
    memset(buf, 0x7F, sizeof buf);
    CHECK_EQ_UINT(zk_stat_format(&s, buf, 0), strlen(want));
    CHECK_EQ_UINT((unsigned char)buf[0], 0x7F); /* cap 0 writes nothing */
    check_truncation(&s);

    /* all zeros, negative values */
    memset(&s, 0, sizeof s);
    n = zk_stat_format(&s, buf, sizeof buf);
    CHECK_STR(buf, "ZnodeStat(czxid=0, mzxid=0, ctime=0, mtime=0, version=0, cversion=0, "
                   "aversion=0, ephemeralOwner=0, dataLength=0, numChildren=0, pzxid=0)");
    CHECK_EQ_UINT(n, strlen(buf));
    s.version = -1;
    s.ephemeral_owner = -42;
    zk_stat_format(&s, buf, sizeof buf);
    CHECK(strstr(buf, "version=-1, ") != NULL);
    CHECK(strstr(buf, "ephemeralOwner=-42, ") != NULL);

    /* INT64_MIN / INT32_MIN everywhere: the longest repr, exactly the maximum */
    s.czxid = s.mzxid = s.ctime = s.mtime = s.ephemeral_owner = s.pzxid = INT64_MIN;
    s.version = s.cversion = s.aversion = s.data_length = s.num_children = INT32_MIN;
    memset(buf, 0x7F, sizeof buf);
    n = zk_stat_format(&s, buf, sizeof buf);
    CHECK_EQ_UINT(n, ZK_STAT_FORMAT_MAX);
    CHECK_EQ_UINT(strlen(buf), n);
    reference_repr(&s, ref, sizeof ref);
    CHECK_STR(buf, ref);
    CHECK_EQ_UINT(strlen(ref), ZK_STAT_FORMAT_MAX);
    CHECK_EQ_UINT(zk_stat_format(&s, NULL, 0), ZK_STAT_FORMAT_MAX);
    check_truncation(&s);

    s.czxid = s.mzxid = s.ctime = s.mtime = s.ephemeral_owner = s.pzxid = INT64_MAX;
    s.version = s.cversion = s.aversion = s.data_length = s.num_children = INT32_MAX;
    n = zk_stat_format(&s, buf, sizeof buf);
    reference_repr(&s, ref, sizeof ref);
    CHECK_STR(buf, ref);
    CHECK(n < ZK_STAT_FORMAT_MAX);
    check_truncation(&s);

    /* random stats agree with a snprintf reference */
    {
        int bad = 0;
        for (i = 0; i < 500; i++) {
            zk_stat r = random_stat();
            size_t rn = reference_repr(&r, ref, sizeof ref);
            memset(buf, 0x7F, sizeof buf);
            if (zk_stat_format(&r, buf, sizeof buf) != rn || strcmp(buf, ref) != 0) {
                bad++;
            }
        }
        CHECK_EQ_INT(bad, 0);
    }

    /* NULL stat, NULL buffer with cap > 0, cap > PTRDIFF_MAX: 0, nothing written */
    memset(buf, 0x7F, sizeof buf);
    CHECK_EQ_UINT(zk_stat_format(NULL, buf, sizeof buf), 0);
    CHECK_EQ_UINT((unsigned char)buf[0], 0x7F);
    CHECK_EQ_UINT(zk_stat_format(NULL, NULL, 0), 0);
    CHECK_EQ_UINT(zk_stat_format(&s, NULL, 10), 0);
    CHECK_EQ_UINT(zk_stat_format(&s, buf, (size_t)PTRDIFF_MAX + 1u), 0);
    CHECK_EQ_UINT(zk_stat_format(&s, buf, SIZE_MAX), 0);
    CHECK_EQ_UINT((unsigned char)buf[0], 0x7F);
}

/* ------------------------------------------------------------------------ */
/* Watch event decoders                                                      */
/* ------------------------------------------------------------------------ */

/* Appends a jute WatcherEvent; path NULL encodes the null string (-1). */
static size_t encode_event(uint8_t *out, int32_t type, int32_t state, const char *path,
                           int32_t path_len_field)
{
    size_t n = 0;
    put_be32(out + n, type);
    n += 4;
    put_be32(out + n, state);
    n += 4;
    put_be32(out + n, path_len_field);
    n += 4;
    if (path != NULL && path_len_field > 0) {
        memcpy(out + n, path, (size_t)path_len_field);
        n += (size_t)path_len_field;
    }
    return n;
}

static size_t encode_event_path(uint8_t *out, int32_t type, int32_t state, const char *path)
{
    return encode_event(out, type, state, path, path == NULL ? -1 : (int32_t)strlen(path));
}

static size_t encode_header(uint8_t *out, int32_t xid, int64_t zxid, int32_t err)
{
    put_be32(out, xid);
    put_be64(out + 4, zxid);
    put_be32(out + 12, err);
    return 16;
}

typedef int32_t (*decode_fn)(const uint8_t *, size_t, zk_watched_event *);

/* Calls a decoder expecting failure with `want`, checking *out is untouched. */
static int decode_fails(decode_fn decode, const uint8_t *buf, size_t len, int32_t want)
{
    zk_watched_event ev, sentinel;
    int32_t rc;
    memset(&sentinel, 0xA5, sizeof sentinel);
    memcpy(&ev, &sentinel, sizeof ev);
    rc = decode(buf, len, &ev);
    return rc == want && memcmp(&ev, &sentinel, sizeof ev) == 0;
}

static const int32_t wire_event_types[] = {-1, 1, 2, 3, 4, 5, 6, 7};

static void test_watched_event_decode(void)
{
    uint8_t buf[512];
    zk_watched_event ev;
    size_t n, i, j, k;

    /* every wire type x every wire state */
    for (i = 0; i < ARRAY_LEN(wire_event_types); i++) {
        for (j = 0; j < ARRAY_LEN(wire_table); j++) {
            n = encode_event_path(buf, wire_event_types[i], wire_table[j].code, "/a/b");
            memset(&ev, 0xA5, sizeof ev);
            set_ctx_int("type*1000+state", wire_event_types[i] * 1000 + wire_table[j].code);
            CHECK_EQ_INT(zk_watched_event_decode(buf, n, &ev), ZK_OK);
            CHECK_EQ_INT(ev.type, wire_event_types[i]);
            CHECK_EQ_INT(ev.state, wire_table[j].state);
            CHECK(ev.path == (const char *)buf + 12); /* a view into buf */
            CHECK_EQ_UINT(ev.path_len, 4);
            CHECK(ev.path != NULL && memcmp(ev.path, "/a/b", 4) == 0);
            CHECK_EQ_INT(ev.zxid, ZK_ZXID_UNKNOWN);
        }
    }
    check_set_context(NULL);

    /* not NUL-terminated: the byte after the path is whatever follows */
    n = encode_event_path(buf, 3, 3, "/node");
    buf[n] = 'Z';
    buf[n + 1] = 'Z';
    CHECK_EQ_INT(zk_watched_event_decode(buf, n + 2, &ev), ZK_OK); /* trailing bytes ignored */
    CHECK(ev.path == (const char *)buf + 12);
    CHECK_EQ_UINT(ev.path_len, 5);
    CHECK(memcmp(ev.path, "/node", 5) == 0);
    CHECK_EQ_INT(ev.type, ZK_EVENT_TYPE_CHANGED);

    /* the null string: path NULL, length 0 */
    n = encode_event_path(buf, -1, 3, NULL);
    CHECK_EQ_UINT(n, 12);
    memset(&ev, 0xA5, sizeof ev);
    CHECK_EQ_INT(zk_watched_event_decode(buf, n, &ev), ZK_OK);
    CHECK(ev.path == NULL);
    CHECK_EQ_UINT(ev.path_len, 0);
    CHECK_EQ_INT(ev.type, ZK_EVENT_TYPE_NONE);
    CHECK_EQ_INT(ev.state, ZK_KEEPER_STATE_CONNECTED);
    CHECK_EQ_INT(ev.zxid, ZK_ZXID_UNKNOWN);

    /* the empty string: length 0, a view at buf + 12 */
    n = encode_event_path(buf, 1, 0, "");
    memset(&ev, 0xA5, sizeof ev);
    CHECK_EQ_INT(zk_watched_event_decode(buf, n, &ev), ZK_OK);
    CHECK_EQ_UINT(ev.path_len, 0);
    CHECK(ev.path == (const char *)buf + 12);
    CHECK_EQ_INT(ev.state, ZK_KEEPER_STATE_CONNECTING);

    /* multi-byte UTF-8 */
    n = encode_event_path(buf, 4, 6, "/\xc3\xa9/\xf0\x9f\x98\x80/\xe2\x82\xac");
    CHECK_EQ_INT(zk_watched_event_decode(buf, n, &ev), ZK_OK);
    CHECK_EQ_UINT(ev.path_len, 12);
    CHECK_EQ_INT(ev.state, ZK_KEEPER_STATE_CONNECTED); /* SaslAuthenticated */

    /* truncation: every prefix of a valid encoding */
    n = encode_event_path(buf, 2, -112, "/truncate/me");
    for (k = 0; k < n; k++) {
        set_ctx_int("prefix", (long long)k);
        CHECK(decode_fails(zk_watched_event_decode, buf, k,
                           k < 12 ? ZK_ERR_TRUNCATED : ZK_ERR_LENGTH_EXCEEDS_INPUT));
    }
    check_set_context(NULL);
    CHECK_EQ_INT(zk_watched_event_decode(buf, n, &ev), ZK_OK);
    CHECK_EQ_INT(ev.state, ZK_KEEPER_STATE_EXPIRED_SESSION);
    {
        uint8_t empty[1] = {0};
        CHECK(decode_fails(zk_watched_event_decode, empty, 0, ZK_ERR_TRUNCATED));
    }

    /* negative lengths other than -1 */
    {
        const int32_t neg[] = {-2, -3, -100, -65536, INT32_MIN + 1, INT32_MIN};
        for (i = 0; i < ARRAY_LEN(neg); i++) {
            n = encode_event(buf, 1, 3, NULL, neg[i]);
            memset(buf + n, 'x', 64);
            set_ctx_int("len", neg[i]);
            CHECK(decode_fails(zk_watched_event_decode, buf, n + 64, ZK_ERR_NEGATIVE_LENGTH));
        }
        check_set_context(NULL);
    }

    /* a length past the end */
    n = encode_event(buf, 1, 3, "/abcd", 5);
    CHECK(decode_fails(zk_watched_event_decode, buf, n - 1, ZK_ERR_LENGTH_EXCEEDS_INPUT));
    put_be32(buf + 8, 6);
    CHECK(decode_fails(zk_watched_event_decode, buf, n, ZK_ERR_LENGTH_EXCEEDS_INPUT));
    put_be32(buf + 8, INT32_MAX);
    CHECK(decode_fails(zk_watched_event_decode, buf, n, ZK_ERR_LENGTH_EXCEEDS_INPUT));

    /* invalid UTF-8 */
    {
        const char *bad[] = {"/\xff",          "/a\x80",     "/\xc0\xaf", "/\xed\xa0\x80",
                             "/\xf4\x90\x80\x80", "/trunc\xc3", "\xe2\x82"};
        for (i = 0; i < ARRAY_LEN(bad); i++) {
            n = encode_event_path(buf, 3, 3, bad[i]);
            set_ctx_int("utf8 case", (long long)i);
            CHECK(decode_fails(zk_watched_event_decode, buf, n, ZK_ERR_INVALID_UTF8));
        }
        check_set_context(NULL);
    }

    /* unknown types (NOT_WATCHING, -2, is never sent on the wire) */
    {
        const int32_t bad[] = {-2, 0, 8, 9, -3, 100, INT32_MIN, INT32_MAX};
        for (i = 0; i < ARRAY_LEN(bad); i++) {
            n = encode_event_path(buf, bad[i], 3, "/x");
            set_ctx_int("type", bad[i]);
            CHECK(decode_fails(zk_watched_event_decode, buf, n, ZK_ERR_INVALID_EVENT_TYPE));
        }
        check_set_context(NULL);
    }

    /* states outside the wire table */
    {
        const int32_t bad[] = {2, -1, 8, 999, -113, -111, INT32_MIN, INT32_MAX};
        for (i = 0; i < ARRAY_LEN(bad); i++) {
            n = encode_event_path(buf, 1, bad[i], "/x");
            set_ctx_int("state", bad[i]);
            CHECK(decode_fails(zk_watched_event_decode, buf, n, ZK_ERR_INVALID_KEEPER_STATE));
        }
        check_set_context(NULL);
    }

    /* NULLs and sizes */
    n = encode_event_path(buf, 1, 3, "/x");
    CHECK(decode_fails(zk_watched_event_decode, NULL, n, ZK_ERR_NULL_ARGUMENT));
    CHECK(decode_fails(zk_watched_event_decode, NULL, 0, ZK_ERR_NULL_ARGUMENT));
    CHECK_EQ_INT(zk_watched_event_decode(buf, n, NULL), ZK_ERR_NULL_ARGUMENT);
    CHECK(decode_fails(zk_watched_event_decode, buf, (size_t)PTRDIFF_MAX + 1u,
                       ZK_ERR_SIZE_TOO_LARGE));
    CHECK(decode_fails(zk_watched_event_decode, buf, SIZE_MAX, ZK_ERR_SIZE_TOO_LARGE));
}

static void test_notification_decode(void)
{
    uint8_t buf[512];
    zk_watched_event ev;
    size_t n, k, i;
    const int64_t zxids[] = {INT64_C(0x100000005), 0, 1, -1, INT64_MAX, INT64_MIN};

    for (i = 0; i < ARRAY_LEN(zxids); i++) {
        n = encode_header(buf, -1, zxids[i], 0);
        n += encode_event_path(buf + n, 4, 3, "/p");
        memset(&ev, 0xA5, sizeof ev);
        set_ctx_int("zxid index", (long long)i);
        CHECK_EQ_INT(zk_notification_decode(buf, n, &ev), ZK_OK);
        CHECK_EQ_INT(ev.zxid, zxids[i]);
        CHECK_EQ_INT(ev.type, ZK_EVENT_TYPE_CHILD);
        CHECK_EQ_INT(ev.state, ZK_KEEPER_STATE_CONNECTED);
        CHECK(ev.path == (const char *)buf + 28);
        CHECK_EQ_UINT(ev.path_len, 2);
        CHECK(memcmp(ev.path, "/p", 2) == 0);
    }
    check_set_context(NULL);

    /* err is ignored; trailing bytes ignored; null path */
    n = encode_header(buf, ZK_WATCH_XID, 77, -101);
    n += encode_event_path(buf + n, -1, -112, NULL);
    memset(buf + n, 0xCC, 8);
    CHECK_EQ_INT(zk_notification_decode(buf, n + 8, &ev), ZK_OK);
    CHECK_EQ_INT(ev.zxid, 77);
    CHECK_EQ_INT(ev.type, ZK_EVENT_TYPE_NONE);
    CHECK_EQ_INT(ev.state, ZK_KEEPER_STATE_EXPIRED_SESSION);
    CHECK(ev.path == NULL);
    CHECK_EQ_UINT(ev.path_len, 0);

    /* xid != -1 */
    {
        const int32_t xids[] = {0, 1, -2, -3, 5, INT32_MIN, INT32_MAX};
        for (i = 0; i < ARRAY_LEN(xids); i++) {
            n = encode_header(buf, xids[i], 5, 0);
            n += encode_event_path(buf + n, 1, 3, "/x");
            set_ctx_int("xid", xids[i]);
            CHECK(decode_fails(zk_notification_decode, buf, n, ZK_ERR_NOT_A_NOTIFICATION));
        }
        check_set_context(NULL);
    }

    /* every prefix */
    n = encode_header(buf, -1, 9, 0);
    n += encode_event_path(buf + n, 3, 5, "/some/path");
    for (k = 0; k < n; k++) {
        set_ctx_int("prefix", (long long)k);
        CHECK(decode_fails(zk_notification_decode, buf, k,
                           k < 28 ? ZK_ERR_TRUNCATED : ZK_ERR_LENGTH_EXCEEDS_INPUT));
    }
    check_set_context(NULL);
    CHECK_EQ_INT(zk_notification_decode(buf, n, &ev), ZK_OK);
    CHECK_EQ_INT(ev.state, ZK_KEEPER_STATE_CONNECTED_RO);

    /* errors inside the event */
    n = encode_header(buf, -1, 9, 0);
    n += encode_event(buf + n, 1, 3, NULL, -2);
    CHECK(decode_fails(zk_notification_decode, buf, n, ZK_ERR_NEGATIVE_LENGTH));
    put_be32(buf + 24, INT32_MIN);
    CHECK(decode_fails(zk_notification_decode, buf, n, ZK_ERR_NEGATIVE_LENGTH));
    n = encode_header(buf, -1, 9, 0);
    n += encode_event(buf + n, 1, 3, "/ab", 3);
    put_be32(buf + 24, 4);
    CHECK(decode_fails(zk_notification_decode, buf, n, ZK_ERR_LENGTH_EXCEEDS_INPUT));
    n = encode_header(buf, -1, 9, 0);
    n += encode_event_path(buf + n, 1, 3, "/\xfe");
    CHECK(decode_fails(zk_notification_decode, buf, n, ZK_ERR_INVALID_UTF8));
    n = encode_header(buf, -1, 9, 0);
    n += encode_event_path(buf + n, -2, 3, "/x");
    CHECK(decode_fails(zk_notification_decode, buf, n, ZK_ERR_INVALID_EVENT_TYPE));
    n = encode_header(buf, -1, 9, 0);
    n += encode_event_path(buf + n, 0, 3, "/x");
    CHECK(decode_fails(zk_notification_decode, buf, n, ZK_ERR_INVALID_EVENT_TYPE));
    n = encode_header(buf, -1, 9, 0);
    n += encode_event_path(buf + n, 1, 2, "/x");
    CHECK(decode_fails(zk_notification_decode, buf, n, ZK_ERR_INVALID_KEEPER_STATE));
    n = encode_header(buf, -1, 9, 0);
    n += encode_event_path(buf + n, 1, -113, "/x");
    CHECK(decode_fails(zk_notification_decode, buf, n, ZK_ERR_INVALID_KEEPER_STATE));

    /* NULLs and sizes */
    n = encode_header(buf, -1, 9, 0);
    n += encode_event_path(buf + n, 1, 3, "/x");
    CHECK(decode_fails(zk_notification_decode, NULL, n, ZK_ERR_NULL_ARGUMENT));
    CHECK_EQ_INT(zk_notification_decode(buf, n, NULL), ZK_ERR_NULL_ARGUMENT);
    CHECK(decode_fails(zk_notification_decode, buf, (size_t)PTRDIFF_MAX + 1u,
                       ZK_ERR_SIZE_TOO_LARGE));
    CHECK(decode_fails(zk_notification_decode, buf, SIZE_MAX, ZK_ERR_SIZE_TOO_LARGE));

    /* a bare WatcherEvent is not a notification (its first int is the type) */
    n = encode_event_path(buf, 1, 3, "/some/long/enough/path");
    CHECK(decode_fails(zk_notification_decode, buf, n, ZK_ERR_NOT_A_NOTIFICATION));
}

/* ------------------------------------------------------------------------ */
/* Session state machine                                                     */
/* ------------------------------------------------------------------------ */

#define LOST_ACTIONS                                                                       \
    (ZK_SESSION_ACTION_FIRE_ONE_SHOT | ZK_SESSION_ACTION_NOTIFY_PERSISTENT |               \
     ZK_SESSION_ACTION_DROP_PERSISTENT | ZK_SESSION_ACTION_FAIL_PENDING |                  \
     ZK_SESSION_ACTION_RESET_SESSION)
#define SUSPEND_ACTIONS                                                                    \
    (ZK_SESSION_ACTION_FIRE_ONE_SHOT | ZK_SESSION_ACTION_NOTIFY_PERSISTENT |               \
     ZK_SESSION_ACTION_FAIL_PENDING)
#define SUSPEND_KEEP_ACTIONS                                                               \
    (ZK_SESSION_ACTION_NOTIFY_ONE_SHOT | ZK_SESSION_ACTION_NOTIFY_PERSISTENT |             \
     ZK_SESSION_ACTION_FAIL_PENDING)

struct step_case {
    int32_t feed;
    int changed;
    int notify;      /* listeners told */
    int32_t told;    /* the kazoo state told, when notify */
    int32_t kazoo;   /* machine's kazoo state afterwards */
    uint32_t actions;
};

static void run_steps(const char *what, uint32_t options, const struct step_case *cases,
                      size_t n)
{
    zk_session_machine m;
    size_t i;
    char ctx[96];
    memset(&m, 0xA5, sizeof m);
    CHECK_EQ_INT(zk_session_machine_init(&m), ZK_OK);
    CHECK_EQ_INT(m.keeper_state, ZK_KEEPER_STATE_CLOSED);
    CHECK_EQ_INT(m.kazoo_state, ZK_KAZOO_STATE_LOST);
    CHECK(m.connected_before == false);
    for (i = 0; i < n; i++) {
        zk_session_step st;
        memset(&st, 0xA5, sizeof st);
        snprintf(ctx, sizeof ctx, "%s step %lu (feed %d)", what, (unsigned long)i,
                 (int)cases[i].feed);
        check_set_context(ctx);
        CHECK_EQ_INT(zk_session_machine_step(&m, cases[i].feed, options, &st), ZK_OK);
        CHECK_EQ_INT(st.changed, cases[i].changed);
        CHECK_EQ_INT(st.notify, cases[i].notify);
        if (cases[i].notify) {
            CHECK_EQ_INT(st.kazoo_state, cases[i].told);
        }
        CHECK_EQ_UINT(st.actions, cases[i].actions);
        CHECK_EQ_INT(m.keeper_state, cases[i].feed);
        CHECK_EQ_INT(m.kazoo_state, cases[i].kazoo);
    }
    check_set_context(NULL);
}

/* kazoo's rules, written from the text of KazooClient._session_callback and
   _make_state_change (default options). */
static void reference_step(int32_t *keeper, int32_t *kazoo, int32_t feed, int *changed,
                           int *notify, int32_t *told, uint32_t *actions)
{
    int was_closed = *keeper == ZK_KEEPER_STATE_EXPIRED_SESSION ||
                     *keeper == ZK_KEEPER_STATE_AUTH_FAILED || *keeper == ZK_KEEPER_STATE_CLOSED;
    int32_t target;
    *changed = 0;
    *notify = 0;
    *told = -1;
    *actions = 0;
    if (feed == *keeper) {
        return;
    }
    *changed = 1;
    *keeper = feed;
    if (was_closed && feed == ZK_KEEPER_STATE_CONNECTING) {
        return;
    }
    if (feed == ZK_KEEPER_STATE_CONNECTED || feed == ZK_KEEPER_STATE_CONNECTED_RO) {
        target = ZK_KAZOO_STATE_CONNECTED;
    } else if (feed == ZK_KEEPER_STATE_EXPIRED_SESSION || feed == ZK_KEEPER_STATE_AUTH_FAILED ||
               feed == ZK_KEEPER_STATE_CLOSED) {
        target = ZK_KAZOO_STATE_LOST;
        *actions = LOST_ACTIONS;
    } else {
        target = ZK_KAZOO_STATE_SUSPENDED;
        *actions = SUSPEND_ACTIONS;
    }
    if (target != *kazoo) {
        *kazoo = target;
        *notify = 1;
        *told = target;
    }
}

static int machine_eq(const zk_session_machine *a, const zk_session_machine *b)
{
    return a->keeper_state == b->keeper_state && a->kazoo_state == b->kazoo_state &&
           a->connected_before == b->connected_before;
}

static void test_session_machine(void)
{
    /* The sequence kazoo produces on a fresh client. */
    static const struct step_case kazoo_seq[] = {
        {ZK_KEEPER_STATE_CONNECTING, 1, 0, 0, ZK_KAZOO_STATE_LOST, 0},
        {ZK_KEEPER_STATE_CONNECTED, 1, 1, ZK_KAZOO_STATE_CONNECTED, ZK_KAZOO_STATE_CONNECTED, 0},
        {ZK_KEEPER_STATE_CONNECTING, 1, 1, ZK_KAZOO_STATE_SUSPENDED, ZK_KAZOO_STATE_SUSPENDED,
         SUSPEND_ACTIONS},
        {ZK_KEEPER_STATE_CONNECTED_RO, 1, 1, ZK_KAZOO_STATE_CONNECTED, ZK_KAZOO_STATE_CONNECTED,
         0},
        {ZK_KEEPER_STATE_CONNECTED, 1, 0, 0, ZK_KAZOO_STATE_CONNECTED, 0},
        {ZK_KEEPER_STATE_EXPIRED_SESSION, 1, 1, ZK_KAZOO_STATE_LOST, ZK_KAZOO_STATE_LOST,
         LOST_ACTIONS},
        {ZK_KEEPER_STATE_CONNECTING, 1, 0, 0, ZK_KAZOO_STATE_LOST, 0},
        {ZK_KEEPER_STATE_CONNECTED, 1, 1, ZK_KAZOO_STATE_CONNECTED, ZK_KAZOO_STATE_CONNECTED, 0},
        {ZK_KEEPER_STATE_AUTH_FAILED, 1, 1, ZK_KAZOO_STATE_LOST, ZK_KAZOO_STATE_LOST,
         LOST_ACTIONS},
        /* already LOST: no notification, but kazoo still resets */
        {ZK_KEEPER_STATE_CLOSED, 1, 0, 0, ZK_KAZOO_STATE_LOST, LOST_ACTIONS},
        /* a repeat is ignored entirely */
        {ZK_KEEPER_STATE_CLOSED, 0, 0, 0, ZK_KAZOO_STATE_LOST, 0},
        {ZK_KEEPER_STATE_CONNECTING, 1, 0, 0, ZK_KAZOO_STATE_LOST, 0},
        {ZK_KEEPER_STATE_CONNECTING, 0, 0, 0, ZK_KAZOO_STATE_LOST, 0},
        {ZK_KEEPER_STATE_CLOSED, 1, 0, 0, ZK_KAZOO_STATE_LOST, LOST_ACTIONS},
    };
    static const struct step_case curator_seq[] = {
        {ZK_KEEPER_STATE_CONNECTING, 1, 0, 0, ZK_KAZOO_STATE_LOST, 0},
        {ZK_KEEPER_STATE_CONNECTED, 1, 1, ZK_KAZOO_STATE_CONNECTED, ZK_KAZOO_STATE_CONNECTED, 0},
        {ZK_KEEPER_STATE_CONNECTING, 1, 1, ZK_KAZOO_STATE_SUSPENDED, ZK_KAZOO_STATE_SUSPENDED,
         SUSPEND_ACTIONS},
        {ZK_KEEPER_STATE_CONNECTED, 1, 1, ZK_KAZOO_STATE_RECONNECTED,
         ZK_KAZOO_STATE_RECONNECTED, 0},
        {ZK_KEEPER_STATE_CONNECTED_RO, 1, 1, ZK_KAZOO_STATE_READ_ONLY, ZK_KAZOO_STATE_READ_ONLY,
         0},
        {ZK_KEEPER_STATE_EXPIRED_SESSION, 1, 1, ZK_KAZOO_STATE_LOST, ZK_KAZOO_STATE_LOST,
         LOST_ACTIONS},
        {ZK_KEEPER_STATE_CONNECTING, 1, 0, 0, ZK_KAZOO_STATE_LOST, 0},
        {ZK_KEEPER_STATE_CONNECTED, 1, 1, ZK_KAZOO_STATE_RECONNECTED,
         ZK_KAZOO_STATE_RECONNECTED, 0},
    };
    static const struct step_case keep_seq[] = {
        {ZK_KEEPER_STATE_CONNECTED, 1, 1, ZK_KAZOO_STATE_CONNECTED, ZK_KAZOO_STATE_CONNECTED, 0},
        {ZK_KEEPER_STATE_CONNECTING, 1, 1, ZK_KAZOO_STATE_SUSPENDED, ZK_KAZOO_STATE_SUSPENDED,
         SUSPEND_KEEP_ACTIONS},
        {ZK_KEEPER_STATE_CONNECTED, 1, 1, ZK_KAZOO_STATE_CONNECTED, ZK_KAZOO_STATE_CONNECTED, 0},
        {ZK_KEEPER_STATE_EXPIRED_SESSION, 1, 1, ZK_KAZOO_STATE_LOST, ZK_KAZOO_STATE_LOST,
         LOST_ACTIONS},
    };
    zk_session_machine m, msave;
    zk_session_step st, ssave;

    run_steps("kazoo", 0, kazoo_seq, ARRAY_LEN(kazoo_seq));
    run_steps("curator", ZK_DISPATCHER_CURATOR_STATES, curator_seq, ARRAY_LEN(curator_seq));
    run_steps("keep", ZK_DISPATCHER_KEEP_WATCHES, keep_seq, ARRAY_LEN(keep_seq));

    /* Curator: a read-only first connection, then the first read-write one is CONNECTED */
    CHECK_EQ_INT(zk_session_machine_init(&m), ZK_OK);
    CHECK_EQ_INT(zk_session_machine_step(&m, ZK_KEEPER_STATE_CONNECTED_RO,
                                         ZK_DISPATCHER_CURATOR_STATES, &st),
                 ZK_OK);
    CHECK(st.notify);
    CHECK_EQ_INT(st.kazoo_state, ZK_KAZOO_STATE_READ_ONLY);
    CHECK_EQ_INT(zk_session_machine_step(&m, ZK_KEEPER_STATE_CONNECTED,
                                         ZK_DISPATCHER_CURATOR_STATES, &st),
                 ZK_OK);
    CHECK(st.notify);
    CHECK_EQ_INT(st.kazoo_state, ZK_KAZOO_STATE_CONNECTED);
    CHECK(m.connected_before == true);

    /* Every (keeper, kazoo, connected_before) x new state, default options,
       against the reference rules. */
    {
        const int32_t keepers[] = {1, 3, 4, 5, 7, -112};
        const int32_t kazoos[] = {0, 1, 3};
        size_t a, b, c, cb;
        int bad = 0;
        for (a = 0; a < ARRAY_LEN(keepers); a++) {
            for (b = 0; b < ARRAY_LEN(kazoos); b++) {
                for (cb = 0; cb < 2; cb++) {
                    for (c = 0; c < ARRAY_LEN(keepers); c++) {
                        int32_t rk = keepers[a], rz = kazoos[b], told;
                        int changed, notify;
                        uint32_t actions;
                        m.keeper_state = keepers[a];
                        m.kazoo_state = kazoos[b];
                        m.connected_before = cb != 0;
                        memset(&st, 0xA5, sizeof st);
                        reference_step(&rk, &rz, keepers[c], &changed, &notify, &told,
                                       &actions);
                        if (zk_session_machine_step(&m, keepers[c], 0, &st) != ZK_OK ||
                            st.changed != (changed != 0) || st.notify != (notify != 0) ||
                            (notify && st.kazoo_state != told) || st.actions != actions ||
                            m.keeper_state != rk || m.kazoo_state != rz) {
                            fprintf(stderr, "machine mismatch: %d/%d -> %d\n", (int)keepers[a],
                                    (int)kazoos[b], (int)keepers[c]);
                            bad++;
                        }
                    }
                }
            }
        }
        CHECK_EQ_INT(bad, 0);
    }

    /* Errors: nothing written. */
    CHECK_EQ_INT(zk_session_machine_init(NULL), ZK_ERR_NULL_ARGUMENT);
    CHECK_EQ_INT(zk_session_machine_init(&m), ZK_OK);
    memset(&ssave, 0xA5, sizeof ssave);
    /* (The machine is compared field by field: after a successful write by the
       library its padding bytes are indeterminate.) */
#define EXPECT_STEP_ERROR(rc_want, new_state, options)                                     \
    do {                                                                                   \
        msave = m;                                                                         \
        memcpy(&st, &ssave, sizeof st);                                                    \
        CHECK_EQ_INT(zk_session_machine_step(&m, (new_state), (options), &st), (rc_want)); \
        CHECK(machine_eq(&m, &msave));                                                     \
        CHECK_MEM(&st, &ssave, sizeof st);                                                 \
    } while (0)
    EXPECT_STEP_ERROR(ZK_ERR_INVALID_KEEPER_STATE, 0, 0);
    EXPECT_STEP_ERROR(ZK_ERR_INVALID_KEEPER_STATE, 2, 0);
    EXPECT_STEP_ERROR(ZK_ERR_INVALID_KEEPER_STATE, -113, 0);
    EXPECT_STEP_ERROR(ZK_ERR_INVALID_KEEPER_STATE, 999, 0);
    EXPECT_STEP_ERROR(ZK_ERR_INVALID_KEEPER_STATE, INT32_MIN, 0);
    EXPECT_STEP_ERROR(ZK_ERR_INVALID_ARGUMENT, ZK_KEEPER_STATE_CONNECTED, 4);
    EXPECT_STEP_ERROR(ZK_ERR_INVALID_ARGUMENT, ZK_KEEPER_STATE_CONNECTED, 0x80000000u);
    EXPECT_STEP_ERROR(ZK_ERR_INVALID_ARGUMENT, ZK_KEEPER_STATE_CONNECTED, ~0u);
    m.keeper_state = 2; /* not a keeper state */
    EXPECT_STEP_ERROR(ZK_ERR_INVALID_KEEPER_STATE, ZK_KEEPER_STATE_CONNECTED, 0);
    m.keeper_state = 999;
    EXPECT_STEP_ERROR(ZK_ERR_INVALID_KEEPER_STATE, ZK_KEEPER_STATE_CONNECTED, 0);
    m.keeper_state = ZK_KEEPER_STATE_CONNECTED;
    m.kazoo_state = 5; /* not a kazoo state */
    EXPECT_STEP_ERROR(ZK_ERR_INVALID_KAZOO_STATE, ZK_KEEPER_STATE_CONNECTING, 0);
    m.kazoo_state = -1;
    EXPECT_STEP_ERROR(ZK_ERR_INVALID_KAZOO_STATE, ZK_KEEPER_STATE_CONNECTING, 0);
#undef EXPECT_STEP_ERROR
    CHECK_EQ_INT(zk_session_machine_init(&m), ZK_OK);
    msave = m;
    memcpy(&st, &ssave, sizeof st);
    CHECK_EQ_INT(zk_session_machine_step(NULL, ZK_KEEPER_STATE_CONNECTED, 0, &st),
                 ZK_ERR_NULL_ARGUMENT);
    CHECK_MEM(&st, &ssave, sizeof st);
    CHECK_EQ_INT(zk_session_machine_step(&m, ZK_KEEPER_STATE_CONNECTED, 0, NULL),
                 ZK_ERR_NULL_ARGUMENT);
    CHECK(machine_eq(&m, &msave));
    CHECK_EQ_INT(zk_session_machine_step(NULL, ZK_KEEPER_STATE_CONNECTED, 0, NULL),
                 ZK_ERR_NULL_ARGUMENT);
}

int main(void)
{
    test_enum_values();
    test_enum_sizes();
    test_versions();
    test_statuses();
    test_names();
    test_state_tables();
    test_stat_layout();
#ifdef ZK_TEST_HAVE_ZOOKEEPER_JUTE_H
    test_struct_stat_interop();
#endif
    test_stat_codec();
    test_stat_properties();
    test_stat_format();
    test_watched_event_decode();
    test_notification_decode();
    test_session_machine();
    return check_summary("test_core");
}
