/* sim_disk.c: what a replica's disk would hold. The records of every output of a replica's
 * core are applied here before its envelopes leave when one of them is marked sync (the
 * runtime's write-ahead rule), and otherwise within SIM_DISK_LAZY_MS, like rt_store; they are
 * kept in (kind, seq) order like the store does. A crash drops everything else, records not
 * yet committed included, and a restart with persistence on feeds the committed records back
 * through smr_restore. Test code only. */
#include "sim.h"

#include <stdlib.h>
#include <string.h>

#include "core/assert.h"

static bool rec_before(const struct sim_disk_rec *a, uint8_t kind, uint64_t seq)
{
    return a->kind < kind || (a->kind == kind && a->seq < seq);
}

/* Index of the first record not before (kind, seq). */
static size_t disk_find(const struct sim_disk *d, uint8_t kind, uint64_t seq)
{
    size_t low = 0;
    size_t high = d->count;
    while (low < high) {
        size_t mid = low + (high - low) / 2;
        if (rec_before(&d->recs[mid], kind, seq)) {
            low = mid + 1;
        } else {
            high = mid;
        }
    }
    return low;
}

static void disk_drop(struct sim_disk *d, uint8_t kind, uint64_t seq_max)
{
    size_t from = disk_find(d, kind, 0);
    size_t to = from;
    while (to < d->count && d->recs[to].kind == kind && d->recs[to].seq <= seq_max) {
        free(d->recs[to].data);
        to++;
    }
    memmove(&d->recs[from], &d->recs[to], (d->count - to) * sizeof(*d->recs));
    d->count -= to - from;
}

static void disk_put(struct sim_disk *d, uint8_t kind, uint64_t seq, const uint8_t *data,
                     size_t size)
{
    uint8_t *copy = malloc(size == 0 ? 1 : size);
    TRONE_ASSERT(copy != NULL);
    memcpy(copy, data, size);
    size_t i = disk_find(d, kind, seq);
    if (i < d->count && d->recs[i].kind == kind && d->recs[i].seq == seq) {
        free(d->recs[i].data);
    } else {
        if (d->count == d->capacity) {
            d->capacity = d->capacity == 0 ? 64 : 2 * d->capacity;
            d->recs = realloc(d->recs, d->capacity * sizeof(*d->recs));
            TRONE_ASSERT(d->recs != NULL);
        }
        memmove(&d->recs[i + 1], &d->recs[i], (d->count - i) * sizeof(*d->recs));
        d->count++;
        d->recs[i].kind = kind;
        d->recs[i].seq = seq;
    }
    d->recs[i].data = copy;
    d->recs[i].size = size;
}

/* Makes every pending record durable, in output order (the runtime's one transaction). */
static void disk_commit(struct sim_disk *d)
{
    for (size_t i = 0; i < d->pending_count; i++) {
        struct sim_disk_pending *p = &d->pending[i];
        if (p->drop) {
            disk_drop(d, p->kind, p->seq);
        } else {
            disk_put(d, p->kind, p->seq, p->data, p->size);
        }
        free(p->data);
    }
    d->pending_count = 0;
}

void sim_disk_apply(struct sim_disk *d, const struct smr_output *out, uint64_t now_ms)
{
    bool sync = false;
    for (size_t i = 0; i < out->record_count; i++) {
        const struct smr_record *r = &out->records[i];
        if (d->pending_count == d->pending_capacity) {
            d->pending_capacity = d->pending_capacity == 0 ? 64 : 2 * d->pending_capacity;
            d->pending = realloc(d->pending, d->pending_capacity * sizeof(*d->pending));
            TRONE_ASSERT(d->pending != NULL);
        }
        if (d->pending_count == 0) {
            d->pending_since_ms = now_ms;
        }
        struct sim_disk_pending *p = &d->pending[d->pending_count++];
        p->kind = r->kind;
        p->seq = r->seq;
        p->drop = r->drop;
        p->size = r->drop ? 0 : r->size;
        p->data = malloc(p->size == 0 ? 1 : p->size);
        TRONE_ASSERT(p->data != NULL);
        if (p->size > 0) {
            memcpy(p->data, r->data, p->size);
        }
        sync = sync || r->sync;
    }
    /* Like rt_store: records that must precede the sends commit now, with everything before
     * them; the others wait at most SIM_DISK_LAZY_MS. */
    if (sync || (d->pending_count > 0 && now_ms >= d->pending_since_ms + SIM_DISK_LAZY_MS)) {
        disk_commit(d);
    }
}

void sim_disk_crash(struct sim_disk *d)
{
    for (size_t i = 0; i < d->pending_count; i++) {
        free(d->pending[i].data);
    }
    d->pending_count = 0;
}

int sim_disk_restore(const struct sim_disk *d, struct smr *core)
{
    for (size_t i = 0; i < d->count; i++) {
        const struct sim_disk_rec *r = &d->recs[i];
        int rc = smr_restore(core, r->kind, r->seq, r->data, r->size);
        if (rc != 0) {
            return rc;
        }
    }
    return 0;
}

void sim_disk_close(struct sim_disk *d)
{
    sim_disk_crash(d);
    free(d->pending);
    for (size_t i = 0; i < d->count; i++) {
        free(d->recs[i].data);
    }
    free(d->recs);
    memset(d, 0, sizeof(*d));
}
