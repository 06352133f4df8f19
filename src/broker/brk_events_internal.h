/* brk_events_internal.h: the private tables of brk_events shared by its files: the publisher
 * stream table (brk_events.c), connections, attachments and queues (brk_events_queue.c), and
 * the flush (brk_events_flush.c). No I/O. */
#ifndef TRONE_BRK_EVENTS_INTERNAL_H
#define TRONE_BRK_EVENTS_INTERNAL_H

#include "broker/brk_events.h"
#include "chan/chan_sync.h"

/* Bound on an encoded ACK, ATTACHED, GAP, DELIVER or DELIVER_TOTAL header. */
#define BRK_EVENTS_SMALL_MSG_MAX (1u + 2u + TRONE_TAG_MAX + TRONE_KEY_LEN + 8u + 8u + 8u + 4u)
_Static_assert(1u + 2u + TRONE_TAG_MAX + TRONE_KEY_LEN + 8u + 8u + 4u <= BRK_EVENTS_SMALL_MSG_MAX,
               "a DELIVER_TOTAL header fits the small message bound");

/* One event of a total-order channel waiting in the pending pool for its ORDER. Its bytes in
 * the pool ring: u8 tag length | tag | publisher key | wire event (which starts with its
 * epoch and seq). */
struct brk_events_pooled {
    bool alive;       /* in the hash: false once evicted or found not to match */
    bool released;    /* released to subscribers (kept to answer peers' FETCHes) */
    uint32_t bucket_next;
    uint64_t hash;    /* of (tag, publisher, epoch, seq) */
    uint64_t offset;  /* in the ring (mod its size), after pad bytes of padding */
    uint32_t pad;
    uint32_t size;
};

/* One executed ORDER waiting for its events. */
struct brk_events_order {
    uint8_t publisher[TRONE_KEY_LEN];
    uint8_t digest[TRONE_HASH_LEN];
    uint64_t epoch;
    uint64_t first_seq;
    uint64_t first_position;
    uint64_t since_us; /* when it became the channel's next ORDER to release */
    uint64_t fetch_at_us; /* when to ask the peers for it (again) */
    uint32_t fetches;     /* FETCHes sent for it (picks the next peer) */
    uint32_t count;
    bool store_checked;   /* durable: the store was asked whether it holds the range */
};

/* A total-order channel's ORDERs, released strictly in arrival (= position) order. */
struct brk_events_total {
    bool used;
    char tag[TRONE_TAG_MAX + 1];
    struct brk_events_order *orders; /* ring of orders_max */
    uint32_t order_head;
    uint32_t order_count;
};

/* Highest contiguous seq accepted from one publisher on one tag in one epoch. */
struct brk_events_stream {
    uint8_t publisher[TRONE_KEY_LEN];
    uint64_t epoch;
    uint64_t accepted;
    uint32_t bucket_next;
    uint32_t lru_prev;
    uint32_t lru_next;
    char tag[TRONE_TAG_MAX + 1];
};

/* Connection conn_idx streams channel tag. While replaying, a durable channel's stored
 * events are read stream by stream (in stream id order) and sent before its live ones: an
 * event accepted meanwhile is queued live only if its stream id is below replay_stream (the
 * cursor passed it), else the cursor reads it from the store, so the switch is exact. */
struct brk_events_attach {
    bool used;
    bool replaying;
    bool replay_announced; /* the REPLAY of replay_stream was sent */
    bool replay_total;     /* replay_stream is a total-order stream */
    uint8_t start_mode;    /* enum chan_start */
    uint32_t conn_idx;
    uint32_t bucket_next; /* next attachment in the same tag bucket */
    uint32_t conn_next;   /* next attachment of the same connection, or next free entry */
    uint64_t start;       /* position or time (µs) */
    uint64_t replay_stream; /* the stream being read (0: none yet) */
    uint64_t replay_next;   /* its next position to read; 0: find the next stream */
    uint8_t replay_publisher[TRONE_KEY_LEN];
    uint64_t replay_epoch;
    char tag[TRONE_TAG_MAX + 1];
};

/* FIFO of records of one urgency level: live bytes are data[head, tail). */
/* A ring of whole records: live bytes are [head, tail) when wrap is 0, else [head, wrap) then
 * [0, tail) (tail <= head). A record never straddles the end, so the head record is always
 * contiguous at data + head. */
struct brk_events_level {
    uint8_t *data;
    size_t head;
    size_t tail;
    size_t wrap;
    size_t capacity;
    uint32_t count;
};

/* Events of (tag, publisher) dropped for one connection and not yet reported. */
struct brk_events_gap {
    uint8_t publisher[TRONE_KEY_LEN];
    uint64_t dropped;
    char tag[TRONE_TAG_MAX + 1];
};

struct brk_events_conn {
    bool used;
    bool paused;
    bool doomed; /* its GAP table overflowed: flush asks the runtime to close it */
    uint64_t id;
    uint8_t key[TRONE_KEY_LEN];
    uint32_t bucket_next;
    uint32_t attach_first;
    uint32_t attach_count;
    uint32_t queued_events;
    size_t queued_bytes;
    struct brk_events_level levels[BRK_EVENTS_LEVELS];
    struct brk_events_gap *gaps;
    uint32_t gap_count;
    uint32_t gap_capacity;
};

/* A queued record: u32 size (whole record) | u8 tag length | tag | publisher key |
 * u64 position (0 on FIFO channels) | event. */
struct brk_events_record {
    size_t size;
    const char *tag;
    uint8_t tag_size;
    const uint8_t *publisher;
    uint64_t position;
    const uint8_t *event;
    size_t event_size;
};

/* SipHash of data under the core's key. */
uint64_t brk_events__hash(const struct brk_events *e, const void *data, size_t size);
/* The slot of connection id, or BRK_EVENTS_NONE. */
uint32_t brk_events__conn_find(const struct brk_events *e, uint64_t id);
/* The slot of connection id, created if needed; BRK_EVENTS_NONE if the table is full. */
uint32_t brk_events__conn_get(struct brk_events *e, uint64_t id, const uint8_t key[TRONE_KEY_LEN]);
/* The attachment of slot conn_idx to tag, or BRK_EVENTS_NONE. */
uint32_t brk_events__attach_find(const struct brk_events *e, uint32_t conn_idx, const char *tag);
/* Attaches; 0, TRONE_EFULL (limits) or 0 if already attached. */
int brk_events__attach_add(struct brk_events *e, uint32_t conn_idx, const char *tag);
void brk_events__attach_remove(struct brk_events *e, uint32_t conn_idx, const char *tag);
/* Fills e->targets with the slots attached to tag whose key may subscribe to ch, but not those
 * replaying a stream not yet passed by their cursor (stream: the durable stream id of the
 * events, 0 for a channel that is not durable); returns the count. */
uint32_t brk_events__targets(struct brk_events *e, const struct brk_table *table,
                             const struct brk_channel *ch, uint64_t stream);
/* Queues one wire event of (tag, publisher) at level for slot conn_idx, dropping as needed. */
void brk_events__enqueue(struct brk_events *e, uint32_t conn_idx, uint8_t level, const char *tag,
                         const uint8_t publisher[TRONE_KEY_LEN], uint64_t position,
                         const uint8_t *event, size_t event_size);

/* Total order (brk_events_total.c): allocation at init, freeing at close, and one accepted
 * event of a total-order channel into the pool (then a release attempt of its channel). */
int brk_events__total_init(struct brk_events *e);
void brk_events__total_close(struct brk_events *e);
void brk_events__total_publish(struct brk_events *e, const struct brk_table *table,
                               uint64_t now_us, const struct brk_channel *ch,
                               const uint8_t publisher[TRONE_KEY_LEN], const uint8_t *event,
                               size_t event_size);
bool brk_events__total_pending(const struct brk_events *e);
/* Adds one event (trusted: accepted, fetched or reloaded) to the pending pool, evicting the
 * oldest entries as needed. */
void brk_events__pool_add(struct brk_events *e, const char *tag,
                          const uint8_t publisher[TRONE_KEY_LEN], const uint8_t *event,
                          size_t event_size);
/* Releases every total-order channel's waiting ORDERs that can go. */
void brk_events__total_release_all(struct brk_events *e, const struct brk_table *table,
                                   uint64_t now_us);

/* Durable total order (brk_events_pending.c). Pending events older than a released range's
 * are deleted with it, at most this many more per range. */
#define BRK_EVENTS_PENDING_DROP_SLACK 256u
/* Does the channel's total stream hold every position of o? Then they are queued from the
 * store for the attached subscribers (as a release would) and true is returned. */
bool brk_events__order_stored(struct brk_events *e, const struct brk_table *table,
                              const struct brk_channel *ch, const struct brk_events_order *o);
/* Parses the record at p (written by enqueue, so trusted). */
void brk_events__record_read(const uint8_t *p, struct brk_events_record *rec);
/* Removes the oldest record of a level of slot conn_idx. */
void brk_events__level_pop(struct brk_events *e, struct brk_events_conn *c, uint32_t level);

/* Durable channels (brk_events_replay.c): stores one accepted event (0, or the refusal);
 * starts a replay on an attachment; replays within budget bytes for slot conn_idx. */
int brk_events__durable_put(struct brk_events *e, const struct brk_channel *ch,
                            const uint8_t publisher[TRONE_KEY_LEN], uint64_t stream, bool pending,
                            uint64_t position, const uint8_t *event, size_t event_size);
uint64_t brk_events__durable_stream(const char *tag, const uint8_t publisher[TRONE_KEY_LEN],
                                    uint64_t epoch, bool total);
/* The pending stream of (tag, publisher, epoch) of a durable total-order channel. */
uint64_t brk_events__pending_stream(const char *tag, const uint8_t publisher[TRONE_KEY_LEN],
                                    uint64_t epoch);
void brk_events__replay_start(struct brk_events *e, uint32_t attach_idx, uint8_t mode,
                              uint64_t start);
size_t brk_events__replay_flush(struct brk_events *e, const struct brk_table *table,
                                uint32_t conn_idx, uint64_t now_us, size_t budget);
/* Does slot conn_idx have an attachment replaying? */
bool brk_events__replay_pending(const struct brk_events *e, uint32_t conn_idx);
/* The attachment is going away (detach, connection closed). */
void brk_events__replay_stop(struct brk_events *e, uint32_t attach_idx);

/* Durable anti-entropy (brk_events_sync.c): allocation, freeing, a round when due (from
 * brk_events_tick), a SYNC message from a peer, and when the next round is due. Peer
 * messages are added with brk_events__peer_add (brk_events_total.c); one call adds at most
 * BRK_EVENTS_SYNC_SENDS_MAX of them. */
#define BRK_EVENTS_SYNC_SENDS_MAX (CHAN_SYNC_LIST_MAX + 8u)
void brk_events__sync_defaults(struct brk_events_sync_config *c);
int brk_events__sync_init(struct brk_events *e);
void brk_events__sync_close(struct brk_events *e);
void brk_events__sync_tick(struct brk_events *e, const struct brk_table *table, uint64_t now_us);
int brk_events__sync_message(struct brk_events *e, const struct brk_table *table,
                             uint64_t now_us, uint32_t replica, const uint8_t *data, size_t size);
uint64_t brk_events__sync_deadline(const struct brk_events *e);
void brk_events__peer_add(struct brk_events *e, uint32_t replica, size_t start);

/* Output building: starts an output, adds one message from out_data[start, used). */
void brk_events__out_reset(struct brk_events *e);
void brk_events__out_add(struct brk_events *e, uint64_t conn_id, size_t start);
void brk_events__out_finish(struct brk_events *e);

#endif
