/* rt_verify.h: PKS/PKE signature checks of a subscriber's incoming DELIVER messages on a few
 * worker threads, so that a subscriber verifies on every core instead of one (a subscriber
 * core verifies about 11k events/s on one core of this machine, DESIGN.md 7). The subscriber
 * core stays single-threaded and without I/O: messages are handed back to the loop thread in
 * the exact order they arrived (all replicas together), each with a check per event
 * (enum cln_sub_check) for cln_sub_receive_checked. Which events to check is the core's
 * answer (cln_sub_verify_wanted); the pool only verifies and keeps order.
 *
 * Bounds: at most RT_VERIFY_MSGS_MAX messages, RT_VERIFY_BYTES_MAX copied bytes and
 * RT_VERIFY_JOBS_MAX signature checks held. When a message would pass a bound, the loop thread
 * verifies the oldest message's remaining checks itself and hands it over (caller runs), so
 * memory stays bounded, the loop reads no more input meanwhile (backpressure on the sockets)
 * and nothing waits for the loop thread (no deadlock). Identical copies of one event from
 * several replicas (the same tag, publisher, epoch, seq, time, authenticator and payload) share
 * one verification while the first is held. Threads start on the first message that needs a
 * check. */
#ifndef TRONE_RT_VERIFY_H
#define TRONE_RT_VERIFY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "chan/chan_msg.h"
#include "trone/error.h"

#define RT_VERIFY_THREADS_MAX 8u
#define RT_VERIFY_MSGS_MAX 256u
#define RT_VERIFY_JOBS_MAX 8192u /* a power of two, at least one message's events */
#define RT_VERIFY_BYTES_MAX (16u * 1024u * 1024u)

_Static_assert((RT_VERIFY_JOBS_MAX & (RT_VERIFY_JOBS_MAX - 1u)) == 0, "a power of two");
_Static_assert(RT_VERIFY_JOBS_MAX >= CHAN_EVENTS_PER_MSG_MAX, "one message's checks fit");
_Static_assert(RT_VERIFY_BYTES_MAX >= TRONE_MESSAGE_MAX, "one message fits");

/* Called on the loop thread with one message, in arrival order. checks[i] is the enum
 * cln_sub_check of event i (check_count is 0 for a message queued only to keep its place).
 * msg and checks are valid during the call. */
typedef void (*rt_verify_feed_cb)(void *ctx, uint32_t replica, const uint8_t *msg, size_t size,
                                  const uint8_t *checks, uint32_t check_count);

struct rt_verify;

/* Makes a pool of threads (1..RT_VERIFY_THREADS_MAX) on loop that calls feed(ctx, ...). The
 * threads start with the first check. Returns 0 and *out, or TRONE_ENOMEM / TRONE_EINVAL
 * (nothing to close). */
TRONE_MUST_CHECK int rt_verify_create(uv_loop_t *loop, uint32_t threads, rt_verify_feed_cb feed,
                                      void *ctx, struct rt_verify **out);
/* Stops and joins the threads, drops the held messages without feeding them and closes the
 * loop handle; the memory is freed by the loop's next turn, which the caller must run. NULL is
 * allowed. */
void rt_verify_close(struct rt_verify *v);

/* Holds one message (copied) from replica. wanted[i] (i < count) says which events need their
 * signature checked (cln_sub_verify_wanted); wanted may be NULL with count 0: the message only
 * keeps its place behind held ones. msg must have passed chan_msg_check. May feed held
 * messages before returning (caller runs, see above). Returns 0, or TRONE_ENOMEM (no memory, or no
 * thread could start): then nothing is held any more, everything earlier was fed, and the
 * caller handles this message itself, in order. */
TRONE_MUST_CHECK int rt_verify_push(struct rt_verify *v, uint32_t replica, const uint8_t *msg,
                                    size_t size, const uint8_t *wanted, uint32_t count);
/* True while messages are held (a new message must then be pushed to keep its place). */
bool rt_verify_holding(const struct rt_verify *v);

struct rt_verify_counts {
    uint64_t verified; /* signatures verified */
    uint64_t shared;   /* checks answered by an identical copy's verification */
    uint64_t helped;   /* of verified: by the loop thread because a bound was reached */
};
/* Counts since create (loop thread). */
void rt_verify_counts(struct rt_verify *v, struct rt_verify_counts *counts);

#endif
