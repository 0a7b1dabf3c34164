/*
 * double_include_a.c / double_include_b.c: two translation units, each
 * including include/zk_states.h twice, linked into one program: the header
 * defines nothing that would collide at link time and its include guard
 * works. Built with -std=c99 and -std=c11 (-Wall -Wextra -Werror -pedantic).
 */
#include "zk_states.h"
#include <stdio.h>
#include "zk_states.h"

#include "check.h"

/* defined in double_include_b.c */
int double_include_b(const char **version, int32_t *created);
size_t double_include_b_format(const zk_stat *s, char *buf, size_t cap);

int main(void)
{
    const char *version = NULL;
    int32_t created = 0;
    zk_stat s;
    char a_buf[ZK_STAT_FORMAT_MAX + 1], b_buf[ZK_STAT_FORMAT_MAX + 1];
    CHECK_EQ_INT(double_include_b(&version, &created), 0);
    CHECK(version == zk_states_version());
    CHECK_STR(version, ZK_STATES_VERSION);
    CHECK_EQ_INT(created, ZK_EVENT_TYPE_CREATED);
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
    CHECK_EQ_UINT(zk_stat_format(&s, a_buf, sizeof a_buf),
                  double_include_b_format(&s, b_buf, sizeof b_buf));
    CHECK_STR(a_buf, b_buf);
    CHECK_EQ_UINT(sizeof(zk_stat), 72);
    return check_summary("double_include");
}
