/* rt_store.c: persistence in the replica runtime (rt_store.h): open, restore at start, and
 * one store transaction per loop turn committed before the turn's writes leave. */
#include "rt/rt_store.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "chan/chan_durable.h"
#include "core/assert.h"
#include "core/log.h"

#define RT_STORE_COMP "store"
/* Exit status of a replica that stopped because it could not persist its protocol state. */
#define RT_STORE_EXIT_PERSIST 3
/* Records without sync are committed at the latest this long after the first of them (at the
 * next flush: the core's timer makes one every status interval). */
#define RT_STORE_LAZY_MS 50u

void rt_store_cluster_id(const struct cfg_cluster *cluster, uint8_t out[TRONE_HASH_LEN])
{
    crypto_generichash_state st;
    crypto_generichash_init(&st, NULL, 0, TRONE_HASH_LEN);
    static const char label[] = "trone-cluster-id";
    crypto_generichash_update(&st, (const uint8_t *)label, sizeof(label) - 1);
    for (uint32_t i = 0; i < cluster->replica_count; i++) {
        crypto_generichash_update(&st, cluster->replicas[i].public_key, TRONE_KEY_LEN);
    }
    crypto_generichash_final(&st, out, TRONE_HASH_LEN);
}

int rt_store_open(struct rt_store *st, const char *dir, const struct cfg_cluster *cluster,
                  uint32_t self, bool rebuild, char *errmsg, size_t errmsg_size)
{
    memset(st, 0, sizeof(*st));
    st->dir = dir;
    struct store_config config;
    memset(&config, 0, sizeof(config));
    config.dir = dir;
    config.replica = self;
    rt_store_cluster_id(cluster, config.cluster_id);
    if (rebuild) {
        int rc = store_wipe(dir, errmsg, errmsg_size);
        if (rc != 0) {
            return rc;
        }
        log_warn(RT_STORE_COMP,
                 "msg=\"data directory wiped (--rebuild): starting empty, catching up from peers\" "
                 "dir=%s model=%s",
                 dir, cluster->bft ? "bft" : "cft");
    }
    return store_open(&config, &st->store, errmsg, errmsg_size);
}

struct restore_ctx {
    struct smr *smr;
    uint64_t records;
};

static int restore_record(void *ctx, uint8_t kind, uint64_t seq, const uint8_t *data, size_t size)
{
    struct restore_ctx *r = ctx;
    r->records++;
    return smr_restore(r->smr, kind, seq, data, size);
}

int rt_store_restore(struct rt_store *st, struct smr *smr, uint64_t now_ms,
                     const struct smr_output **out, char *errmsg, size_t errmsg_size)
{
    uint64_t start_ns = uv_hrtime();
    struct restore_ctx ctx = {.smr = smr};
    int rc = store_log_each(st->store, restore_record, &ctx);
    if (rc == 0) {
        rc = smr_restore_finish(smr, now_ms, out);
    }
    if (rc != 0) {
        snprintf(errmsg, errmsg_size,
                 "cannot restore the replication state from %s (record %llu): %s; rebuild it "
                 "from the peers with --rebuild",
                 st->dir, (unsigned long long)ctx.records, trone_strerror(rc));
        return rc;
    }
    uint64_t ms = (uv_hrtime() - start_ns) / 1000000u;
    struct store_stats stats;
    store_stats_get(st->store, &stats);
    if (stats.created || ctx.records == 0) {
        log_info(RT_STORE_COMP, "msg=\"data directory is new: starting empty\" dir=%s", st->dir);
        return 0;
    }
    uint64_t stable = smr_stable_seq(smr);
    uint64_t executed = smr_executed_seq(smr);
    log_info(RT_STORE_COMP,
             "msg=\"restored checkpoint %llu and %llu decided batches from %s in %llu ms\" "
             "records=%llu view=%llu executed=%llu events=%llu",
             (unsigned long long)stable,
             (unsigned long long)(executed > stable ? executed - stable : 0), st->dir,
             (unsigned long long)ms, (unsigned long long)ctx.records,
             (unsigned long long)smr_view(smr), (unsigned long long)executed,
             (unsigned long long)stats.events);
    return 0;
}

_Noreturn static void rt_store_fail(struct rt_store *st, int rc)
{
    log_error(RT_STORE_COMP,
              "msg=\"cannot persist the replication state, stopping without sending it\" "
              "dir=%s err=%s reason=\"%s\"%s",
              st->dir, trone_err_name(rc), trone_strerror(rc),
              rc == TRONE_EFULL ? " hint=\"free disk space, then restart the replica\"" : "");
    /* Votes of this turn are in memory only: leaving now is a crash, which the protocol
     * tolerates; sending them would not be. */
    exit(RT_STORE_EXIT_PERSIST);
}

void rt_store_records(struct rt_store *st, const struct smr_output *out)
{
    if (st->store == NULL || out->record_count == 0) {
        return;
    }
    int rc = 0;
    if (!st->batch_open) {
        rc = store_batch_begin(st->store);
        if (rc != 0) {
            rt_store_fail(st, rc);
        }
        st->batch_open = true;
        st->batch_opened_ns = uv_hrtime();
    }
    for (size_t i = 0; i < out->record_count && rc == 0; i++) {
        const struct smr_record *r = &out->records[i];
        if (r->drop) {
            rc = store_log_drop_upto(st->store, r->kind, r->seq);
        } else {
            rc = store_log_put(st->store, r->kind, r->seq, r->data, r->size);
        }
        st->batch_records++;
        st->batch_sync = st->batch_sync || r->sync;
    }
    if (rc != 0) {
        store_batch_abort(st->store);
        rt_store_fail(st, rc);
    }
}

void rt_store_flush(struct rt_store *st)
{
    if (st->store == NULL || !st->batch_open) {
        return;
    }
    uint64_t age_ms = (uv_hrtime() - st->batch_opened_ns) / 1000000u;
    if (st->batch_sync || age_ms >= RT_STORE_LAZY_MS) {
        rt_store_commit(st);
    }
}

void rt_store_commit(struct rt_store *st)
{
    if (st->store == NULL || !st->batch_open) {
        return;
    }
    st->batch_open = false;
    st->batch_sync = false;
    int rc = store_batch_commit(st->store);
    if (rc != 0) {
        rt_store_fail(st, rc);
    }
    st->commits++;
    st->records += st->batch_records;
    st->batch_records = 0;
}

void rt_store_close(struct rt_store *st)
{
    if (st->store == NULL) {
        return;
    }
    if (st->batch_open) {
        /* Nothing of this turn was sent: committing keeps what the core moved to. */
        rt_store_commit(st);
    }
    log_info(RT_STORE_COMP, "msg=\"store closed\" dir=%s commits=%llu records=%llu", st->dir,
             (unsigned long long)st->commits, (unsigned long long)st->records);
    store_close(st->store);
    st->store = NULL;
}

/* ---- Durable events ------------------------------------------------------------------------ */

static void rt_store_batch_open(struct rt_store *st)
{
    if (st->batch_open) {
        return;
    }
    int rc = store_batch_begin(st->store);
    if (rc != 0) {
        rt_store_fail(st, rc);
    }
    st->batch_open = true;
    st->batch_opened_ns = uv_hrtime();
}

/* A stream met for the first time in this loop's run of puts or inserts (live or fetched
 * by the catch-up): index it in its group and give it its channel's retention (no write when
 * both are already so). Needs the batch open. */
static int rt_store_index(struct rt_store *st, uint64_t group, uint64_t stream,
                          const uint8_t *desc, size_t desc_size, uint64_t retain_ms,
                          uint64_t retain_bytes)
{
    if (stream == st->indexed_stream) {
        return 0;
    }
    int rc = store_stream_put(st->store, group, stream, desc, desc_size);
    if (rc == 0) {
        rc = store_retention_set(st->store, stream, retain_ms, retain_bytes);
    }
    if (rc == 0) {
        st->indexed_stream = stream;
    }
    return rc;
}

int rt_store_event_put(void *ctx, uint64_t group, uint64_t stream, const uint8_t *desc,
                       size_t desc_size, uint64_t position, uint64_t time_us,
                       const uint8_t *record, size_t size, uint64_t retain_ms,
                       uint64_t retain_bytes)
{
    struct rt_store *st = ctx;
    TRONE_ASSERT(st->store != NULL);
    if (store_event_room(st->store, size + desc_size) != 0) {
        if (!st->full_logged) {
            st->full_logged = true;
            log_error(RT_STORE_COMP,
                      "msg=\"disk or store full: refusing durable events (publishers get "
                      "TRONE_EFULL), everything else goes on\" dir=%s "
                      "hint=\"free disk space or lower the channels' retain-bytes; durable "
                      "events are accepted again once there is room\"", st->dir);
        }
        return TRONE_EFULL; /* refused whole; nothing joins the batch */
    }
    rt_store_batch_open(st);
    int irc = rt_store_index(st, group, stream, desc, desc_size, retain_ms, retain_bytes);
    if (irc != 0) {
        return irc; /* EEXIST: refused; others are sticky: the commit fails and says why */
    }
    int rc = store_event_put(st->store, stream, position, time_us / 1000u, record, size);
    if (rc == TRONE_EINVAL && position != 0) {
        /* At or below the stream's last: stored before (a resend), or a hole that the
         * anti-entropy has not filled yet (it inserted later positions): fill it now, so an
         * event is never acknowledged without being on disk. */
        rc = store_event_insert(st->store, stream, position, time_us / 1000u, record, size);
        if (rc == TRONE_EEXIST) {
            return 0;
        }
    }
    if (rc == 0) {
        st->batch_sync = true; /* forwarded and acked only after the commit */
        st->batch_records++;
        st->events++;
    }
    return rc;
}

int rt_store_event_drop(void *ctx, uint64_t stream, uint64_t position_max, uint32_t delete_max)
{
    struct rt_store *st = ctx;
    TRONE_ASSERT(st->store != NULL);
    rt_store_batch_open(st);
    uint32_t deleted = 0;
    int rc = store_event_drop_upto(st->store, stream, position_max, delete_max, &deleted);
    if (rc != 0) {
        return rc; /* sticky: the commit fails and says why */
    }
    st->batch_records += deleted;
    st->pending_dropped += deleted;
    return (int)deleted;
}

int rt_store_stream_next(void *ctx, uint64_t group, uint64_t after, uint64_t *stream,
                         uint8_t *desc, size_t desc_max, size_t *desc_size)
{
    struct rt_store *st = ctx;
    return store_stream_next(st->store, group, after, stream, desc, desc_max, desc_size);
}

struct rt_store_read_ctx {
    rt_store_read_cb cb;
    void *ctx;
};

static int rt_store_read_one(void *ctx, uint64_t position, uint64_t time_ms, const uint8_t *data,
                             size_t size)
{
    (void)time_ms;
    struct rt_store_read_ctx *x = ctx;
    return x->cb(x->ctx, position, data, size);
}

int rt_store_event_read(void *ctx, uint64_t stream, uint64_t position, uint32_t count_max,
                        rt_store_read_cb cb, void *cb_ctx)
{
    struct rt_store *st = ctx;
    struct rt_store_read_ctx x = {.cb = cb, .ctx = cb_ctx};
    return store_event_read(st->store, stream, position, count_max, rt_store_read_one, &x);
}

#define RT_STORE_RETENTION_STEP 1024u

bool rt_store_retention(struct rt_store *st, uint64_t now_ms)
{
    if (st->store == NULL) {
        return false;
    }
    rt_store_commit(st); /* retention runs in its own short transaction */
    uint32_t deleted = 0;
    bool was_full = store_full(st->store);
    if (was_full) {
        (void)store_space_refresh(st->store);
    }
    int rc = store_retention_step(st->store, now_ms, RT_STORE_RETENTION_STEP, &deleted);
    if (rc != 0) {
        log_warn(RT_STORE_COMP, "msg=\"retention step failed\" dir=%s err=%s", st->dir,
                 trone_err_name(rc));
        return false;
    }
    st->retention_deleted += deleted;
    if (was_full && !store_full(st->store)) {
        log_info(RT_STORE_COMP, "msg=\"there is room again: durable events accepted again\" "
                 "dir=%s", st->dir);
        st->full_logged = false;
    }
    return deleted == RT_STORE_RETENTION_STEP;
}

/* ---- Anti-entropy ---------------------------------------------------------------------------- */

/* Held positions a hole search looks at per call (rt_store_event_hole). */
#define RT_STORE_HOLE_SCAN 65536u

int rt_store_stream_info(void *ctx, uint64_t stream, struct brk_events_stream_info *out)
{
    struct rt_store *st = ctx;
    struct store_channel_info info;
    int rc = store_channel_info(st->store, stream, &info);
    memset(out, 0, sizeof(*out));
    if (rc == 0) {
        out->first = info.first;
        out->last = info.last;
        out->count = info.count;
        out->bytes = info.bytes;
        out->age_ms_max = info.age_ms_max;
        out->bytes_max = info.bytes_max;
        out->trimmed = info.trimmed;
    }
    return rc;
}

int rt_store_event_hole(void *ctx, uint64_t stream, uint64_t from, uint64_t *hole,
                        uint64_t *hole_end)
{
    struct rt_store *st = ctx;
    return store_event_hole(st->store, stream, from, RT_STORE_HOLE_SCAN, hole, hole_end);
}

int rt_store_event_insert(void *ctx, uint64_t group, uint64_t stream, const uint8_t *desc,
                          size_t desc_size, uint64_t position, uint64_t time_us,
                          const uint8_t *record, size_t size, uint64_t retain_ms,
                          uint64_t retain_bytes)
{
    struct rt_store *st = ctx;
    TRONE_ASSERT(st->store != NULL);
    if (store_event_room(st->store, size + desc_size) != 0) {
        return TRONE_EFULL; /* as a put: refused before the batch, which could not commit */
    }
    rt_store_batch_open(st);
    int irc = rt_store_index(st, group, stream, desc, desc_size, retain_ms, retain_bytes);
    if (irc != 0) {
        return irc;
    }
    int rc = store_event_insert(st->store, stream, position, time_us / 1000u, record, size);
    if (rc == 0) {
        st->batch_records++;
        st->events++;
        st->inserted++;
    }
    return rc;
}

/* ---- Offline dump ------------------------------------------------------------------------ */

struct rt_store_dump_ctx {
    struct store *store;
    FILE *out;
    struct chan_durable_stream desc;
    uint64_t count;
    uint64_t next;
    uint32_t read;
};

static void rt_store_hex(char *out, const uint8_t *data, size_t size)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < size; i++) {
        out[2 * i] = digits[data[i] >> 4];
        out[2 * i + 1] = digits[data[i] & 15u];
    }
    out[2 * size] = 0;
}

static int rt_store_dump_event(void *ctx, uint64_t position, uint64_t time_ms, const uint8_t *data,
                               size_t size)
{
    (void)time_ms;
    struct rt_store_dump_ctx *x = ctx;
    uint8_t hash[TRONE_HASH_LEN];
    crypto_generichash(hash, sizeof(hash), data, size, NULL, 0);
    char hash_hex[2 * TRONE_HASH_LEN + 1];
    rt_store_hex(hash_hex, hash, sizeof(hash));
    char publisher_hex[2 * TRONE_KEY_LEN + 1] = "-";
    if (!x->desc.total) {
        rt_store_hex(publisher_hex, x->desc.publisher, TRONE_KEY_LEN);
    }
    const char *kind = x->desc.pending ? "pending" : x->desc.total ? "total" : "fifo";
    fprintf(x->out, "%s %s %s %llu %llu %s\n", x->desc.tag, kind,
            publisher_hex, (unsigned long long)x->desc.epoch, (unsigned long long)position,
            hash_hex);
    x->count++;
    x->read++;
    x->next = position + 1;
    return 0;
}

static int rt_store_dump_stream(void *ctx, uint64_t group, uint64_t channel, const uint8_t *data,
                                size_t size)
{
    (void)group;
    struct rt_store_dump_ctx *x = ctx;
    if (chan_durable_desc_decode(&x->desc, data, size) != 0) {
        return TRONE_ECORRUPT;
    }
    x->next = 1;
    /* Chunks of 4096: bounded memory and transactions, whatever the stream's length. */
    for (;;) {
        x->read = 0;
        int rc = store_event_read(x->store, channel, x->next, 4096u, rt_store_dump_event, x);
        if (rc != 0) {
            return rc;
        }
        if (x->read < 4096u || x->next == 0) {
            return 0;
        }
    }
}

int rt_store_dump_events(const char *dir, const struct cfg_cluster *cluster, uint32_t self,
                         FILE *out, char *errmsg, size_t errmsg_size)
{
    struct store_config config;
    memset(&config, 0, sizeof(config));
    config.dir = dir;
    config.replica = self;
    config.no_sync = true; /* reads only */
    rt_store_cluster_id(cluster, config.cluster_id);
    struct store *s = NULL;
    int rc = store_open(&config, &s, errmsg, errmsg_size);
    if (rc != 0) {
        return rc;
    }
    struct rt_store_dump_ctx x = {.store = s, .out = out};
    rc = store_stream_each(s, rt_store_dump_stream, &x);
    if (rc != 0) {
        snprintf(errmsg, errmsg_size, "cannot read the events of %s: %s", dir,
                 trone_strerror(rc));
    } else {
        fprintf(out, "events %llu\n", (unsigned long long)x.count);
    }
    store_close(s);
    return rc;
}
