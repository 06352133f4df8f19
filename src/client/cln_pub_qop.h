/* cln_pub_qop.h: private helpers of the publisher core for HA/PKE channels (cln_pub_qop.c):
 * the channel key, its wrapped-key block and how an event's envelope and auth are built.
 * No I/O, no clock, no randomness (keys derive from the config's secret seed). */
#ifndef TRONE_CLN_PUB_QOP_H
#define TRONE_CLN_PUB_QOP_H

#include "client/cln_pub.h"

/* Publish every this many events, or after this long, the block again, so that a subscriber
 * that attached late or missed it learns the key (docs/QOP.md). */
#define CLN_PUB_QOP_REPEAT_EVENTS 1024u
#define CLN_PUB_QOP_REPEAT_US 1000000u

/* What one event on an HA/PKE channel takes. */
struct cln_pub_qop_plan {
    bool with_block;
    uint16_t auth_size;
    uint32_t wire_size; /* the envelope: header, block, body */
};

/* Plans the next event of payload_size bytes. Returns 0, TRONE_EAUTH (no key yet) or
 * TRONE_ETOOBIG (payload over CHAN_QOP_BODY_MAX). */
int cln_pub__qop_plan(const struct cln_pub_channel *ch, uint32_t payload_size, uint64_t now_us,
                      struct cln_pub_qop_plan *plan);
/* Writes auth (plan->auth_size bytes) then the envelope into bytes for event (seq, time_us),
 * and notes that the block was sent if it was. Cannot fail. */
void cln_pub__qop_write(struct cln_pub *p, struct cln_pub_channel *ch,
                        const struct cln_pub_qop_plan *plan, uint8_t *bytes, const uint8_t *payload,
                        uint32_t payload_size, uint64_t seq, uint64_t time_us, uint64_t now_us);

#endif
