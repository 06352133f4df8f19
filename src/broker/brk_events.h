/* brk_events.h: the replica side of the event path (DESIGN.md 2 and 7, issue 3): accepts
 * PUBLISHes from authorized publishers (FIFO per (publisher, tag, epoch), duplicates acked but
 * not forwarded), answers ATTACH/DETACH, and queues every accepted event for the connections
 * attached to its channel, most urgent first, with bounded per-connection queues that drop the
 * oldest event of the least urgent level and report it with a GAP. No agreement on this path.
 * Sans-I/O: no sockets, no clock (time comes in the inputs), no randomness (the hash key comes
 * in the config), no logging (counters instead). Allocation happens at init, when a connection
 * first attaches, and when a queue or output buffer grows; never once per event.
 *
 * Connections are named by the runtime's uint64_t ids; the runtime passes each message with
 * its connection's authenticated Ed25519 key and reports closed connections. */
#ifndef TRONE_BRK_EVENTS_H
#define TRONE_BRK_EVENTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "broker/brk_table.h"
#include "chan/chan_msg.h"
#include "core/buf.h"
#include "core/limits.h"
#include "trone/error.h"

#define BRK_EVENTS_LEVELS (BRK_URGENCY_MAX + 1u)
#define BRK_EVENTS_NONE UINT32_MAX
/* Bytes of one queued record beyond its wire event: u32 size | u8 tag length | tag | key |
 * u64 position (0 on FIFO channels). */
#define BRK_EVENTS_RECORD_OVERHEAD (4u + 1u + TRONE_TAG_MAX + TRONE_KEY_LEN + 8u)
/* Largest wire event: epoch, seq, time, u16 auth length, auth, u32 payload length, payload. */
#define BRK_EVENTS_EVENT_MAX (8u + 8u + 8u + 2u + CHAN_AUTH_MAX + 4u + CHAN_PAYLOAD_MAX)
#define BRK_EVENTS_RECORD_MAX (BRK_EVENTS_RECORD_OVERHEAD + BRK_EVENTS_EVENT_MAX)

/* What a subscriber connection whose queue is full gets (the slow-subscriber policy). */
enum brk_events_overflow {
    /* The oldest event of the least urgent level is dropped, counted per (tag, publisher) and
     * reported to the subscriber in a GAP before its next events. */
    BRK_EVENTS_DROP_OLDEST = 0,
    /* The connection is closed: the subscriber reconnects, re-attaches and learns what it
     * missed from the holes in its streams' sequence numbers (reported as gaps). */
    BRK_EVENTS_DISCONNECT = 1,
};

/* Durable channels' storage (issue 4), reached through these functions as raft reaches its
 * disk through raft_io: the runtime's store, grouped in one transaction per loop turn and
 * committed before the turn's writes leave, so an event is forwarded and acknowledged only
 * once it is on disk. put == NULL: this replica keeps nothing (durable channels then behave
 * as others, and a replay request is answered by an immediate REPLAY END). */
typedef int (*brk_events_read_cb)(void *ctx, uint64_t position, const uint8_t *record,
                                  size_t size);
/* What a replica's store holds of one stream (anti-entropy, brk_events_sync.c). */
struct brk_events_stream_info {
    uint64_t first;      /* lowest position held, 0 if none */
    uint64_t last;       /* highest position ever held, 0 if none */
    uint64_t count;      /* positions held */
    uint64_t bytes;      /* their record bytes */
    uint64_t age_ms_max; /* retention by age, 0 = none */
    uint64_t bytes_max;  /* retention by size, 0 = none */
    uint64_t trimmed;    /* highest position retention deleted (never fetched back), 0 if none */
};
struct brk_events_durable {
    void *ctx;
    /* Stores the record (publisher key | wire event) of stream `stream` (descriptor desc,
     * chan_durable.h) of group `group` at position, with the publisher's time; the stream's
     * retention is the channel class's (0: no limit). 0 (also for a
     * position the stream already holds or passed: nothing written), TRONE_EFULL (refused:
     * the disk or the store is full), or another TRONE_E* (refused). */
    int (*put)(void *ctx, uint64_t group, uint64_t stream, const uint8_t *desc, size_t desc_size,
               uint64_t position, uint64_t time_us, const uint8_t *record, size_t size,
               uint64_t retain_ms, uint64_t retain_bytes);
    /* The first stream of group with id above after (0: the first), its id and descriptor
     * (at most desc_max bytes). 0, TRONE_ENOENT when there is none, or an error. */
    int (*stream_next)(void *ctx, uint64_t group, uint64_t after, uint64_t *stream,
                       uint8_t *desc, size_t desc_max, size_t *desc_size);
    /* Calls cb for up to count_max records of stream from position on, in position order,
     * including those put earlier in the same loop turn; cb returns non-zero to stop. */
    int (*read)(void *ctx, uint64_t stream, uint64_t position, uint32_t count_max,
                brk_events_read_cb cb, void *cb_ctx);
    /* Anti-entropy between replicas (brk_events_sync.c, docs/PROTOCOL.md 11.2); all three or
     * none (none: this replica neither serves nor fetches durable events). */
    /* What stream holds: 0, TRONE_ENOENT (nothing ever), or an error. */
    int (*info)(void *ctx, uint64_t stream, struct brk_events_stream_info *out);
    /* The first position >= from that stream does not hold, and the first held one above it
     * (UINT64_MAX: none); TRONE_EBUSY: a long run was cut short, *hole is where to go on. */
    int (*hole)(void *ctx, uint64_t stream, uint64_t from, uint64_t *hole, uint64_t *hole_end);
    /* Stores the record at position if stream does not hold it (any position: holes are
     * filled below the last), indexing the stream in group as put does. 0 (stored),
     * TRONE_EEXIST (held already: nothing written), TRONE_EFULL, or another error. */
    int (*insert)(void *ctx, uint64_t group, uint64_t stream, const uint8_t *desc,
                  size_t desc_size, uint64_t position, uint64_t time_us, const uint8_t *record,
                  size_t size, uint64_t retain_ms, uint64_t retain_bytes);
    /* Deletes at most delete_max of stream's oldest events at positions <= position_max, in
     * this turn's batch: a durable total-order channel's pending events once they are
     * stored at their agreed positions (docs/PROTOCOL.md 11.1). Optional (NULL: pending
     * events go by the channel's retention only). The number deleted, or an error. */
    int (*drop)(void *ctx, uint64_t stream, uint64_t position_max, uint32_t delete_max);
};

/* Anti-entropy of durable streams between replicas (brk_events_sync.c). */
struct brk_events_sync_config {
    uint64_t period_us;   /* a round (SYNC_ASK to every peer, per durable channel) this often
                             while the last round found something missing */
    uint64_t idle_us;     /* and this often otherwise */
    uint64_t chain_timeout_us; /* a fetch chain with a peer that went quiet this long ends */
    uint32_t get_max;     /* positions asked per SYNC_GET (<= CHAN_SYNC_GET_MAX) */
    uint32_t answer_bytes_max; /* record bytes per SYNC_EVENTS answer */
    uint32_t answers_max; /* SYNC_GETs answered per peer per second */
    uint32_t votes_max;   /* BFT: (stream, position, hash) candidates waiting for f+1 peers */
    uint32_t faults;      /* f: a BFT event needs f+1 peers sending the same bytes */
};

struct brk_events_config {
    uint32_t conn_max;            /* connections with attachments at once */
    uint32_t attach_max;          /* attachments of all connections together */
    uint32_t attach_per_conn_max; /* attachments of one connection */
    uint32_t stream_max;          /* (publisher, tag, epoch) streams remembered, LRU-evicted */
    uint32_t queue_events_max;    /* queued events per connection */
    uint32_t queue_bytes_max;     /* queued bytes per connection (records, overhead included) */
    enum brk_events_overflow overflow; /* what a full connection queue does */
    uint32_t gap_max;             /* (tag, publisher) pairs with an unsent GAP per connection */
    uint32_t deliver_bytes_max;   /* bytes of one DELIVER message (one event may exceed it) */
    uint32_t flush_conn_bytes_max;  /* bytes emitted per connection per flush */
    uint32_t flush_total_bytes_max; /* bytes emitted per flush */
    /* Total-order channels (brk_events_total.c). */
    uint32_t pool_events_max;       /* events waiting for their ORDER, all channels */
    uint32_t pool_bytes_max;        /* their bytes (records, overhead included) */
    uint32_t total_channels_max;    /* total-order channels with state at once */
    uint32_t orders_max;            /* executed ORDERs waiting per channel */
    uint64_t total_wait_us;         /* an ORDER whose events stay missing this long is skipped */
    uint64_t fetch_delay_us;        /* a blocked ORDER asks the peers (FETCH) after this long */
    uint64_t fetch_retry_us;        /* and again this often */
    uint32_t replicas;              /* n, to ask one peer at a time (self + 1, self + 2, ...,
                                       a mute one costs one retry); 0: ask every peer at once */
    uint32_t self;                  /* this replica's id (< replicas) */
    uint32_t fetch_answers_max;     /* FETCHes answered per peer per second (a Byzantine peer
                                       cannot make this replica send without bound) */
    uint8_t hash_key[16];           /* SipHash key of the internal tables */
    struct brk_events_durable durable; /* durable channels' storage (all NULL: none) */
    uint32_t replay_chunk;          /* stored events read per replay step (default 256) */
    struct brk_events_sync_config sync; /* durable anti-entropy */
};

/* One message to send on a connection; data is core-owned (see brk_events_out). */
struct brk_events_send {
    uint64_t conn_id;
    const uint8_t *data;
    size_t size;
};

/* One message for a peer replica (FETCH, FETCHED); data is core-owned like sends'. */
#define BRK_EVENTS_ALL_PEERS UINT32_MAX
struct brk_events_peer_send {
    uint32_t replica; /* BRK_EVENTS_ALL_PEERS: every other replica */
    const uint8_t *data;
    size_t size;
};

/* Output of one call. Everything stays valid until the next call into the core other than
 * brk_events_conn_close and brk_events_conn_pause, which leave it intact. */
struct brk_events_out {
    size_t send_count;
    const struct brk_events_send *sends;
    size_t close_count; /* flush: connections to close (their GAP table overflowed) */
    const uint64_t *closes;
    bool more;          /* flush: unpaused connections still hold queued events */
    size_t peer_send_count; /* tick, peer message: messages for peer replicas */
    const struct brk_events_peer_send *peer_sends;
    int32_t status;     /* message: status of the answer sent (0 or TRONE_E*) */
    uint8_t type;       /* message: its chan_msg_type */
    char tag[TRONE_TAG_MAX + 1]; /* message: its tag */
};

/* Cumulative counters, for logs and tests. */
struct brk_events_stats {
    uint64_t accepted;      /* events accepted and forwarded */
    uint64_t duplicates;    /* events at or below the accepted seq (acked, not forwarded) */
    uint64_t out_of_order;  /* events beyond accepted + 1 (dropped; the publisher resends) */
    uint64_t rejected;      /* PUBLISH and ATTACH refused (unknown channel, not authorized) */
    uint64_t dropped;       /* queued events dropped by flow control (reported in GAPs) */
    uint64_t unauthorized;  /* queued events discarded: subscriber detached or not authorized */
    uint64_t delivered;     /* events emitted in DELIVERs */
    uint64_t evicted;       /* streams evicted from the stream table */
    uint64_t disconnected;  /* connections closed for falling behind (DISCONNECT, GAP table) */
    uint64_t pooled;        /* total order: events put in the pending pool */
    uint64_t pool_evicted;  /* total order: unordered events evicted from the full pool */
    uint64_t orders;        /* total order: executed ORDERs learnt */
    uint64_t released;      /* total order: events released in position order */
    uint64_t skipped;       /* total order: events of ORDERs skipped (missing after the wait,
                               or pushed out of a full order queue) */
    uint64_t mismatched;    /* total order: ORDERs whose pooled events did not match the digest */
    uint64_t fetches;       /* total order: FETCHes sent to the peers */
    uint64_t fetched;       /* total order: ranges received from a peer and matching the digest */
    uint64_t fetch_refused; /* total order: FETCHED ranges dropped (no such ORDER, bad digest) */
    uint64_t fetch_served;  /* total order: FETCHes answered */
    uint64_t fetch_throttled; /* total order: FETCHes not answered: the peer asked too often */
    uint64_t stored;        /* durable: events stored (or found stored already) */
    uint64_t pending_stored;  /* durable total order: events staged in pending streams */
    uint64_t pending_loaded;  /* durable total order: pending events reloaded at start */
    uint64_t pending_dropped; /* durable total order: pending events deleted once stored */
    uint64_t release_refused; /* durable total order: releases held back: the store refused */
    uint64_t store_refused; /* durable: events refused because they could not be stored */
    uint64_t replays;       /* durable: replays started (ATTACH with a start) */
    uint64_t replayed;      /* durable: stored events sent in replays */
    uint64_t sync_rounds;   /* anti-entropy: rounds started (SYNC_ASK to every peer) */
    uint64_t sync_fetched;  /* anti-entropy: events a peer sent that this replica stored */
    uint64_t sync_served;   /* anti-entropy: events sent to peers */
    uint64_t sync_refused;  /* anti-entropy: events dropped (inconsistent, bad signature,
                               outside retention, store refused) */
    uint64_t sync_votes_dropped; /* anti-entropy: BFT candidates dropped from a full table */
};

/* Introspection of the pending pool. */
struct brk_events_pool_stats {
    uint32_t events;   /* events in the pool not released yet */
    uint64_t bytes;    /* bytes the pool's ring holds (live or not yet reclaimed) */
    uint32_t orders;   /* executed ORDERs waiting, all channels */
};

/* Private state; the struct is public so that callers can allocate it. */
struct brk_events_stream;
struct brk_events_attach;
struct brk_events_conn;
struct brk_events_pooled;
struct brk_events_total;

struct brk_events {
    struct brk_events_config config;
    struct brk_events_stream *streams;
    uint32_t *stream_buckets;
    uint32_t stream_bucket_mask;
    uint32_t stream_count;
    uint32_t lru_head; /* most recently used */
    uint32_t lru_tail;
    struct brk_events_attach *attaches;
    uint32_t *attach_buckets;
    uint32_t attach_bucket_mask;
    uint32_t attach_free;
    uint32_t attach_count;
    struct brk_events_conn *conns;
    uint32_t *conn_buckets;
    uint32_t conn_bucket_mask;
    uint32_t conn_count;
    uint32_t conn_high; /* 1 + highest slot in use */
    uint32_t flush_cursor;
    uint32_t *targets; /* scratch: connection slots an event goes to */
    struct buf out_data;
    struct brk_events_send *sends;
    size_t *send_offsets; /* where each message starts in out_data while building */
    size_t send_count;
    size_t send_capacity;
    uint64_t *closes;
    size_t close_count;
    struct brk_events_out out;
    struct brk_events_stats stats;
    /* Total order: the pending pool (a FIFO ring of entries and one of bytes, hashed by
     * (tag, publisher, epoch, seq)) and the per-channel queues of executed ORDERs. */
    struct brk_events_pooled *pool;
    uint32_t *pool_buckets;
    uint32_t pool_bucket_mask;
    uint64_t pool_head;  /* entries ever reclaimed */
    uint64_t pool_tail;  /* entries ever added */
    uint32_t pool_live;       /* entries in the hash (released ones are kept to serve FETCH) */
    uint32_t pool_unreleased; /* of which not released yet */
    uint8_t *pool_ring;  /* 2 * pool_bytes_max */
    uint64_t pool_ring_head;
    uint64_t pool_ring_tail;
    struct brk_events_total *totals;
    uint32_t total_count;
    uint32_t *order_slots;                 /* scratch: pool entries of one ORDER */
    uint8_t (*order_hashes)[TRONE_HASH_LEN]; /* scratch: their hashes */
    struct buf peer_out;                     /* FETCH / FETCHED messages of the last call */
    struct brk_events_peer_send *peer_sends; /* total_channels_max + 1 */
    size_t *peer_offsets;
    size_t peer_send_count;
    uint64_t fetch_window_us[TRONE_REPLICAS_MAX]; /* per peer: start of its answer window */
    uint32_t fetch_answers[TRONE_REPLICAS_MAX];   /* answers in that window */
    uint32_t replaying;          /* attachments replaying stored events */
    int32_t store_status;        /* the last put's refusal (0 once one succeeds) */
    char group_tag[TRONE_TAG_MAX + 1]; /* the durable group of the last tag stored (a hash) */
    bool group_pending;                /* ... and whether it is the tag's pending group */
    uint64_t group;
    uint64_t desc_stream;   /* the stream whose descriptor desc holds */
    uint8_t desc[1u + TRONE_KEY_LEN + 8u + 1u + TRONE_TAG_MAX]; /* CHAN_DURABLE_DESC_MAX */
    size_t desc_size;
    struct brk_events_sync *sync; /* durable anti-entropy (brk_events_sync.c) */
};

/* Sane defaults: 4096 connections and attachments, 64 attachments per connection, 16384
 * streams, 65536 events or 8 MiB per connection queue, 1024 GAP pairs, 256 KiB DELIVERs,
 * 1 MiB per connection and 4 MiB per flush, an all-zero hash key. Cannot fail. */
void brk_events_config_defaults(struct brk_events_config *c);
/* 0 if the config is usable, TRONE_EINVAL otherwise (a zero bound, a queue smaller than one
 * largest record, more than 2^24 entries in a table). */
TRONE_MUST_CHECK int brk_events_config_check(const struct brk_events_config *c);

/* Allocates the tables (memory in proportion to conn_max, attach_max and stream_max). Returns
 * 0, TRONE_EINVAL for a bad config or TRONE_ENOMEM; on error e is zeroed (close is safe). */
TRONE_MUST_CHECK int brk_events_init(struct brk_events *e, const struct brk_events_config *c);
/* Sets the durable channels' storage after init (the store opens after the core); all
 * three functions, or none. Cannot fail. */
void brk_events_durable_set(struct brk_events *e, const struct brk_events_durable *d);
/* Frees everything; safe on a zeroed core and twice. */
void brk_events_close(struct brk_events *e);

/* One event-path message (chan_msg_is_event_type) from connection conn_id whose session
 * authenticated key. table is read for the channel, its class and the authorizations at this
 * moment. PUBLISH: answered by one ACK per run of events of one epoch (an empty PUBLISH gets
 * ACK(epoch 0, seq 0)); refused (ENOENT unknown channel, EPERM not authorized) with nothing
 * forwarded. Events of total-order channels go to the pending pool instead of the queues (brk_events_order releases them). ATTACH: answered ATTACHED(status). DETACH:
 * no answer. Returns 0 (answers in *out), or TRONE_EBADMSG for a malformed message and
 * TRONE_EPROTO for a type a client never sends: then nothing changed and the runtime should
 * drop the connection. */
TRONE_MUST_CHECK int brk_events_message(struct brk_events *e, const struct brk_table *table,
                                        uint64_t now_us, uint64_t conn_id,
                                        const uint8_t key[TRONE_KEY_LEN], const uint8_t *data,
                                        size_t size, const struct brk_events_out **out);

/* An ORDER was executed (the control table's order hook, brk_table.h): the events of the
 * range are released to the channel's attached subscribers in position order once the pool
 * holds all of them and they match the digest. A blocked ORDER asks the peers for its range
 * (FETCH, from brk_events_tick) after fetch_delay_us; one blocked longer than total_wait_us
 * is skipped (its events never reach this replica's subscribers; subscribers get them from
 * the other replicas). Queued DELIVERs come from the next flush. Cannot fail. */
void brk_events_order(struct brk_events *e, const struct brk_table *table, uint64_t now_us,
                      const struct brk_order_exec *order);
/* Time passed: skips ORDERs waited for too long, releases what follows them, and emits FETCHes
 * (out->peer_sends, to every peer) for ORDERs still blocked. Cannot fail. */
void brk_events_tick(struct brk_events *e, const struct brk_table *table, uint64_t now_us,
                     const struct brk_events_out **out);
/* A FETCH or FETCHED from peer replica `replica` (its KK session names it). FETCH: answered
 * with FETCHED (out->peer_sends) if this replica holds the whole range, else ignored.
 * FETCHED: its events are taken only if they form exactly the range of an ORDER this replica
 * waits for and hash to its agreed digest (so a Byzantine peer cannot inject anything); the
 * range is then released. Returns 0, or TRONE_EBADMSG (malformed or another type: nothing
 * changed). */
TRONE_MUST_CHECK int brk_events_peer_message(struct brk_events *e, const struct brk_table *table,
                                             uint64_t now_us, uint32_t replica,
                                             const uint8_t *data, size_t size,
                                             const struct brk_events_out **out);
/* When brk_events_tick is next wanted (µs), or UINT64_MAX. */
uint64_t brk_events_deadline(const struct brk_events *e);
void brk_events_pool_stats(const struct brk_events *e, struct brk_events_pool_stats *st);

/* The connection closed: its attachments and queues go. Unknown ids are ignored. Leaves the
 * last output intact. Cannot fail. */
void brk_events_conn_close(struct brk_events *e, uint64_t conn_id);
/* A paused connection is skipped by flush (the runtime's socket is backed up); its queue keeps
 * its bounds by dropping. Unknown ids are ignored. Leaves the last output intact. */
void brk_events_conn_pause(struct brk_events *e, uint64_t conn_id, bool paused);

/* Emits queued events: per unpaused connection, first a GAP per (tag, publisher) that lost
 * events, then DELIVERs from the most urgent level down, consecutive events of one (tag,
 * publisher) batched into one DELIVER stamped with now_us. Events of channels the connection
 * is no longer attached to or authorized on are discarded. Cannot fail (a buffer that cannot
 * grow leaves the rest queued and sets more). */
void brk_events_flush(struct brk_events *e, const struct brk_table *table, uint64_t now_us,
                      const struct brk_events_out **out);

/* At start, once the control table is restored (the ORDERs of the restored log executed
 * again and waiting) and the durable storage set: loads the pending events of every durable
 * total-order channel of table into the pending pool (pending streams in stream id order,
 * each in seq order; a pool that fills evicts the oldest), then releases the waiting ORDERs
 * whose events are now all here, storing them at their agreed positions. Returns the number
 * of events loaded, or the store's error (what was loaded stays). */
TRONE_MUST_CHECK int brk_events_pending_load(struct brk_events *e, const struct brk_table *table,
                                             uint64_t now_us);

/* Durable channels' store state: 0, or the refusal (TRONE_EFULL...) of the last put while
 * no later put succeeded; for the runtime's log line. */
int32_t brk_events_store_status(const struct brk_events *e);

/* True if any connection holds queued events or unsent GAPs, awaits closing, or replays. */
bool brk_events_pending(const struct brk_events *e);
const struct brk_events_stats *brk_events_stats(const struct brk_events *e);

/* Introspection for tests and status: queued events and bytes of a connection, and the bytes
 * its queues and GAP table hold allocated (never above BRK_EVENTS_LEVELS * queue_bytes_max
 * plus gap_max GAP entries). All 0 for an unknown id. */
uint32_t brk_events_conn_queued(const struct brk_events *e, uint64_t conn_id, size_t *bytes,
                                size_t *allocated);

#endif
