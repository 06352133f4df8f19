/* cln_qop.h: the subscriber's side of the QoP methods HA and PKE (DESIGN.md 2, docs/QOP.md),
 * sans-I/O: no I/O, no clock (time comes in as now_us), no randomness. It sits after the
 * subscriber core (cln_sub), which decides copies (dedup, f+1 votes, PKE signatures) and
 * orders them; this core turns the decided events of HA/PKE channels into what the
 * application may see:
 *   - an event whose envelope carries a wrapped-key block: its publisher signature is checked
 *     and the channel key K is unwrapped with this subscriber's key (kept per stream and key id);
 *   - HA: the MAC under K is checked, the body delivered; PKE: the body is decrypted under K;
 *   - an event whose key is not known yet (a subscriber that attached after the block went
 *     out) is held, in order, until a block of its key id arrives (the publisher repeats it
 *     at least every second) or for hold_us, then skipped with a gap report;
 *   - an event that fails a check (bad MAC, signature, ciphertext or envelope) is dropped,
 *     counted (rejected) and reported as a gap (reason CLN_SUB_GAP_QOP).
 * Items of SI and PKS channels, and gap/notice items, pass through unchanged.
 *
 * Bounds: keys_max known keys (least recently used forgotten first), held_max events and
 * held_bytes_max bytes held (the oldest skipped first when full). */
#ifndef TRONE_CLN_QOP_H
#define TRONE_CLN_QOP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "broker/brk_class.h"
#include "chan/chan_qop.h"
#include "client/cln_sub.h"
#include "core/buf.h"
#include "core/limits.h"
#include "trone/error.h"

#define CLN_QOP_CHANNELS_DEFAULT 64u
#define CLN_QOP_KEYS_DEFAULT 256u
#define CLN_QOP_HELD_DEFAULT 4096u
#define CLN_QOP_HELD_BYTES_DEFAULT (16u * 1024 * 1024)
#define CLN_QOP_HOLD_US_DEFAULT 5000000u

struct cln_qop_config {
    uint8_t secret_key[TRONE_SECRET_KEY_LEN]; /* this subscriber's Ed25519 key; wiped at close */
    uint32_t channels_max;                    /* channel indexes of the subscriber core */
    uint32_t keys_max;
    uint32_t held_max;
    uint64_t held_bytes_max;
    uint64_t hold_us;
};

struct cln_qop_counts {
    uint64_t delivered;     /* HA/PKE events that passed every check */
    uint64_t rejected;      /* failed a check: dropped */
    uint64_t expired;       /* held too long (or over the bounds) without their key */
    uint64_t keys_learned;  /* keys unwrapped */
    uint64_t not_recipient; /* blocks that had no entry for this subscriber */
};

struct cln_qop_key;
struct cln_qop_held;

struct cln_qop {
    struct cln_qop_config cfg;
    enum brk_method *methods;  /* channels_max, by subscriber-core channel index */
    struct cln_qop_key *keys;  /* keys_max */
    struct cln_qop_held *held; /* held_max, a FIFO ring in arrival order */
    uint32_t held_head;        /* index of the oldest */
    uint32_t held_span;        /* slots from the head to the newest, tombstones included */
    uint32_t held_count;       /* slots in use */
    uint64_t held_bytes;
    uint64_t clock;    /* logical use counter for the key table */
    uint32_t key_last; /* index of the last key found */
    struct cln_qop_counts counts;
    uint32_t item_count;
    struct buf items; /* struct cln_sub_item array of the current output */
    struct buf arena; /* payload bytes of the current output */
};

/* Copies the config (zero fields take the defaults) and allocates the tables. Returns 0,
 * TRONE_ECONFIG (a bound too large, a secret key that is not an Ed25519 key) or TRONE_ENOMEM
 * (q is then closed). The caller must call cln_qop_close after success. */
TRONE_MUST_CHECK int cln_qop_init(struct cln_qop *q, const struct cln_qop_config *cfg);
/* Frees everything and wipes the keys. Safe on a zeroed or closed q. */
void cln_qop_close(struct cln_qop *q);

/* Sets the method of the subscriber core's channel channel_idx (< channels_max; SI until set).
 * Returns 0 or TRONE_EINVAL. */
TRONE_MUST_CHECK int cln_qop_channel_set(struct cln_qop *q, uint32_t channel_idx,
                                         enum brk_method method);

/* Runs the items of one cln_sub output (borrowed) through the checks and fills out with what
 * the application may see, in order. out's items stay valid until the next call into q or into
 * the subscriber core that made in (pass-through items point into its output). Returns 0 or
 * TRONE_ENOMEM (out then empty). Never asserts on event contents. */
TRONE_MUST_CHECK int cln_qop_filter(struct cln_qop *q, const struct cln_sub_output *in,
                                    uint64_t now_us, struct cln_sub_output *out);
/* Timer: skips (as gaps) events held longer than hold_us. Returns 0 or TRONE_ENOMEM. */
TRONE_MUST_CHECK int cln_qop_tick(struct cln_qop *q, uint64_t now_us, struct cln_sub_output *out);
/* When cln_qop_tick is next wanted; UINT64_MAX for never. */
uint64_t cln_qop_deadline(const struct cln_qop *q);

#endif
