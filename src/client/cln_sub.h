/* cln_sub.h: the subscriber core of the event path (issue 3, DESIGN.md 2), sans-I/O: no I/O,
 * no clock (time comes in as now_us), no randomness. It takes DELIVER and GAP messages from
 * every replica and decides which copies to deliver, in FIFO order per publisher stream:
 *   CFT channels: the first copy of (publisher, epoch, seq); duplicates are dropped.
 *   BFT channels: a copy once f+1 distinct replicas sent copies with the same match digest
 *     (chan_auth_digest), or one copy whose PKS signature verifies.
 *   Method PKS (any fault model): a copy is delivered on its verified signature; when the
 *     channel's publisher list is known, only listed publishers are accepted on one copy.
 * A stream is one (channel, publisher, epoch). Once something is decided it starts at the
 * lowest seq held, as soon as that is 1 or replicas that cannot all be faulty sent copies (f+1
 * on BFT and PKS channels, one on CFT/SI), else gap_wait_us after its first decision; so a
 * replica that reorders cannot make it start past a seq still being voted on. On PKS channels
 * without a publisher list, a stream delivers nothing before f+1 replicas sent its events (a
 * signature only proves that someone holds the key the DELIVER names). A newer epoch of a
 * publisher already followed starts at seq 1. A stream delivers in seq order; a missing seq is
 * waited for up to gap_wait_us after a later seq was decided, then skipped with a gap report.
 * Each epoch of a publisher is its own stream: a restarted publisher, or several processes
 * of one key publishing at once. The CLN_SUB_EPOCHS newest epochs decided in run side by side;
 * a newer one beyond them makes the oldest *left*: its stream delivers what it holds and
 * closes. Copies below a stream's next seq, or of an epoch the publisher left, are dropped
 * (replays).
 *
 * Total-order channels (order total, DELIVER_TOTAL messages) have ONE stream per channel,
 * ordered by position instead of seq: the window, the gap wait and the window slide work on
 * positions. A position is decided by its first copy (CFT) or by f+1 replicas that sent the
 * same (position, publisher, epoch, seq, time, auth, payload) (BFT); a single PKS copy does not
 * decide it, because the signature covers the event but not the position, which a Byzantine
 * replica could move. Delivered items carry the event's publisher, epoch, seq and position;
 * gap items carry the first missing position in seq and a zero publisher.
 *
 * How the runtime drives it: cln_sub_init; cln_sub_channel_add per attached channel (class
 * from an agreed `channel show`); every message from replica r -> cln_sub_receive; the timer
 * at out.deadline_us -> cln_sub_tick. Each call fills a cln_sub_output whose items (events
 * and gap reports, in delivery order) stay valid until the next call into the core.
 *
 * Bounds: streams_max open streams (the least recently active undecided one is evicted first),
 * window seqs held per stream (a copy beyond it is held only once f+1 replicas (CFT: one)
 * vouch the stream moved on, which skips the oldest with a gap report; the bytes of a copy
 * dropped beyond it are lost, its vote is kept, CLN_SUB_VOTES_KEPT per replica), held_bytes_max
 * payload bytes held, publishers_max remembered (channel, publisher) replay floors (least
 * recently used forgotten first). */
#ifndef TRONE_CLN_SUB_H
#define TRONE_CLN_SUB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "broker/brk_class.h"
#include "core/buf.h"
#include "chan/chan_msg.h"
#include "core/limits.h"
#include "trone/error.h"

/* Defaults used when a config field is 0. */
#define CLN_SUB_CHANNELS_DEFAULT 64u
#define CLN_SUB_STREAMS_DEFAULT 256u
#define CLN_SUB_PUBLISHERS_DEFAULT 4096u
/* Seqs (positions) held per stream by default: a replica may run ahead of the f+1st one by a
 * publisher's unacked events (CLN_PUB_UNACKED_EVENTS_DEFAULT) or one ORDER's range, each at
 * most one DELIVER's worth of events (CHAN_EVENTS_PER_MSG_MAX); twice that keeps every copy a
 * vote may need (checked in cln_sub.c against cln_pub.h and brk_op.h). */
#define CLN_SUB_WINDOW_DEFAULT (2u * CHAN_EVENTS_PER_MSG_MAX)
#define CLN_SUB_WINDOW_MAX 65536u
#define CLN_SUB_HELD_BYTES_DEFAULT (64u * 1024 * 1024)
#define CLN_SUB_GAP_WAIT_US_DEFAULT 2000000u

struct cln_sub_config {
    uint32_t n; /* replicas, 1..TRONE_REPLICAS_MAX; replica indexes are 0..n-1 */
    uint32_t f;
    uint32_t channels_max;
    uint32_t streams_max;
    uint32_t publishers_max;
    uint32_t window;         /* seqs held per stream, <= CLN_SUB_WINDOW_MAX */
    uint64_t held_bytes_max; /* payload + auth bytes held undelivered, all streams */
    uint64_t gap_wait_us;
};

enum cln_sub_item_kind {
    CLN_SUB_EVENT = 1,  /* a delivered event */
    CLN_SUB_GAP = 2,    /* count events of a stream were skipped, starting at seq */
    CLN_SUB_NOTICE = 3, /* a replica's GAP message: it dropped count events for us */
};

enum cln_sub_gap_reason {
    CLN_SUB_GAP_TIMEOUT = 1, /* waited gap_wait_us for the missing events */
    CLN_SUB_GAP_WINDOW = 2,  /* the stream moved more than window seqs ahead */
    CLN_SUB_GAP_CLOSED = 3,  /* the stream closed (newer epoch, or evicted) with holes */
    CLN_SUB_GAP_QOP = 4,     /* HA/PKE: failed its check, or its key never came (cln_qop.h) */
    CLN_SUB_GAP_RETENTION = 5, /* replay: the replicas no longer keep these (retention) */
};

struct cln_sub_item {
    enum cln_sub_item_kind kind;
    uint32_t channel_idx;
    const char *tag; /* the channel's tag, valid while the channel is added */
    uint8_t publisher[TRONE_KEY_LEN];
    uint64_t epoch;             /* EVENT, GAP */
    uint64_t seq;               /* EVENT: its seq; GAP: first missing seq (total: position) */
    uint64_t position;          /* EVENT on a total-order channel: its position; else 0 */
    uint64_t count;             /* GAP: events missing; NOTICE: events the replica dropped */
    uint64_t time_us;           /* EVENT: publisher time; NOTICE: 0 */
    const uint8_t *payload;     /* EVENT: valid until the next call into the core */
    uint32_t payload_size;
    const uint8_t *auth;        /* EVENT: its auth field (HA/PKE checks, docs/QOP.md) */
    uint16_t auth_size;
    enum cln_sub_gap_reason reason; /* GAP */
    uint32_t replica;               /* NOTICE: the reporting replica */
    bool trusted;                   /* NOTICE: true on CFT channels; BFT: one replica's word */
};

struct cln_sub_output {
    uint32_t item_count;
    const struct cln_sub_item *items; /* core-owned, valid until the next call */
    uint64_t deadline_us;             /* call cln_sub_tick by then; UINT64_MAX for never */
    uint64_t dropped;                 /* copies dropped by this call: duplicates, replays,
                                         forgeries, over the bounds (diagnostics) */
};

struct cln_sub_channel;
struct cln_sub_stream;
struct cln_sub_floor;

struct cln_sub {
    struct cln_sub_config cfg;
    uint32_t channel_count;
    struct cln_sub_channel *channels; /* channels_max */
    struct cln_sub_stream *streams;   /* streams_max */
    struct cln_sub_floor *floors;     /* publishers_max */
    uint64_t held_bytes;
    uint64_t clock;                   /* logical use counter for least-recently-used choices */
    uint64_t dropped;                 /* copies dropped during the current call */
    uint32_t item_count;
    struct buf items;                 /* struct cln_sub_item array of the current output */
    struct buf arena;                 /* payload bytes of the current output */
};

/* Checks the config (n >= 1, f such that n >= 2f+1; zero fields take the defaults) and
 * allocates the tables. Returns 0, TRONE_ECONFIG or TRONE_ENOMEM (s is then closed). The
 * caller owns s and must call cln_sub_close after success. */
TRONE_MUST_CHECK int cln_sub_init(struct cln_sub *s, const struct cln_sub_config *cfg);
/* Frees everything. Safe on a zeroed or closed s. */
void cln_sub_close(struct cln_sub *s);

/* Adds channel tag with its class. publishers (count entries, copied; may be NULL with count
 * 0 when unknown) lists authorized publishers' keys, as the agreed control table named them
 * at subscription: on PKS/PKE channels a single copy whose signature verifies decides for a
 * listed publisher. Any other publisher (none listed, or one authorized since) is believed
 * only on f+1 replicas' word: BFT channels decide its events by f+1 votes, CFT channels start
 * its stream once f+1 replicas sent some of it. On total-order channels the signature does not
 * cover the position, so the list does not help: BFT decides by f+1 votes, CFT PKS/PKE on f+1
 * copies whose signature verifies. Returns the
 * channel index (>= 0) or TRONE_EINVAL (bad tag, class, count over
 * TRONE_CHANNEL_MEMBERS_MAX + 1, the admin included), TRONE_ECONFIG (BFT class with
 * n < 3f+1), TRONE_EEXIST, TRONE_EFULL, TRONE_ENOMEM. Unchanged on error. */
TRONE_MUST_CHECK int cln_sub_channel_add(struct cln_sub *s, const char *tag,
                                         const struct brk_class *cls,
                                         const uint8_t (*publishers)[TRONE_KEY_LEN],
                                         uint32_t publisher_count);
/* The class of channel idx (< the number added). */
const struct brk_class *cln_sub_channel_class(const struct cln_sub *s, uint32_t idx);
/* Finds a channel by tag: its index or TRONE_ENOENT. */
int cln_sub_channel_find(const struct cln_sub *s, const char *tag);

/* One message from replica (0..n-1), borrowed for the call: DELIVER, DELIVER_TOTAL, GAP or
 * REPLAY. Fills out with
 * what became deliverable. Returns 0; TRONE_EBADMSG for a malformed message or a type a
 * subscriber does not take (out is then empty and the core unchanged: the caller may drop
 * the connection); a message for a channel not added is ignored (0, counted in dropped).
 * Never asserts on message contents. */
TRONE_MUST_CHECK int cln_sub_receive(struct cln_sub *s, uint32_t replica, const uint8_t *data,
                                     size_t size, uint64_t now_us, struct cln_sub_output *out);

/* Signature checks done outside the core, so that a runtime can verify PKS/PKE signatures on
 * other threads (rt_verify.h) while the core stays free of threads. A check is a promise about
 * one copy: chan_auth_verify(tag, publisher, e) on exactly the bytes of that event in that
 * message returned 0 (VALID) or an error (INVALID). The core trusts it as it trusts its own
 * verification; NONE leaves the check to the core, as cln_sub_receive does. */
enum cln_sub_check {
    CLN_SUB_CHECK_NONE = 0,
    CLN_SUB_CHECK_VALID = 1,
    CLN_SUB_CHECK_INVALID = 2,
};

/* Which events of a DELIVER message the core would verify if the message came now: fills
 * wanted[i] with 1 or 0 for each event i and returns the event count (0 for other message
 * types, whose events are never verified). An event is wanted when its channel is PKS or PKE
 * and decides on a verified copy (CFT, or BFT with a publisher list), its publisher is allowed
 * and its seq is neither delivered, decided, of an epoch the publisher left nor beyond a started
 * stream's window. It is a hint: the core's state moves on before the message comes, so a
 * wanted event may no longer need its check (a wasted verification), and an event not wanted
 * is checked by the core itself if it needs it then. wanted has CHAN_EVENTS_PER_MSG_MAX
 * entries. Returns TRONE_EBADMSG for a malformed message (as cln_sub_receive would). Changes
 * nothing. */
TRONE_MUST_CHECK int cln_sub_verify_wanted(const struct cln_sub *s, const uint8_t *data,
                                           size_t size, uint8_t wanted[CHAN_EVENTS_PER_MSG_MAX]);

/* cln_sub_receive with checks[i] (enum cln_sub_check) for event i of a DELIVER message, i <
 * check_count; events beyond check_count, and every event of other messages, are NONE. checks
 * may be NULL when check_count is 0. Same returns and ownership as cln_sub_receive. */
TRONE_MUST_CHECK int cln_sub_receive_checked(struct cln_sub *s, uint32_t replica,
                                             const uint8_t *data, size_t size,
                                             const uint8_t *checks, uint32_t check_count,
                                             uint64_t now_us, struct cln_sub_output *out);

/* Replay of a durable channel (issue 4). The runtime asks replicas to replay the channel
 * (ATTACH with a start) and tells the core with cln_sub_replay once, then
 * cln_sub_replay_expect for each replica the ATTACH went to (again after a reconnect), and
 * cln_sub_replica_down when a replica's connection closes. Replicas replay stream by stream
 * in stream id order (chan_durable.h), announcing each stream's first position (REPLAY) and
 * their end (REPLAY END). A replayed stream starts at the lowest announced first position
 * (BFT: the f+1st lowest), never below the requested start, once every replaying replica
 * (BFT: all but f) announced it or moved past it; a start above the requested one is
 * reported as a CLN_SUB_GAP_RETENTION gap. A missing seq is declared a gap (timer, window
 * slide) only once every replaying replica (BFT: all but f) passed it or finished, so a
 * replica that replays faster, or with other holes, cannot make the subscriber skip events
 * another replica will still send. mode is CHAN_START_FROM (positions above start) or
 * CHAN_START_SINCE (publisher time >= start µs). Returns 0, TRONE_EINVAL (bad index or mode,
 * channel not durable). */
TRONE_MUST_CHECK int cln_sub_replay(struct cln_sub *s, uint32_t channel_idx, uint8_t mode,
                                    uint64_t start);
/* An ATTACH with the replay start went to replica: it replays (again) from the beginning. */
void cln_sub_replay_expect(struct cln_sub *s, uint32_t channel_idx, uint32_t replica);
/* Replica no longer replays channel channel_idx (UINT32_MAX: any channel): its connection
 * closed, or it refused the ATTACH; streams waiting on it may start. Fills out like
 * cln_sub_tick. Returns 0 or TRONE_ENOMEM. */
TRONE_MUST_CHECK int cln_sub_replica_down(struct cln_sub *s, uint32_t replica,
                                          uint32_t channel_idx, uint64_t now_us,
                                          struct cln_sub_output *out);

/* Timer: reports gaps waited for long enough, closes finished streams. Returns 0 or
 * TRONE_ENOMEM (an output could not be built; state stays consistent). */
TRONE_MUST_CHECK int cln_sub_tick(struct cln_sub *s, uint64_t now_us,
                                  struct cln_sub_output *out);

#endif
