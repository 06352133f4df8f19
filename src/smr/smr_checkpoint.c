/* smr_checkpoint.c: checkpoints, log truncation and state transfer (PBFT section 4.3).
 * The replicated state is the application snapshot plus the reply table. A checkpoint is
 * stable with Q matching signed CHECKPOINT votes; that proof lets a replica that fell behind
 * install a peer's snapshot without trusting the peer. No I/O. */
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "core/assert.h"
#include "smr/smr_internal.h"
#include "smr/smr_sig.h"

/* The reply table in a snapshot: u32 SMR_CLIENTS_V2 | u32 client count | per client (sorted
 * by key): key | u64 low | u8 n | n x (u64 id | op hash | u8 kept | result blob), ids
 * ascending. Snapshots written before several processes could share a key hold u32 count |
 * (key, u64 last id, result blob)* instead (read as low = last id: a retransmission of that
 * last request is then told TRONE_ESTALE). */
#define SMR_CLIENTS_V2 0xffffffffu

/* The executed requests of entry in id order; returns how many. */
static uint32_t done_sorted(const struct smr_client_entry *entry,
                            const struct smr_client_done *out[SMR_CLIENT_RECENT])
{
    uint32_t n = 0;
    for (uint32_t k = 0; k < SMR_CLIENT_RECENT; k++) {
        const struct smr_client_done *d = &entry->done[k];
        if (d->id == 0) {
            continue;
        }
        uint32_t j = n++;
        for (; j > 0 && out[j - 1]->id > d->id; j--) {
            out[j] = out[j - 1];
        }
        out[j] = d;
    }
    return n;
}

/* State snapshot: u32 app size | app bytes | reply table (above). */
static int state_encode(struct smr *s, struct buf *out)
{
    buf_reset(out);
    buf_put_u32(out, 0);
    size_t app_start = out->used;
    int rc = s->app.snapshot(s->app.ctx, out);
    if (rc != 0 || out->error != 0) {
        return rc != 0 ? rc : out->error;
    }
    buf_store_u32(out->data, (uint32_t)(out->used - app_start));
    buf_put_u32(out, SMR_CLIENTS_V2);
    buf_put_u32(out, s->client_count);
    for (uint32_t i = 0; i < s->client_count; i++) {
        const struct smr_client_entry *entry = &s->clients[i];
        const struct smr_client_done *done[SMR_CLIENT_RECENT];
        uint32_t n = done_sorted(entry, done);
        buf_put_bytes(out, entry->key, TRONE_KEY_LEN);
        buf_put_u64(out, entry->low);
        buf_put_u8(out, (uint8_t)n);
        for (uint32_t k = 0; k < n; k++) {
            buf_put_u64(out, done[k]->id);
            buf_put_bytes(out, done[k]->op_hash, TRONE_HASH_LEN);
            buf_put_u8(out, done[k]->kept ? 1u : 0u);
            buf_put_blob(out, done[k]->result.data, done[k]->kept ? done[k]->result.used : 0u);
        }
    }
    return out->error;
}

static struct smr_ckpt *ckpt_find(struct smr *s, uint64_t seq, bool allocate)
{
    struct smr_ckpt *free_entry = NULL;
    for (uint32_t i = 0; i < s->ckpt_count; i++) {
        struct smr_ckpt *c = &s->ckpts[i];
        if (c->seq == seq) {
            return c;
        }
        if (free_entry == NULL && (c->seq == 0 || c->seq <= s->stable.seq)) {
            free_entry = c;
        }
    }
    if (!allocate || free_entry == NULL) {
        return NULL;
    }
    struct buf snapshot = free_entry->snapshot;
    memset(free_entry, 0, sizeof(*free_entry));
    buf_reset(&snapshot);
    free_entry->snapshot = snapshot;
    free_entry->seq = seq;
    return free_entry;
}

/* The digest with a quorum of votes in c, if any. */
static const uint8_t *ckpt_quorum_digest(const struct smr *s, const struct smr_ckpt *c)
{
    for (uint32_t r = 0; r < SMR_R; r++) {
        if ((c->vote_mask >> r & 1) == 0) {
            continue;
        }
        uint32_t count = 0;
        for (uint32_t q = 0; q < SMR_R; q++) {
            if ((c->vote_mask >> q & 1) != 0 &&
                memcmp(c->vote_digest[q], c->vote_digest[r], TRONE_HASH_LEN) == 0) {
                count++;
            }
        }
        if (count >= s->quorum) {
            return c->vote_digest[r];
        }
    }
    return NULL;
}

/* A checkpoint becomes stable when this replica has its own matching state and Q votes. */
static void ckpt_check_stable(struct smr *s, struct smr_ckpt *c)
{
    const uint8_t *digest = ckpt_quorum_digest(s, c);
    if (digest == NULL || !c->own || memcmp(digest, c->digest, TRONE_HASH_LEN) != 0) {
        return;
    }
    uint64_t mask = 0;
    uint8_t sigs[SMR_R][TRONE_SIG_LEN];
    for (uint32_t r = 0; r < SMR_R; r++) {
        if ((c->vote_mask >> r & 1) != 0 &&
            memcmp(c->vote_digest[r], digest, TRONE_HASH_LEN) == 0) {
            mask |= 1ull << r;
            memcpy(sigs[r], c->vote_sig[r], TRONE_SIG_LEN);
        }
    }
    smr__stable_advance(s, c->seq, c->digest, mask, (const uint8_t(*)[TRONE_SIG_LEN])sigs,
                        c->snapshot.data, c->snapshot.used);
}

void smr__stable_advance(struct smr *s, uint64_t seq, const uint8_t *digest, uint64_t mask,
                         const uint8_t sigs[][TRONE_SIG_LEN], const uint8_t *snapshot,
                         size_t snapshot_size)
{
    if (seq < s->stable.seq || (seq == s->stable.seq && s->stable.snapshot.used > 0)) {
        return;
    }
    /* Without the state itself (adopted from a new view's proof), serve none until a state
     * transfer brings it. */
    buf_reset(&s->stable.snapshot);
    buf_put_bytes(&s->stable.snapshot, snapshot, snapshot_size);
    if (s->stable.snapshot.error != 0) {
        buf_reset(&s->stable.snapshot);
    }
    s->stable.seq = seq;
    s->stable_dirty = true;
    memcpy(s->stable.digest, digest, TRONE_HASH_LEN);
    s->stable.mask = mask;
    for (uint32_t r = 0; r < SMR_R; r++) {
        if ((mask >> r & 1) != 0) {
            memcpy(s->stable.sigs[r], sigs[r], TRONE_SIG_LEN);
        }
    }
    smr__trace(s, SMR_TRACE_CHECKPOINT, 0, s->config.self, s->view, seq);
}

void smr__take_checkpoint(struct smr *s)
{
    struct smr_ckpt *c = ckpt_find(s, s->executed, true);
    if (c == NULL || state_encode(s, &c->snapshot) != 0) {
        return; /* out of memory: a later checkpoint or a state transfer recovers */
    }
    c->own = true;
    crypto_generichash(c->digest, TRONE_HASH_LEN, c->snapshot.data, c->snapshot.used, NULL, 0);
    struct smr_checkpoint vote = {.seq = s->executed, .replica = s->config.self};
    memcpy(vote.digest, c->digest, TRONE_HASH_LEN);
    smr_sign_checkpoint(&vote, s->config.secret_key);
    c->vote_mask |= 1ull << s->config.self;
    memcpy(c->vote_digest[s->config.self], vote.digest, TRONE_HASH_LEN);
    memcpy(c->vote_sig[s->config.self], vote.sig, TRONE_SIG_LEN);
    smr_msg_encode_checkpoint(smr__send_begin(s), &vote);
    smr__send_done(s, SMR_DEST_ALL, 0, NULL);
    ckpt_check_stable(s, c);
}

void smr__on_checkpoint(struct smr *s, uint32_t from, const uint8_t *data, size_t size)
{
    struct smr_checkpoint vote;
    if (smr_msg_decode_checkpoint(data, size, &vote) != 0 || vote.replica != from) {
        smr__trace(s, SMR_TRACE_REJECTED, TRONE_EBADMSG, from, s->view, 0);
        return;
    }
    if (vote.seq % s->config.checkpoint_interval != 0 || !smr__in_window(s, vote.seq)) {
        return;
    }
    if (!smr_verify_checkpoint(&vote, s->config.replica_keys[from])) {
        smr__trace(s, SMR_TRACE_REJECTED, TRONE_EAUTH, from, s->view, vote.seq);
        return;
    }
    struct smr_ckpt *c = ckpt_find(s, vote.seq, true);
    if (c == NULL) {
        return;
    }
    c->vote_mask |= 1ull << from;
    memcpy(c->vote_digest[from], vote.digest, TRONE_HASH_LEN);
    memcpy(c->vote_sig[from], vote.sig, TRONE_SIG_LEN);
    ckpt_check_stable(s, c);
}

bool smr__stable_proof_valid(const struct smr *s, uint64_t seq, const uint8_t *digest,
                             uint64_t mask, const uint8_t sigs[][TRONE_SIG_LEN])
{
    if (seq == 0) {
        return mask == 0;
    }
    if (seq % s->config.checkpoint_interval != 0 ||
        mask >> s->config.replica_count != 0 || smr__popcount(mask) < s->quorum) {
        return false;
    }
    for (uint32_t r = 0; r < s->config.replica_count; r++) {
        if ((mask >> r & 1) == 0) {
            continue;
        }
        struct smr_checkpoint vote = {.seq = seq, .replica = r};
        memcpy(vote.digest, digest, TRONE_HASH_LEN);
        memcpy(vote.sig, sigs[r], TRONE_SIG_LEN);
        if (!smr_verify_checkpoint(&vote, s->config.replica_keys[r])) {
            return false;
        }
    }
    return true;
}

/* STATE: type | replica | seq | digest | mask | sig per set bit | snapshot blob. */
struct smr_state_msg {
    uint32_t replica;
    uint64_t seq;
    uint8_t digest[TRONE_HASH_LEN];
    uint64_t mask;
    uint8_t sigs[SMR_R][TRONE_SIG_LEN];
    const uint8_t *snapshot;
    size_t snapshot_size;
};

static int state_msg_decode(const uint8_t *data, size_t size, struct smr_state_msg *m)
{
    struct buf_reader r;
    buf_reader_init(&r, data, size);
    if (buf_get_u8(&r) != SMR_MSG_STATE) {
        return TRONE_EBADMSG;
    }
    m->replica = buf_get_u32(&r);
    m->seq = buf_get_u64(&r);
    buf_get_bytes(&r, m->digest, TRONE_HASH_LEN);
    m->mask = buf_get_u64(&r);
    if (m->mask >> SMR_R != 0) {
        return TRONE_EBADMSG;
    }
    for (uint32_t i = 0; i < SMR_R; i++) {
        if ((m->mask >> i & 1) != 0) {
            buf_get_bytes(&r, m->sigs[i], TRONE_SIG_LEN);
        }
    }
    m->snapshot = buf_get_blob(&r, TRONE_MESSAGE_MAX, &m->snapshot_size);
    return buf_reader_finish(&r);
}

void smr__want_state(struct smr *s, uint32_t from, uint64_t seq)
{
    if (seq <= s->stable.seq && seq <= s->executed) {
        return; /* we hold both the proof and the state */
    }
    bool recent = s->now_ms < s->state_asked_ms + 4 * s->config.status_interval_ms;
    if (s->state_wanted_seq >= seq && recent) {
        return;
    }
    s->state_wanted_seq = seq;
    s->state_asked_ms = s->now_ms;
    s->state_asked_replica = from;
    struct smr_state_request request = {.replica = s->config.self, .seq = seq};
    smr_msg_encode_state_request(smr__send_begin(s), &request);
    smr__send_done(s, SMR_DEST_REPLICA, from, NULL);
}

void smr__on_state_request(struct smr *s, uint32_t from, const uint8_t *data, size_t size)
{
    struct smr_state_request request;
    if (smr_msg_decode_state_request(data, size, &request) != 0 || request.replica != from) {
        smr__trace(s, SMR_TRACE_REJECTED, TRONE_EBADMSG, from, s->view, 0);
        return;
    }
    if (s->stable.seq == 0 || s->stable.snapshot.used == 0) {
        return;
    }
    struct buf *out = smr__send_begin(s);
    buf_put_u8(out, SMR_MSG_STATE);
    buf_put_u32(out, s->config.self);
    buf_put_u64(out, s->stable.seq);
    buf_put_bytes(out, s->stable.digest, TRONE_HASH_LEN);
    buf_put_u64(out, s->stable.mask);
    for (uint32_t r = 0; r < SMR_R; r++) {
        if ((s->stable.mask >> r & 1) != 0) {
            buf_put_bytes(out, s->stable.sigs[r], TRONE_SIG_LEN);
        }
    }
    buf_put_blob(out, s->stable.snapshot.data, s->stable.snapshot.used);
    smr__send_done(s, SMR_DEST_REPLICA, from, NULL);
}

/* Reads one entry of a current (v2) reply table; sets r->error if it is not canonical. */
static void client_decode_v2(struct buf_reader *r, struct smr_client_entry *entry)
{
    entry->low = buf_get_u64(r);
    uint32_t n = buf_get_u8(r);
    if (n > SMR_CLIENT_RECENT) {
        r->error = TRONE_ECORRUPT;
        return;
    }
    uint64_t previous = entry->low;
    for (uint32_t k = 0; k < n && r->error == 0; k++) {
        struct smr_client_done *d = &entry->done[k];
        d->id = buf_get_u64(r);
        buf_get_bytes(r, d->op_hash, TRONE_HASH_LEN);
        uint8_t kept = buf_get_u8(r);
        size_t result_size = 0;
        const uint8_t *result = buf_get_blob(r, TRONE_RESULT_MAX, &result_size);
        d->kept = kept == 1u;
        buf_put_bytes(&d->result, result, result_size);
        if (d->id <= previous || kept > 1u || (!d->kept && result_size != 0) ||
            d->result.error != 0) {
            r->error = TRONE_ECORRUPT; /* ids ascending above low; no result when not kept */
        }
        previous = d->id;
    }
}

/* Parses the reply-table part of a snapshot into a fresh table (sorted, no duplicates). */
static int clients_decode(struct buf_reader *r, struct smr_client_entry **table, uint32_t *count)
{
    uint32_t n = buf_get_u32(r);
    bool v2 = n == SMR_CLIENTS_V2;
    n = v2 ? buf_get_u32(r) : n;
    if (r->error != 0 || n > TRONE_CLIENTS_MAX + 1) {
        return TRONE_ECORRUPT;
    }
    struct smr_client_entry *entries = calloc(n == 0 ? 1 : n, sizeof(*entries));
    if (entries == NULL) {
        return TRONE_ENOMEM;
    }
    uint32_t i = 0;
    for (; i < n && r->error == 0; i++) {
        struct smr_client_entry *entry = &entries[i];
        for (uint32_t k = 0; k < SMR_CLIENT_RECENT; k++) {
            buf_init(&entry->done[k].result, TRONE_RESULT_MAX);
        }
        buf_get_bytes(r, entry->key, TRONE_KEY_LEN);
        if (v2) {
            client_decode_v2(r, entry);
        } else {
            size_t result_size = 0;
            entry->low = buf_get_u64(r); /* the last id: stale from now on */
            (void)buf_get_blob(r, TRONE_RESULT_MAX, &result_size);
        }
        if (i > 0 && memcmp(entries[i - 1].key, entry->key, TRONE_KEY_LEN) >= 0) {
            r->error = TRONE_ECORRUPT;
        }
    }
    if (buf_reader_finish(r) != 0) {
        for (uint32_t k = 0; k < i; k++) {
            smr__client_entry_close(&entries[k]);
        }
        free(entries);
        return TRONE_ECORRUPT;
    }
    *table = entries;
    *count = n;
    return 0;
}

/* Installs a verified snapshot: the application first (it validates), then the reply
 * table. On any error nothing changes. */
int smr__state_install(struct smr *s, const uint8_t *snapshot, size_t size)
{
    struct buf_reader r;
    buf_reader_init(&r, snapshot, size);
    size_t app_size = buf_get_u32(&r);
    const uint8_t *app = buf_get_ref(&r, app_size);
    struct smr_client_entry *table = NULL;
    uint32_t count = 0;
    if (app == NULL || clients_decode(&r, &table, &count) != 0) {
        return TRONE_ECORRUPT;
    }
    int rc = s->app.restore(s->app.ctx, app, app_size);
    if (rc != 0) {
        for (uint32_t k = 0; k < count; k++) {
            smr__client_entry_close(&table[k]);
        }
        free(table);
        return rc;
    }
    for (uint32_t k = 0; k < s->client_count; k++) {
        smr__client_entry_close(&s->clients[k]);
    }
    free(s->clients);
    s->clients = table;
    s->client_count = count;
    s->client_capacity = count == 0 ? 1 : count;
    return 0;
}

void smr__on_state(struct smr *s, uint32_t from, const uint8_t *data, size_t size)
{
    struct smr_state_msg m;
    if (state_msg_decode(data, size, &m) != 0 || m.replica != from) {
        smr__trace(s, SMR_TRACE_REJECTED, TRONE_EBADMSG, from, s->view, 0);
        return;
    }
    if (m.seq <= s->stable.seq && m.seq <= s->executed) {
        return;
    }
    uint8_t digest[TRONE_HASH_LEN];
    crypto_generichash(digest, sizeof(digest), m.snapshot, m.snapshot_size, NULL, 0);
    if (sodium_memcmp(digest, m.digest, TRONE_HASH_LEN) != 0 ||
        !smr__stable_proof_valid(s, m.seq, m.digest, m.mask,
                                 (const uint8_t(*)[TRONE_SIG_LEN])m.sigs)) {
        smr__trace(s, SMR_TRACE_REJECTED, TRONE_EAUTH, from, s->view, m.seq);
        return;
    }
    if (m.seq <= s->executed) {
        /* We executed that far already: the proof only moves our low watermark. */
        smr__stable_advance(s, m.seq, m.digest, m.mask, (const uint8_t(*)[TRONE_SIG_LEN])m.sigs,
                            m.snapshot, m.snapshot_size);
        s->state_wanted_seq = 0;
        return;
    }
    if (smr__state_install(s, m.snapshot, m.snapshot_size) != 0) {
        smr__trace(s, SMR_TRACE_REJECTED, TRONE_ECORRUPT, from, s->view, m.seq);
        return;
    }
    s->executed = m.seq;
    if (s->next_seq <= m.seq) {
        s->next_seq = m.seq + 1;
    }
    smr__stable_advance(s, m.seq, m.digest, m.mask, (const uint8_t(*)[TRONE_SIG_LEN])m.sigs,
                        m.snapshot, m.snapshot_size);
    s->state_wanted_seq = 0;
    smr__trace(s, SMR_TRACE_STATE_INSTALLED, 0, from, s->view, m.seq);
    smr__pending_forget_executed(s);
    smr__execute_ready(s);
}
