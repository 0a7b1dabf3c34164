/* See double_include_a.c. */
#include "zk_states.h"
#include "zk_states.h"
#include <string.h>

int double_include_b(const char **version, int32_t *created);
size_t double_include_b_format(const zk_stat *s, char *buf, size_t cap);

int double_include_b(const char **version, int32_t *created)
{
    zk_event_type t = ZK_EVENT_TYPE_NONE;
    *version = zk_states_version();
    if (zk_event_type_from_name("CREATED", &t) != ZK_OK) {
        return 1;
    }
    *created = t;
    return strcmp(zk_event_type_name(t), "CREATED") == 0 ? 0 : 2;
}

size_t double_include_b_format(const zk_stat *s, char *buf, size_t cap)
{
    return zk_stat_format(s, buf, cap);
}
