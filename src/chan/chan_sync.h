/* chan_sync.h: the replica-to-replica messages of durable-stream anti-entropy (issue 4,
 * docs/PROTOCOL.md 11.2): a replica asks each peer which streams of a durable channel it
 * holds (SYNC_ASK / SYNC_LIST, paginated by stream id) and fetches the positions it lacks in
 * bounded ranges (SYNC_GET / SYNC_EVENTS). Codec only: no I/O. Decoders check every length
 * and every range, and reject trailing bytes.
 *
 *   SYNC_ASK    tag | u64 after (list the streams with ids above after; 0: from the start)
 *   SYNC_LIST   tag | u64 after | u8 flags (1: END, no stream follows this page) | u32 count |
 *               entry*;  entry = u64 stream | u8-length descriptor (chan_durable.h) |
 *               u64 first | u64 last | u64 count (count 0: first = last = 0; else
 *               1 <= first <= last, count <= last - first + 1)
 *   SYNC_GET    tag | u64 stream | u64 from (>= 1) | u32 count (1..CHAN_SYNC_GET_MAX):
 *               send me the events you hold at positions from .. from + count - 1
 *   SYNC_EVENTS tag | u64 stream | u8-length descriptor | u64 from | u64 next | u32 count |
 *               item*;  item = u64 position | u32-length record (publisher key | wire event,
 *               as stored); positions strictly increase within [from, next); next > from:
 *               the range up to next was looked at (the asker continues from next)
 */
#ifndef TRONE_CHAN_SYNC_H
#define TRONE_CHAN_SYNC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "chan/chan_durable.h"
#include "chan/chan_msg.h"
#include "core/buf.h"
#include "core/limits.h"

#define CHAN_SYNC_LIST_END 1u
/* Streams per SYNC_LIST page, and positions per SYNC_GET. */
#define CHAN_SYNC_LIST_MAX 64u
#define CHAN_SYNC_GET_MAX 4096u
/* Smallest and largest stored record: publisher key | wire event. */
#define CHAN_SYNC_RECORD_MIN (TRONE_KEY_LEN + 8u + 8u + 8u + 2u + 4u)
#define CHAN_SYNC_RECORD_MAX \
    (TRONE_KEY_LEN + 8u + 8u + 8u + 2u + CHAN_AUTH_MAX + 4u + CHAN_PAYLOAD_MAX)

_Static_assert(CHAN_DURABLE_DESC_MAX <= UINT8_MAX, "a descriptor's length fits its u8 prefix");

struct chan_sync_msg {
    enum chan_msg_type type;
    char tag[TRONE_TAG_MAX + 1];
    uint64_t after;                      /* ASK, LIST */
    uint8_t flags;                       /* LIST */
    uint32_t count;                      /* LIST: entries; GET: positions asked; EVENTS: items */
    uint64_t stream;                     /* GET, EVENTS */
    uint64_t from;                       /* GET, EVENTS */
    uint64_t next;                       /* EVENTS */
    uint8_t desc[CHAN_DURABLE_DESC_MAX]; /* EVENTS */
    uint8_t desc_size;
};

struct chan_sync_entry {
    uint64_t stream;
    const uint8_t *desc; /* borrowed */
    uint8_t desc_size;
    uint64_t first;
    uint64_t last;
    uint64_t count;
};

struct chan_sync_item {
    uint64_t position;
    const uint8_t *record; /* borrowed */
    uint32_t size;
};

/* Encoders. A LIST or EVENTS is a header (count patched by chan_sync_end) followed by
 * chan_sync_put_entry or chan_sync_put_item calls. Errors are the buffer's sticky error. */
void chan_sync_put_header(struct buf *out, const struct chan_sync_msg *m);
void chan_sync_put_entry(struct buf *out, const struct chan_sync_entry *e);
void chan_sync_put_item(struct buf *out, const struct chan_sync_item *it);
/* Patches the count of the LIST or EVENTS that starts at offset start in out. */
void chan_sync_end(struct buf *out, size_t start, uint32_t count);

/* Is data a SYNC message (by its type byte)? */
bool chan_sync_is_type(const uint8_t *data, size_t size);
/* Decodes and checks a whole message (header, every entry or item: lengths, descriptors,
 * ranges, order); leaves r at the first entry or item. 0 or TRONE_EBADMSG. */
TRONE_MUST_CHECK int chan_sync_read(struct buf_reader *r, const uint8_t *data, size_t size,
                                    struct chan_sync_msg *m);
/* Reads the next entry or item of a message chan_sync_read accepted (cannot fail then). */
void chan_sync_read_entry(struct buf_reader *r, struct chan_sync_entry *e);
void chan_sync_read_item(struct buf_reader *r, struct chan_sync_item *it);

#endif
