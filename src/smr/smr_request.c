/* smr_request.c: client requests in the replica core: verification, the pending set, the
 * per-client reply table that makes execution at-most-once, and the leader's batching.
 * No I/O. Batching has no artificial wait: the leader proposes whenever a pipeline slot is
 * free and requests are pending (DESIGN.md 7). */
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "core/assert.h"
#include "smr/smr_internal.h"
#include "smr/smr_sig.h"

static int client_compare(const struct smr_client_entry *entry, const uint8_t *key)
{
    return memcmp(entry->key, key, TRONE_KEY_LEN);
}

/* Binary search in the key-sorted table; returns the insertion index if absent. */
static uint32_t client_index(const struct smr *s, const uint8_t key[TRONE_KEY_LEN], bool *found)
{
    uint32_t low = 0;
    uint32_t high = s->client_count;
    *found = false;
    while (low < high) {
        uint32_t mid = low + (high - low) / 2;
        int cmp = client_compare(&s->clients[mid], key);
        if (cmp == 0) {
            *found = true;
            return mid;
        }
        if (cmp < 0) {
            low = mid + 1;
        } else {
            high = mid;
        }
    }
    return low;
}

struct smr_client_entry *smr__client_find(struct smr *s, const uint8_t key[TRONE_KEY_LEN])
{
    bool found;
    uint32_t i = client_index(s, key, &found);
    return found ? &s->clients[i] : NULL;
}

/* Finds or inserts the entry of key; NULL when the table is full or memory ran out. */
struct smr_client_entry *smr__client_get(struct smr *s, const uint8_t key[TRONE_KEY_LEN])
{
    bool found;
    uint32_t i = client_index(s, key, &found);
    if (found) {
        return &s->clients[i];
    }
    if (s->client_count >= TRONE_CLIENTS_MAX + 1) {
        return NULL;
    }
    if (s->client_count == s->client_capacity) {
        uint32_t capacity = s->client_capacity == 0 ? 16 : s->client_capacity * 2;
        struct smr_client_entry *grown = realloc(s->clients, capacity * sizeof(*grown));
        if (grown == NULL) {
            return NULL;
        }
        s->clients = grown;
        s->client_capacity = capacity;
    }
    memmove(&s->clients[i + 1], &s->clients[i], (s->client_count - i) * sizeof(*s->clients));
    memset(&s->clients[i], 0, sizeof(s->clients[i]));
    memcpy(s->clients[i].key, key, TRONE_KEY_LEN);
    for (uint32_t k = 0; k < SMR_CLIENT_RECENT; k++) {
        buf_init(&s->clients[i].done[k].result, TRONE_RESULT_MAX);
    }
    s->client_count++;
    return &s->clients[i];
}

void smr__client_entry_close(struct smr_client_entry *entry)
{
    for (uint32_t k = 0; k < SMR_CLIENT_RECENT; k++) {
        buf_close(&entry->done[k].result);
    }
}

enum smr_seen smr__client_seen(const struct smr_client_entry *entry, uint64_t id,
                               const uint8_t *op, size_t op_size,
                               const struct smr_client_done **done)
{
    if (id <= entry->low) {
        return SMR_SEEN_STALE;
    }
    for (uint32_t k = 0; k < SMR_CLIENT_RECENT; k++) {
        const struct smr_client_done *d = &entry->done[k];
        if (d->id == id) {
            if (done != NULL) {
                *done = d;
            }
            if (op == NULL || !d->kept) {
                return SMR_SEEN_STALE;
            }
            uint8_t op_hash[TRONE_HASH_LEN];
            crypto_generichash(op_hash, sizeof(op_hash), op, op_size, NULL, 0);
            bool same = sodium_memcmp(d->op_hash, op_hash, TRONE_HASH_LEN) == 0;
            return same ? SMR_SEEN_DONE : SMR_SEEN_STALE;
        }
    }
    return SMR_SEEN_NEW;
}

/* Records the execution of a new request (id not seen) and returns the buffer its result
 * goes to. A full entry forgets its smallest id (low rises to it); if that is this request's,
 * the result goes to the scratch buffer: replied to once, then stale. Deterministic: every
 * replica executes the same requests in the same order. */
struct buf *smr__client_record(struct smr *s, struct smr_client_entry *entry, uint64_t id,
                               const uint8_t *op, size_t op_size)
{
    struct smr_client_done *slot = NULL;
    for (uint32_t k = 0; k < SMR_CLIENT_RECENT && slot == NULL; k++) {
        slot = entry->done[k].id == 0 ? &entry->done[k] : NULL;
    }
    if (slot == NULL) {
        struct smr_client_done *oldest = &entry->done[0];
        for (uint32_t k = 1; k < SMR_CLIENT_RECENT; k++) {
            oldest = entry->done[k].id < oldest->id ? &entry->done[k] : oldest;
        }
        if (id < oldest->id) {
            entry->low = id > entry->low ? id : entry->low;
            buf_reset(&s->result);
            return &s->result;
        }
        entry->low = oldest->id > entry->low ? oldest->id : entry->low;
        slot = oldest;
    }
    slot->id = id;
    crypto_generichash(slot->op_hash, TRONE_HASH_LEN, op, op_size, NULL, 0);
    slot->kept = true;
    buf_reset(&slot->result);
    return &slot->result;
}

/* Bounds the results an entry keeps to TRONE_RESULT_MAX bytes in all (the bound of one
 * result): the oldest other results are dropped (a retransmission of theirs is then told
 * TRONE_ESTALE), never keep_id's, the one just executed. */
void smr__client_trim(struct smr_client_entry *entry, uint64_t keep_id)
{
    for (uint32_t round = 0; round < SMR_CLIENT_RECENT; round++) {
        size_t total = 0;
        struct smr_client_done *oldest = NULL;
        for (uint32_t k = 0; k < SMR_CLIENT_RECENT; k++) {
            struct smr_client_done *d = &entry->done[k];
            if (d->id == 0 || !d->kept) {
                continue;
            }
            total += d->result.used;
            if (d->id != keep_id && (oldest == NULL || d->id < oldest->id)) {
                oldest = d;
            }
        }
        if (total <= TRONE_RESULT_MAX || oldest == NULL) {
            return;
        }
        oldest->kept = false;
        buf_close(&oldest->result);
        buf_init(&oldest->result, TRONE_RESULT_MAX);
    }
}

void smr__send_reply(struct smr *s, const uint8_t *client, uint64_t id, int status,
                       const uint8_t *result, size_t size)
{
    struct smr_reply reply = {
        .replica = s->config.self,
        .view = s->view,
        .request_id = id,
        .status = status,
        .result = result,
        .result_size = (uint32_t)size,
    };
    smr_msg_encode_reply(smr__send_begin(s), &reply);
    smr__send_done(s, SMR_DEST_CLIENT, 0, client);
}

/* The pending request (client, id) if there is one; *count gets the client's pending count
 * and *oldest its pending request of the smallest id. */
static struct smr_pending *pending_find(struct smr *s, const uint8_t *client, uint64_t id,
                                        uint32_t *count, struct smr_pending **oldest)
{
    struct smr_pending *found = NULL;
    *count = 0;
    *oldest = NULL;
    for (uint32_t i = 0; i < SMR_PENDING_MAX; i++) {
        struct smr_pending *p = &s->pending[i];
        if (!p->used || memcmp(p->client, client, TRONE_KEY_LEN) != 0) {
            continue;
        }
        (*count)++;
        found = p->request_id == id ? p : found;
        *oldest = *oldest == NULL || p->request_id < (*oldest)->request_id ? p : *oldest;
    }
    return found;
}

static struct smr_pending *pending_free_slot(struct smr *s)
{
    for (uint32_t i = 0; i < SMR_PENDING_MAX; i++) {
        if (!s->pending[i].used) {
            return &s->pending[i];
        }
    }
    return NULL;
}

/* Keeps up to SMR_PENDING_PER_CLIENT pending requests per client key (one per process that
 * shares the key, typically), the newest: a client cannot fill the pending set. */
static void pending_add(struct smr *s, const struct smr_request *m, const uint8_t *bytes,
                        size_t size)
{
    uint32_t count = 0;
    struct smr_pending *oldest = NULL;
    if (pending_find(s, m->client, m->request_id, &count, &oldest) != NULL) {
        return; /* a retransmission */
    }
    struct smr_pending *p = NULL;
    if (count >= SMR_PENDING_PER_CLIENT) {
        if (m->request_id < oldest->request_id) {
            return; /* older than all this client has pending */
        }
        p = oldest;
    } else {
        p = pending_free_slot(s);
        if (p == NULL) {
            smr__trace(s, SMR_TRACE_REJECTED, TRONE_EBUSY, 0, s->view, 0);
            return;
        }
    }
    buf_reset(&p->bytes);
    buf_put_bytes(&p->bytes, bytes, size);
    if (p->bytes.error != 0) {
        p->used = false;
        return;
    }
    p->used = true;
    memcpy(p->client, m->client, TRONE_KEY_LEN);
    p->request_id = m->request_id;
    crypto_generichash(p->hash, TRONE_HASH_LEN, bytes, size, NULL, 0);
    p->since_ms = s->now_ms;
    p->proposed_seq = 0;
}

/* A REQUEST from a client: it must be signed by the client whose session carried it. */
void smr__on_request(struct smr *s, const uint8_t *client, const uint8_t *data, size_t size)
{
    struct smr_request m;
    if (smr_msg_decode_request(data, size, &m) != 0) {
        smr__trace(s, SMR_TRACE_REJECTED, TRONE_EBADMSG, UINT32_MAX, s->view, 0);
        return;
    }
    if (memcmp(m.client, client, TRONE_KEY_LEN) != 0 || !smr_verify_request(&m)) {
        smr__trace(s, SMR_TRACE_REJECTED, TRONE_EAUTH, UINT32_MAX, s->view, 0);
        return;
    }
    struct smr_client_entry *entry = smr__client_find(s, m.client);
    if (entry != NULL) {
        const struct smr_client_done *done = NULL;
        enum smr_seen seen = smr__client_seen(entry, m.request_id, m.op, m.op_size, &done);
        if (seen == SMR_SEEN_DONE) {
            smr__send_reply(s, m.client, m.request_id, 0, done->result.data, done->result.used);
            return;
        }
        if (seen == SMR_SEEN_STALE) {
            smr__send_reply(s, m.client, m.request_id, TRONE_ESTALE, NULL, 0);
            return;
        }
    }
    /* The request bytes inside a batch are the message without its type byte. */
    pending_add(s, &m, data + 1, size - 1);
}

bool smr__pending_expired(const struct smr *s)
{
    for (uint32_t i = 0; i < SMR_PENDING_MAX; i++) {
        const struct smr_pending *p = &s->pending[i];
        if (p->used && s->now_ms >= p->since_ms + s->view_timeout_ms) {
            return true;
        }
    }
    return false;
}

/* A new view gives every pending request a full timeout again, and the new leader proposes
 * those not in the view's log. */
void smr__pending_restart_timers(struct smr *s)
{
    for (uint32_t i = 0; i < SMR_PENDING_MAX; i++) {
        struct smr_pending *p = &s->pending[i];
        if (p->used) {
            p->since_ms = s->now_ms;
            p->proposed_seq = 0;
        }
    }
}

/* Drops pending requests already executed (after execution or a state transfer). */
void smr__pending_forget_executed(struct smr *s)
{
    for (uint32_t i = 0; i < SMR_PENDING_MAX; i++) {
        struct smr_pending *p = &s->pending[i];
        if (!p->used) {
            continue;
        }
        struct smr_client_entry *entry = smr__client_find(s, p->client);
        if (entry != NULL && smr__client_seen(entry, p->request_id, NULL, 0, NULL) != SMR_SEEN_NEW) {
            p->used = false;
        }
    }
}

static bool pending_verified(const struct smr *s, const uint8_t hash[TRONE_HASH_LEN])
{
    for (uint32_t i = 0; i < SMR_PENDING_MAX; i++) {
        const struct smr_pending *p = &s->pending[i];
        if (p->used && sodium_memcmp(p->hash, hash, TRONE_HASH_LEN) == 0) {
            return true;
        }
    }
    return false;
}

/* Checks a proposed batch: well formed, and every request signed by its client. Requests
 * this replica already verified as pending are not verified again. */
int smr__batch_check(struct smr *s, const uint8_t *batch, size_t size)
{
    if (smr_batch_count(batch, size) < 0) {
        return TRONE_EBADMSG;
    }
    struct buf_reader r;
    buf_reader_init(&r, batch, size);
    uint32_t count = buf_get_u32(&r);
    for (uint32_t i = 0; i < count; i++) {
        size_t start = r.used;
        struct smr_request m;
        smr_msg_read_request(&r, &m);
        uint8_t hash[TRONE_HASH_LEN];
        crypto_generichash(hash, sizeof(hash), batch + start, r.used - start, NULL, 0);
        if (!pending_verified(s, hash) && !smr_verify_request(&m)) {
            return TRONE_EAUTH;
        }
    }
    return 0;
}

/* Builds the next batch from pending requests not yet proposed in this view, in table order
 * (deterministic). Returns the number of requests put in s->scratch. */
static uint32_t batch_build(struct smr *s, uint64_t seq)
{
    uint32_t count = 0;
    buf_reset(&s->scratch);
    buf_put_u32(&s->scratch, 0);
    for (uint32_t i = 0; i < SMR_PENDING_MAX && count < s->config.batch_max; i++) {
        struct smr_pending *p = &s->pending[i];
        if (!p->used || p->proposed_seq != 0) {
            continue;
        }
        buf_put_bytes(&s->scratch, p->bytes.data, p->bytes.used);
        if (s->scratch.error != 0) {
            break;
        }
        p->proposed_seq = seq;
        count++;
    }
    if (s->scratch.error == 0) {
        buf_store_u32(s->scratch.data, count);
    }
    return s->scratch.error == 0 ? count : 0;
}

/* The leader proposes while the pipeline has room and requests wait (PBFT 4.2). */
void smr__propose(struct smr *s)
{
    if (s->view_changing || smr__leader_of(s, s->view) != s->config.self) {
        return;
    }
    for (uint32_t round = 0; round < s->config.pipeline_max; round++) {
        uint64_t seq = s->next_seq;
        if (seq <= s->executed) {
            seq = s->executed + 1;
        }
        if (seq > s->executed + s->config.pipeline_max || !smr__in_window(s, seq) ||
            !smr__may_vote(s, s->view, seq)) {
            return; /* mute after a restart: a view change brings a leader that may propose */
        }
        if (batch_build(s, seq) == 0) {
            return;
        }
        struct smr_pre_prepare pp = {.view = s->view, .seq = seq};
        pp.batch = s->scratch.data;
        pp.batch_size = (uint32_t)s->scratch.used;
        smr_batch_digest(pp.batch, pp.batch_size, pp.digest);
        smr_sign_pre_prepare(&pp, s->config.secret_key);
        s->next_seq = seq + 1;
        smr_msg_encode_pre_prepare(smr__send_begin(s), &pp);
        smr__send_done(s, SMR_DEST_ALL, 0, NULL);
        smr__accept_pre_prepare(s, &pp, false);
    }
}
