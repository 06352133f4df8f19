/* sim_check_client.c: client integrity (an accepted result is the result a correct replica
 * produced for that request, each request completes once) and the liveness predicates of
 * phase 2 (every request done; every correct replica at the same executed seq and table). */
#include "sim.h"

#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "core/assert.h"

static const struct sim_req_rec *req_lookup(const struct sim *s, const uint8_t *client,
                                            uint64_t id)
{
    for (size_t i = 0; i < s->check.req_count; i++) {
        const struct sim_req_rec *q = &s->check.reqs[i];
        if (q->request_id == id && memcmp(q->client, client, TRONE_KEY_LEN) == 0) {
            return q;
        }
    }
    return NULL;
}

void sim_check_client_done(struct sim *s, uint32_t idx, const struct smr_client_done *d)
{
    struct sim_client *c = &s->clients[idx];
    uint32_t op = SIM_OPS_MAX;
    for (uint32_t k = 0; k < c->op_next; k++) {
        if (c->ids[k] == d->request_id) {
            op = k;
        }
    }
    if (op == SIM_OPS_MAX) {
        sim_fail(s, SIM_EXIT_INVARIANT, "client %u completed id %llu it never submitted", idx,
                 (unsigned long long)d->request_id);
        return;
    }
    if (c->done[op]) {
        sim_fail(s, SIM_EXIT_INVARIANT, "client %u completed id %llu twice", idx,
                 (unsigned long long)d->request_id);
        return;
    }
    c->done[op] = true;
    c->done_count++;
    sim_trace(s, "done client=%u op=%u id=%llu status=%s result_size=%zu", idx, op,
              (unsigned long long)d->request_id,
              d->status == 0 ? "0" : trone_err_name(d->status), d->result_size);
    if (d->status != 0) {
        /* TRONE_ESTALE: a later id of this client executed first, so this one never will.
         * With one request in flight that cannot happen to a correct client. */
        s->stale++;
        if (d->status != TRONE_ESTALE || c->inflight_max == 1) {
            sim_fail(s, SIM_EXIT_INVARIANT, "client %u (one request in flight) got %s for id "
                     "%llu", idx, trone_err_name(d->status), (unsigned long long)d->request_id);
        }
        return;
    }
    const struct sim_req_rec *q = req_lookup(s, c->public_key, d->request_id);
    if (q == NULL) {
        sim_fail(s, SIM_EXIT_INVARIANT,
                 "client integrity: client %u accepted a result for id %llu that no correct "
                 "replica executed", idx, (unsigned long long)d->request_id);
        return;
    }
    uint8_t digest[TRONE_HASH_LEN];
    crypto_generichash(digest, sizeof(digest), d->result, d->result_size, NULL, 0);
    if (memcmp(digest, q->result_digest, TRONE_HASH_LEN) != 0) {
        sim_fail(s, SIM_EXIT_INVARIANT,
                 "client integrity: client %u accepted for id %llu a result that differs from "
                 "the one executed at seq %llu", idx, (unsigned long long)d->request_id,
                 (unsigned long long)q->seq);
    }
}

bool sim_all_clients_done(struct sim *s, void *arg)
{
    (void)arg;
    for (uint32_t i = 0; i < s->p.client_count; i++) {
        const struct sim_client *c = &s->clients[i];
        if (c->op_next < c->op_count || c->done_count < c->op_count) {
            return false;
        }
    }
    return true;
}

bool sim_converged(struct sim *s, void *arg)
{
    if (!sim_all_clients_done(s, arg)) {
        return false;
    }
    int first = -1;
    uint8_t digest0[TRONE_HASH_LEN];
    for (uint32_t i = 0; i < s->p.n; i++) {
        if (!sim_replica_correct(s, i)) {
            continue;
        }
        if (!s->replicas[i].up) {
            return false;
        }
        uint8_t digest[TRONE_HASH_LEN];
        sim_table_digest(s, i, digest);
        if (first < 0) {
            first = (int)i;
            memcpy(digest0, digest, TRONE_HASH_LEN);
            continue;
        }
        if (smr_executed_seq(s->replicas[i].core)
                != smr_executed_seq(s->replicas[first].core)
            || memcmp(digest, digest0, TRONE_HASH_LEN) != 0) {
            return false;
        }
    }
    return true;
}

/* Why phase 2 did not converge, for the liveness failure message. */
void sim_liveness_report(struct sim *s, char *out, size_t size)
{
    size_t used = 0;
    for (uint32_t i = 0; i < s->p.client_count && used < size; i++) {
        const struct sim_client *c = &s->clients[i];
        used += (size_t)snprintf(out + used, size - used, "client%u %u/%u/%u ", i,
                                 c->done_count, c->op_next, c->op_count);
    }
    for (uint32_t i = 0; i < s->p.n && used < size; i++) {
        const struct sim_replica *r = &s->replicas[i];
        if (!r->up) {
            used += (size_t)snprintf(out + used, size - used, "r%u down ", i);
            continue;
        }
        used += (size_t)snprintf(out + used, size - used, "r%u%s v%llu%s exec=%llu stable=%llu ",
                                 i, r->byz != 0 ? "(byz)" : "",
                                 (unsigned long long)smr_view(r->core),
                                 smr_view_changing(r->core) ? "*" : "",
                                 (unsigned long long)smr_executed_seq(r->core),
                                 (unsigned long long)smr_stable_seq(r->core));
    }
}
