/* brk_table.h: the CONTROL TABLE, the replicated application of the broker (DESIGN.md 2):
 * registered clients, and per channel its tag, class, authorized publishers and subscribers and
 * current subscriptions. A deterministic state machine: no I/O, no clock, no randomness, no
 * pointer-ordered iteration, and no allocation after init except one spare set of arrays on
 * the first restore (every array is sized from src/core/limits.h; calloc leaves untouched
 * pages unmapped, so an empty table costs little resident memory).
 *
 * Rules applied by brk_table_execute (refusals are results, never failures):
 * - The admin key is registered at init under the name "admin".
 * - Only the admin may REGISTER and CHANNEL_CREATE/ALTER/DELETE (else TRONE_EPERM).
 * - REGISTER refuses a duplicate name or key (TRONE_EEXIST) and a key that is not a valid
 *   Ed25519 point (TRONE_EINVAL).
 * - Names in publisher/subscriber lists must be registered clients or "*" (TRONE_ENOENT).
 * - CHANNEL_ALTER removes first, then adds, then sets the class; removing a name that is not
 *   listed is TRONE_ENOENT; a name both added and removed is TRONE_EINVAL. Current subscribers
 *   that lose their authorization are unsubscribed.
 * - SUBSCRIBE needs a registered client authorized as subscriber (listed, "*" or the admin),
 *   else TRONE_EPERM; subscribing twice succeeds. UNSUBSCRIBE of a channel the client is not
 *   subscribed to is TRONE_ENOENT. CHANNEL_DELETE drops the channel's subscriptions.
 * - CHANNEL_LIST and CHANNEL_SHOW need a registered client (TRONE_EPERM otherwise).
 * - ORDER (total-order channels, docs/PROTOCOL.md section 10) needs a registered client
 *   (TRONE_EPERM), an existing channel (TRONE_ENOENT) whose order is total (TRONE_EINVAL) and
 *   on which the client may publish (TRONE_EPERM). The ranges of one (publisher, epoch) must
 *   follow each other: a range ending at or below the last ordered seq is TRONE_EEXIST
 *   (already ordered: a retransmission after TRONE_ESTALE), one that does not start right
 *   after it is TRONE_EINVAL. A new (publisher, epoch) may start at any seq, whatever the
 *   publisher's other epochs: several processes of one key publish at once, each with its own
 *   epoch. It assigns the positions order_next .. order_next + count - 1 and answers the first
 *   one. A channel remembers the last ordered seq of BRK_ORDER_FLOORS_MAX (publisher, epoch)
 *   pairs; beyond that the one that ordered least recently is forgotten (its next range then
 *   counts as a new start).
 * - Counts beyond TRONE_CHANNELS_MAX, TRONE_CLIENTS_MAX (admin included) or
 *   TRONE_CHANNEL_MEMBERS_MAX (per list, "*" included; also bounds subscriptions) give
 *   TRONE_EFULL. A malformed op gives TRONE_EBADMSG.
 * Every op is all or nothing: a refused op leaves the table unchanged. */
#ifndef TRONE_BRK_TABLE_H
#define TRONE_BRK_TABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "broker/brk_class.h"
#include "broker/brk_op.h"
#include "core/buf.h"
#include "core/limits.h"
#include "smr/smr.h"
#include "trone/error.h"

/* Snapshot format version (first byte of a snapshot). */
#define BRK_SNAPSHOT_VERSION 2u
/* A member id meaning "*" in a member list. */
#define BRK_CLIENT_ANY UINT16_MAX

_Static_assert(TRONE_CLIENTS_MAX < BRK_CLIENT_ANY, "client ids fit 16 bits beside ANY");
_Static_assert(TRONE_CHANNELS_MAX <= UINT16_MAX, "channel slots fit 16 bits");

/* Publishers whose last ordered (epoch, seq) a total-order channel remembers. Small, because
 * it is part of the snapshot, which must fit one message for every channel at once. */
#define BRK_ORDER_FLOORS_MAX 8u

/* The last range a publisher had ordered on a channel. */
struct brk_order_floor {
    uint16_t client;   /* client id */
    uint64_t epoch;
    uint64_t seq;      /* last ordered seq of that epoch */
    uint64_t position; /* last position assigned to it (unique: the eviction order) */
};

/* One executed ORDER, told to the table's order hook (pointers valid during the call). */
struct brk_order_exec {
    const char *tag;
    const uint8_t *publisher; /* the requesting client's key */
    uint64_t epoch;
    uint64_t first_seq;
    uint32_t count;
    const uint8_t *digest;
    uint64_t first_position;
};

typedef void (*brk_table_order_fn)(void *ctx, const struct brk_order_exec *order);

struct brk_client {
    uint8_t key[TRONE_KEY_LEN];
    char name[TRONE_NAME_MAX + 1];
};

/* Client ids (index into the table's clients) ordered by the clients' keys, BRK_CLIENT_ANY
 * last: the same order on every replica. */
struct brk_member_list {
    uint32_t count;
    uint16_t ids[TRONE_CHANNEL_MEMBERS_MAX];
};

/* A channel as the data path reads it. Valid until the next execute/restore/close. */
struct brk_channel {
    bool used;
    char tag[TRONE_TAG_MAX + 1];
    struct brk_class cls;
    struct brk_member_list publishers;
    struct brk_member_list subscribers;
    struct brk_member_list subscribed; /* current subscriptions; never ANY */
    uint64_t order_next;               /* total order: the next position to assign (>= 1) */
    uint32_t floor_count;
    struct brk_order_floor floors[BRK_ORDER_FLOORS_MAX]; /* any order in memory */
};

/* Callers allocate the struct; the arrays are owned by the table. Treat fields as private. */
struct brk_table {
    uint8_t admin_key[TRONE_KEY_LEN];
    uint16_t admin_id;           /* the admin's client id */
    uint32_t client_count;
    struct brk_client *clients;  /* by id = registration order, TRONE_CLIENTS_MAX */
    uint16_t *clients_by_key;    /* ids sorted by key */
    uint16_t *clients_by_name;   /* ids sorted by name */
    uint32_t channel_count;
    struct brk_channel *channels; /* slots, TRONE_CHANNELS_MAX */
    uint16_t *channels_by_tag;    /* used slots sorted by tag */
    uint32_t channel_slots_used;  /* 1 + highest slot ever written (what a reset clears) */
    struct brk_op *op;            /* scratch for decoding in execute */
    struct brk_channel_info *info; /* scratch for results */
    struct brk_table *spare;      /* restore decodes here, then swaps; NULL until needed */
    brk_table_order_fn order_fn;  /* not replicated state: who learns executed ORDERs */
    void *order_ctx;
};

/* Makes an empty table whose admin is admin_key (registered as "admin"). Returns 0 or
 * TRONE_ENOMEM (table then zeroed; brk_table_close is still safe). */
TRONE_MUST_CHECK int brk_table_init(struct brk_table *t, const uint8_t admin_key[TRONE_KEY_LEN]);
/* Frees everything; safe on a zeroed table and twice. */
void brk_table_close(struct brk_table *t);

/* Executes one encoded op sent by client_key, appending the encoded result (brk_op.h) to
 * result. Deterministic; cannot fail (a refused op yields a result with a TRONE_E* status). If
 * the result buffer itself runs out of room its sticky error is set. seq is not used by the
 * rules; it is accepted for the smr_app signature. */
void brk_table_execute(struct brk_table *t, uint64_t seq, const uint8_t client_key[TRONE_KEY_LEN],
                       const uint8_t *op, size_t op_size, struct buf *result);

/* Queries for the data path. Pointers stay valid until the next execute/restore/close. */
const struct brk_channel *brk_table_find_channel(const struct brk_table *t, const char *tag);
/* The registered client with this key, or NULL. */
const struct brk_client *brk_table_client_by_key(const struct brk_table *t,
                                                 const uint8_t key[TRONE_KEY_LEN]);
const struct brk_client *brk_table_client_by_name(const struct brk_table *t, const char *name);
/* True if the registered client key is authorized on the channel tag (listed, "*" or admin).
 * False for an unknown channel or unregistered key. */
bool brk_table_may_publish(const struct brk_table *t, const char *tag,
                           const uint8_t key[TRONE_KEY_LEN]);
bool brk_table_may_subscribe(const struct brk_table *t, const char *tag,
                             const uint8_t key[TRONE_KEY_LEN]);
/* The same for a channel already found. */
bool brk_table_channel_may_publish(const struct brk_table *t, const struct brk_channel *ch,
                                   const uint8_t key[TRONE_KEY_LEN]);
bool brk_table_channel_may_subscribe(const struct brk_table *t, const struct brk_channel *ch,
                                     const uint8_t key[TRONE_KEY_LEN]);
/* True if the client key is subscribed to ch now. */
bool brk_table_channel_subscribed(const struct brk_table *t, const struct brk_channel *ch,
                                  const uint8_t key[TRONE_KEY_LEN]);
/* The client subscribed to ch at index (< ch->subscribed.count), for forwarding events;
 * index order is the order of the clients' keys (the same on every replica). */
const struct brk_client *brk_table_subscriber(const struct brk_table *t,
                                              const struct brk_channel *ch, uint32_t index);
uint32_t brk_table_channel_count(const struct brk_table *t);
uint32_t brk_table_client_count(const struct brk_table *t);
/* The channel at position index (< channel count) in tag order. */
const struct brk_channel *brk_table_channel_at(const struct brk_table *t, uint32_t index);

/* Appends the canonical snapshot: u8 version | u32 client count | (key[32] str name)* sorted
 * by key | u32 channel count | (str tag, class[5], 3 member lists, u64 order_next, u8 floor
 * count, (u16 client index, u64 epoch, u64 seq, u64 position)* ascending by index)* sorted by
 * tag, where a member list is u16 count | u16 index* ascending (index into the snapshot's
 * clients, 0xffff for "*"). Equal tables give equal bytes. Returns 0 or the buffer's error
 * (out->used restored). */
TRONE_MUST_CHECK int brk_table_snapshot(const struct brk_table *t, struct buf *out);
/* Replaces the table with a snapshot after validating all of it (order, bounds, names, the
 * admin entry matching this table's admin key, subscriptions authorized). Returns 0,
 * TRONE_ECORRUPT for a bad snapshot or TRONE_ENOMEM; on error the table is unchanged. The
 * first restore allocates a spare set of arrays that later restores reuse (the table then
 * holds up to twice its init-time memory); clearing it costs time in proportion to the state
 * it last held, not to the capacity. */
TRONE_MUST_CHECK int brk_table_restore(struct brk_table *t, const uint8_t *data, size_t size);
/* BLAKE2b-256 of the snapshot. Returns 0 or TRONE_ENOMEM (out zeroed). */
TRONE_MUST_CHECK int brk_table_digest(const struct brk_table *t, uint8_t out[TRONE_HASH_LEN]);

/* Installs the hook told about every ORDER executed with status 0 (fn NULL removes it). It
 * is called from brk_table_execute, so during smr_step for a replica; a table installed by
 * state transfer does not replay the ORDERs it skipped. Kept across restores. */
void brk_table_order_hook(struct brk_table *t, brk_table_order_fn fn, void *ctx);

/* Fills app so the replication core drives this table (ctx = t). */
void brk_table_app(struct brk_table *t, struct smr_app *app);

#endif
