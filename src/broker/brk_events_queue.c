/* brk_events_queue.c: connections, attachments and the bounded per-connection queues of the
 * event path (brk_events.h): one FIFO per urgency level; on overflow the oldest event of the
 * least urgent non-empty level is dropped and counted per (tag, publisher) for a GAP. No I/O. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/brk_events_internal.h"
#include "core/assert.h"

/* ---- Connections -------------------------------------------------------------------------- */

static uint32_t brk_events_conn_bucket(const struct brk_events *e, uint64_t id)
{
    uint8_t b[8];
    buf_store_u64(b, id);
    return (uint32_t)(brk_events__hash(e, b, sizeof(b)) & e->conn_bucket_mask);
}

uint32_t brk_events__conn_find(const struct brk_events *e, uint64_t id)
{
    uint32_t i = e->conn_buckets[brk_events_conn_bucket(e, id)];
    for (uint32_t n = 0; n <= e->config.conn_max && i != BRK_EVENTS_NONE; n++) {
        if (e->conns[i].id == id) {
            TRONE_ASSERT(e->conns[i].used);
            return i;
        }
        i = e->conns[i].bucket_next;
    }
    return BRK_EVENTS_NONE;
}

uint32_t brk_events__conn_get(struct brk_events *e, uint64_t id, const uint8_t key[TRONE_KEY_LEN])
{
    uint32_t found = brk_events__conn_find(e, id);
    if (found != BRK_EVENTS_NONE) {
        return found;
    }
    if (e->conn_count >= e->config.conn_max) {
        return BRK_EVENTS_NONE;
    }
    uint32_t slot = 0; /* the lowest free slot: the same choice on every run */
    while (slot < e->config.conn_max && e->conns[slot].used) {
        slot++;
    }
    TRONE_ASSERT(slot < e->config.conn_max);
    struct brk_events_conn *c = &e->conns[slot];
    memset(c, 0, sizeof(*c));
    c->used = true;
    c->id = id;
    memcpy(c->key, key, TRONE_KEY_LEN);
    c->attach_first = BRK_EVENTS_NONE;
    uint32_t bucket = brk_events_conn_bucket(e, id);
    c->bucket_next = e->conn_buckets[bucket];
    e->conn_buckets[bucket] = slot;
    e->conn_count++;
    e->conn_high = slot + 1 > e->conn_high ? slot + 1 : e->conn_high;
    return slot;
}

static void brk_events_conn_unlink(struct brk_events *e, uint32_t slot)
{
    uint32_t *link = &e->conn_buckets[brk_events_conn_bucket(e, e->conns[slot].id)];
    for (uint32_t n = 0; n <= e->config.conn_max && *link != BRK_EVENTS_NONE; n++) {
        if (*link == slot) {
            *link = e->conns[slot].bucket_next;
            return;
        }
        link = &e->conns[*link].bucket_next;
    }
    TRONE_ASSERT(0 && "connection missing from its bucket");
}

void brk_events_conn_close(struct brk_events *e, uint64_t conn_id)
{
    uint32_t slot = brk_events__conn_find(e, conn_id);
    if (slot == BRK_EVENTS_NONE) {
        return;
    }
    struct brk_events_conn *c = &e->conns[slot];
    for (uint32_t n = 0; n <= e->config.attach_per_conn_max && c->attach_first != BRK_EVENTS_NONE;
         n++) {
        brk_events__attach_remove(e, slot, e->attaches[c->attach_first].tag);
    }
    TRONE_ASSERT(c->attach_count == 0);
    for (uint32_t l = 0; l < BRK_EVENTS_LEVELS; l++) {
        free(c->levels[l].data);
    }
    free(c->gaps);
    brk_events_conn_unlink(e, slot);
    memset(c, 0, sizeof(*c));
    e->conn_count--;
    while (e->conn_high > 0 && !e->conns[e->conn_high - 1].used) {
        e->conn_high--;
    }
}

void brk_events_conn_pause(struct brk_events *e, uint64_t conn_id, bool paused)
{
    uint32_t slot = brk_events__conn_find(e, conn_id);
    if (slot != BRK_EVENTS_NONE) {
        e->conns[slot].paused = paused;
    }
}

uint32_t brk_events_conn_queued(const struct brk_events *e, uint64_t conn_id, size_t *bytes,
                                size_t *allocated)
{
    uint32_t slot = brk_events__conn_find(e, conn_id);
    size_t held = 0;
    const struct brk_events_conn *c = slot != BRK_EVENTS_NONE ? &e->conns[slot] : NULL;
    for (uint32_t l = 0; c != NULL && l < BRK_EVENTS_LEVELS; l++) {
        held += c->levels[l].capacity;
    }
    if (c != NULL) {
        held += (size_t)c->gap_capacity * sizeof(*c->gaps);
    }
    if (bytes != NULL) {
        *bytes = c != NULL ? c->queued_bytes : 0;
    }
    if (allocated != NULL) {
        *allocated = held;
    }
    return c != NULL ? c->queued_events : 0;
}

bool brk_events_pending(const struct brk_events *e)
{
    if (e->replaying > 0) {
        return true;
    }
    for (uint32_t i = 0; i < e->conn_high; i++) {
        const struct brk_events_conn *c = &e->conns[i];
        if (c->used && (c->queued_events > 0 || c->gap_count > 0 || c->doomed)) {
            return true;
        }
    }
    return false;
}

/* ---- Attachments -------------------------------------------------------------------------- */

static uint32_t brk_events_tag_bucket(const struct brk_events *e, const char *tag)
{
    return (uint32_t)(brk_events__hash(e, tag, strlen(tag)) & e->attach_bucket_mask);
}

uint32_t brk_events__attach_find(const struct brk_events *e, uint32_t conn_idx, const char *tag)
{
    uint32_t i = e->conns[conn_idx].attach_first;
    for (uint32_t n = 0; n <= e->config.attach_per_conn_max && i != BRK_EVENTS_NONE; n++) {
        if (strcmp(e->attaches[i].tag, tag) == 0) {
            return i;
        }
        i = e->attaches[i].conn_next;
    }
    return BRK_EVENTS_NONE;
}

int brk_events__attach_add(struct brk_events *e, uint32_t conn_idx, const char *tag)
{
    struct brk_events_conn *c = &e->conns[conn_idx];
    if (brk_events__attach_find(e, conn_idx, tag) != BRK_EVENTS_NONE) {
        return 0;
    }
    if (c->attach_count >= e->config.attach_per_conn_max || e->attach_free == BRK_EVENTS_NONE) {
        return TRONE_EFULL;
    }
    uint32_t i = e->attach_free;
    struct brk_events_attach *a = &e->attaches[i];
    TRONE_ASSERT(!a->used);
    e->attach_free = a->conn_next;
    memset(a, 0, sizeof(*a));
    a->used = true;
    a->conn_idx = conn_idx;
    snprintf(a->tag, sizeof(a->tag), "%s", tag);
    uint32_t bucket = brk_events_tag_bucket(e, tag);
    a->bucket_next = e->attach_buckets[bucket];
    e->attach_buckets[bucket] = i;
    a->conn_next = c->attach_first;
    c->attach_first = i;
    c->attach_count++;
    e->attach_count++;
    return 0;
}

static void brk_events_unlink(struct brk_events *e, uint32_t *link, uint32_t i, bool by_conn)
{
    for (uint32_t n = 0; n <= e->config.attach_max && *link != BRK_EVENTS_NONE; n++) {
        struct brk_events_attach *a = &e->attaches[*link];
        if (*link == i) {
            *link = by_conn ? a->conn_next : a->bucket_next;
            return;
        }
        link = by_conn ? &a->conn_next : &a->bucket_next;
    }
    TRONE_ASSERT(0 && "attachment missing from its list");
}

void brk_events__attach_remove(struct brk_events *e, uint32_t conn_idx, const char *tag)
{
    uint32_t i = brk_events__attach_find(e, conn_idx, tag);
    if (i == BRK_EVENTS_NONE) {
        return;
    }
    struct brk_events_conn *c = &e->conns[conn_idx];
    brk_events__replay_stop(e, i);
    brk_events_unlink(e, &e->attach_buckets[brk_events_tag_bucket(e, tag)], i, false);
    brk_events_unlink(e, &c->attach_first, i, true);
    struct brk_events_attach *a = &e->attaches[i];
    memset(a, 0, sizeof(*a));
    a->conn_next = e->attach_free;
    e->attach_free = i;
    TRONE_ASSERT(c->attach_count > 0 && e->attach_count > 0);
    c->attach_count--;
    e->attach_count--;
}

uint32_t brk_events__targets(struct brk_events *e, const struct brk_table *table,
                             const struct brk_channel *ch, uint64_t stream)
{
    uint32_t count = 0;
    uint32_t i = e->attach_buckets[brk_events_tag_bucket(e, ch->tag)];
    for (uint32_t n = 0; n <= e->config.attach_max && i != BRK_EVENTS_NONE; n++) {
        const struct brk_events_attach *a = &e->attaches[i];
        const struct brk_events_conn *c = &e->conns[a->conn_idx];
        bool waits = a->replaying && stream >= a->replay_stream; /* the cursor will read it */
        if (strcmp(a->tag, ch->tag) == 0 && !c->doomed && !waits &&
            brk_table_channel_may_subscribe(table, ch, c->key)) {
            TRONE_ASSERT(count < e->config.attach_max);
            e->targets[count++] = a->conn_idx;
        }
        i = a->bucket_next;
    }
    return count;
}
