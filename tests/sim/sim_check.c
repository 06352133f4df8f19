/* sim_check.c: the invariants checked after every step (STYLE.md rule 19). Agreement: correct
 * replicas execute the same (client, request id, result digest) list at each seq. No request is
 * executed at two seqs or twice by one replica, and only requests that clients submitted are
 * executed. Client integrity: an accepted result is one a correct replica produced. Replicas at
 * the same executed seq hold identical control tables. */
#include "sim.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "core/assert.h"

#define SIM_SEQ_LIMIT (1u << 20)

void sim_check_init(struct sim_check *c)
{
    memset(c, 0, sizeof(*c));
}

void sim_check_close(struct sim_check *c)
{
    for (size_t i = 0; i < c->seq_capacity; i++) {
        free(c->seqs[i].recs);
    }
    free(c->seqs);
    free(c->reqs);
    sim_check_votes_close(c);
    memset(c, 0, sizeof(*c));
}

static struct sim_seq_rec *seq_rec(struct sim *s, uint64_t seq)
{
    struct sim_check *c = &s->check;
    if (seq >= SIM_SEQ_LIMIT) {
        sim_fail(s, SIM_EXIT_INVARIANT, "seq %llu beyond the simulator's limit",
                 (unsigned long long)seq);
        return NULL;
    }
    if (seq >= c->seq_capacity) {
        size_t capacity = c->seq_capacity == 0 ? 256 : c->seq_capacity;
        while (capacity <= seq) {
            capacity *= 2;
        }
        struct sim_seq_rec *seqs = realloc(c->seqs, capacity * sizeof(*seqs));
        TRONE_ASSERT(seqs != NULL);
        memset(seqs + c->seq_capacity, 0, (capacity - c->seq_capacity) * sizeof(*seqs));
        c->seqs = seqs;
        c->seq_capacity = capacity;
    }
    return &c->seqs[seq];
}

static struct sim_req_rec *req_find(struct sim *s, const uint8_t *client, uint64_t id)
{
    struct sim_check *c = &s->check;
    for (size_t i = 0; i < c->req_count; i++) {
        struct sim_req_rec *q = &c->reqs[i];
        if (q->request_id == id && memcmp(q->client, client, TRONE_KEY_LEN) == 0) {
            return q;
        }
    }
    return NULL;
}

/* Only requests a simulated client submitted may ever be executed (forgeries must not be). */
static bool req_submitted(const struct sim *s, const uint8_t *client, uint64_t id)
{
    for (uint32_t i = 0; i < s->p.client_count; i++) {
        const struct sim_client *c = &s->clients[i];
        if (memcmp(c->public_key, client, TRONE_KEY_LEN) != 0) {
            continue;
        }
        for (uint32_t k = 0; k < c->op_next; k++) {
            if (c->ids[k] == id) {
                return true;
            }
        }
    }
    return false;
}

static void hex8(char out[17], const uint8_t *data)
{
    static const char digits[] = "0123456789abcdef";
    for (int i = 0; i < 8; i++) {
        out[2 * i] = digits[data[i] >> 4];
        out[2 * i + 1] = digits[data[i] & 15];
    }
    out[16] = 0;
}

/* The global (client, id) -> (seq, result) record: a second seq is a double execution. */
static void check_request_once(struct sim *s, uint32_t idx, const struct smr_executed *e)
{
    struct sim_check *c = &s->check;
    char who[17];
    hex8(who, e->client);
    if (!req_submitted(s, e->client, e->request_id)) {
        sim_fail(s, SIM_EXIT_INVARIANT,
                 "integrity: replica %u executed client %s id %llu at seq %llu, never submitted",
                 idx, who, (unsigned long long)e->request_id, (unsigned long long)e->seq);
        return;
    }
    struct sim_req_rec *q = req_find(s, e->client, e->request_id);
    if (q == NULL) {
        if (c->req_count == c->req_capacity) {
            c->req_capacity = c->req_capacity == 0 ? 256 : 2 * c->req_capacity;
            c->reqs = realloc(c->reqs, c->req_capacity * sizeof(*c->reqs));
            TRONE_ASSERT(c->reqs != NULL);
        }
        q = &c->reqs[c->req_count++];
        memcpy(q->client, e->client, TRONE_KEY_LEN);
        q->request_id = e->request_id;
        q->seq = e->seq;
        memcpy(q->result_digest, e->result_digest, TRONE_HASH_LEN);
        return;
    }
    if (q->seq != e->seq) {
        sim_fail(s, SIM_EXIT_INVARIANT,
                 "double execution: client %s id %llu executed at seq %llu and by replica %u "
                 "at seq %llu", who, (unsigned long long)e->request_id,
                 (unsigned long long)q->seq, idx, (unsigned long long)e->seq);
    }
}

static void check_record(struct sim *s, uint32_t idx, const struct smr_executed *e,
                         uint32_t pos)
{
    struct sim_seq_rec *sr = seq_rec(s, e->seq);
    if (sr == NULL) {
        return;
    }
    if (pos < sr->count) {
        const struct sim_exec_rec *x = &sr->recs[pos];
        if (memcmp(x->client, e->client, TRONE_KEY_LEN) != 0 || x->request_id != e->request_id
            || memcmp(x->result_digest, e->result_digest, TRONE_HASH_LEN) != 0) {
            char mine[17];
            char theirs[17];
            hex8(mine, e->client);
            hex8(theirs, x->client);
            sim_fail(s, SIM_EXIT_INVARIANT,
                     "agreement: seq %llu entry %u: replica %u executed client %s id %llu, "
                     "replica %u executed client %s id %llu%s", (unsigned long long)e->seq, pos,
                     idx, mine, (unsigned long long)e->request_id, sr->first_replica, theirs,
                     (unsigned long long)x->request_id,
                     memcmp(x->result_digest, e->result_digest, TRONE_HASH_LEN) != 0
                         ? " (results differ)" : "");
        }
        return;
    }
    if (sr->closed) {
        sim_fail(s, SIM_EXIT_INVARIANT,
                 "agreement: replica %u executed %u+ requests at seq %llu, replica %u only %u",
                 idx, pos + 1, (unsigned long long)e->seq, sr->first_replica, sr->count);
        return;
    }
    TRONE_ASSERT(pos == sr->count);
    if (sr->count == sr->capacity) {
        sr->capacity = sr->capacity == 0 ? 4 : 2 * sr->capacity;
        sr->recs = realloc(sr->recs, sr->capacity * sizeof(*sr->recs));
        TRONE_ASSERT(sr->recs != NULL);
    }
    struct sim_exec_rec *x = &sr->recs[sr->count++];
    memcpy(x->client, e->client, TRONE_KEY_LEN);
    x->request_id = e->request_id;
    memcpy(x->result_digest, e->result_digest, TRONE_HASH_LEN);
    if (!sr->seen) {
        sr->seen = true;
        sr->first_replica = idx;
    }
}

/* A replica finished executing seq with count records: every replica must agree on count. */
static void seq_close(struct sim *s, uint32_t idx, uint64_t seq, uint32_t count)
{
    struct sim_seq_rec *sr = seq_rec(s, seq);
    if (sr == NULL) {
        return;
    }
    if (sr->closed && sr->count != count) {
        sim_fail(s, SIM_EXIT_INVARIANT,
                 "agreement: replica %u executed %u requests at seq %llu, replica %u %u", idx,
                 count, (unsigned long long)seq, sr->first_replica, sr->count);
        return;
    }
    sr->closed = true;
}

/* Assumes a batch is reported in one output (one seq's records are contiguous). */
void sim_check_executed(struct sim *s, uint32_t idx, const struct smr_output *out)
{
    struct sim_replica *r = &s->replicas[idx];
    uint32_t pos = 0;
    for (size_t i = 0; i < out->executed_count && s->failure == 0; i++) {
        const struct smr_executed *e = &out->executed[i];
        s->check.checks++;
        if (i == 0 || e->seq != out->executed[i - 1].seq) {
            if (i > 0) {
                seq_close(s, idx, out->executed[i - 1].seq, pos);
            }
            if (e->seq <= r->last_exec_seq) {
                sim_fail(s, SIM_EXIT_INVARIANT,
                         "replica %u executed seq %llu after seq %llu (executed twice or "
                         "backwards)", idx, (unsigned long long)e->seq,
                         (unsigned long long)r->last_exec_seq);
                return;
            }
            r->last_exec_seq = e->seq;
            pos = 0;
        }
        check_record(s, idx, e, pos);
        check_request_once(s, idx, e);
        pos++;
        r->exec_count++;
    }
    if (out->executed_count > 0 && s->failure == 0) {
        seq_close(s, idx, out->executed[out->executed_count - 1].seq, pos);
    }
}

void sim_check_replica_restarted(struct sim *s, uint32_t idx)
{
    s->replicas[idx].last_exec_seq = 0;
}

void sim_check_table(struct sim *s, uint32_t idx)
{
    struct sim_replica *r = &s->replicas[idx];
    if (s->failure != 0 || !r->up) {
        return;
    }
    uint64_t seq = smr_executed_seq(r->core);
    if (seq > r->last_exec_seq) {
        /* State transfer jumped ahead: records below seq will never come from this core. */
        r->last_exec_seq = seq;
    }
    struct sim_seq_rec *sr = seq_rec(s, seq);
    if (sr == NULL) {
        return;
    }
    uint8_t digest[TRONE_HASH_LEN];
    sim_table_digest(s, idx, digest);
    if (!sr->has_digest) {
        sr->has_digest = true;
        memcpy(sr->table_digest, digest, TRONE_HASH_LEN);
        return;
    }
    if (memcmp(sr->table_digest, digest, TRONE_HASH_LEN) != 0) {
        char a[17];
        char b[17];
        hex8(a, sr->table_digest);
        hex8(b, digest);
        sim_fail(s, SIM_EXIT_INVARIANT,
                 "table: replica %u at executed seq %llu has table digest %s, expected %s", idx,
                 (unsigned long long)seq, b, a);
    }
}
