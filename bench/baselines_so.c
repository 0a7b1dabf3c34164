/* The C baselines of bench/baselines.h, and (with -DHAVE_ZKC) the C client's
 * decode sequences of bench/micro.c, compiled into a shared library
 * (libzkbench_c.so) and exported as so_<name>.
 *
 * A call from a program into any shared library costs more than a call to a
 * function of the program itself: it goes through the PLT to a distant
 * address. bench/micro.c, linked against libzk_states.so, calls these too, so
 * that every .so figure also has baselines called the same way: the
 * difference between a baseline here and its twin in the program is what
 * the shared library's call costs, for C as for libzk_states.so.
 *
 * The C client's functions come from libzookeeper_mt.a, linked in and hidden
 * (-Wl,--exclude-libs,ALL), as libzookeeper_mt.so builds them: the decode
 * sequence is one call from the program, its calls inside are direct. */
#define ZK_BASELINES_SHARED
#include "baselines.h"

#ifdef HAVE_ZKC
#include <zookeeper/recordio.h>
#include <zookeeper/zookeeper.jute.h>

/* bench/micro.c's zkc_stat_dec loop body: archive, deserialize_Stat, close. */
__attribute__((visibility("default"))) NOIPA int so_zkc_stat_decode(const uint8_t *b, size_t len, struct Stat *o) {
    struct iarchive *ia = create_buffer_iarchive((char *)b, (int)len);
    int rc = deserialize_Stat(ia, "stat", o);
    close_buffer_iarchive(&ia);
    return rc;
}

/* bench/micro.c's zkc_ev_dec loop body: archive, deserialize_WatcherEvent, the
 * event and its path sunk (as the loop sinks them), deallocate, close. */
__attribute__((visibility("default"))) NOIPA int so_zkc_event_decode(const uint8_t *b, size_t len) {
    struct WatcherEvent e;
    struct iarchive *ia = create_buffer_iarchive((char *)b, (int)len);
    int rc = deserialize_WatcherEvent(ia, "event", &e);
    SINK_MEM(&e);
    SINK_MEM(e.path);
    deallocate_WatcherEvent(&e);
    close_buffer_iarchive(&ia);
    return rc;
}
#endif
