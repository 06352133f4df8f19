/* sim_check_votes.c: the invariant that persistence exists for (docs/PROTOCOL.md section 11):
 * a correct replica never sends two different digests for one (view, seq) as a proposal or
 * PREPARE, nor as a COMMIT, even when it crashed and restarted in between. The checker keeps
 * every such vote in a table that outlives the replica's restarts, like the network does. */
#include "sim.h"

#include <stdlib.h>
#include <string.h>

#include "core/assert.h"
#include "smr/smr_msg.h"

void sim_check_votes_close(struct sim_check *c)
{
    free(c->votes);
    c->votes = NULL;
    c->vote_count = 0;
    c->vote_capacity = 0;
}

static size_t vote_slot(const struct sim_vote_rec *table, size_t capacity, uint8_t kind,
                        uint32_t replica, uint64_t view, uint64_t seq)
{
    uint64_t h = (seq * 0x9e3779b97f4a7c15ull) ^ (view * 0xc2b2ae3d27d4eb4full) ^
                 ((uint64_t)replica << 8 | kind);
    size_t i = (size_t)(h ^ h >> 29) & (capacity - 1);
    while (table[i].used && (table[i].kind != kind || table[i].replica != replica ||
                             table[i].view != view || table[i].seq != seq)) {
        i = (i + 1) & (capacity - 1);
    }
    return i;
}

static bool votes_grow(struct sim_check *c)
{
    size_t capacity = c->vote_capacity == 0 ? 1024 : c->vote_capacity * 2;
    struct sim_vote_rec *table = calloc(capacity, sizeof(*table));
    if (table == NULL) {
        return false;
    }
    for (size_t i = 0; i < c->vote_capacity; i++) {
        const struct sim_vote_rec *v = &c->votes[i];
        if (v->used) {
            table[vote_slot(table, capacity, v->kind, v->replica, v->view, v->seq)] = *v;
        }
    }
    free(c->votes);
    c->votes = table;
    c->vote_capacity = capacity;
    return true;
}

static void vote_seen(struct sim *s, uint32_t idx, uint8_t kind, uint64_t view, uint64_t seq,
                      const uint8_t digest[TRONE_HASH_LEN])
{
    struct sim_check *c = &s->check;
    if (2 * (c->vote_count + 1) > c->vote_capacity && !votes_grow(c)) {
        sim_fail(s, SIM_EXIT_INVARIANT, "out of memory for the vote table");
        return;
    }
    struct sim_vote_rec *v = &c->votes[vote_slot(c->votes, c->vote_capacity, kind, idx, view, seq)];
    if (!v->used) {
        *v = (struct sim_vote_rec){
            .used = true, .kind = kind, .replica = idx, .view = view, .seq = seq};
        memcpy(v->digest, digest, TRONE_HASH_LEN);
        c->vote_count++;
        return;
    }
    if (memcmp(v->digest, digest, TRONE_HASH_LEN) != 0) {
        sim_fail(s, SIM_EXIT_INVARIANT,
                 "replica %u (restarts %llu) sent a %s for view %llu seq %llu with another "
                 "digest than before",
                 idx, (unsigned long long)s->replicas[idx].restarts,
                 kind == SMR_MSG_COMMIT ? "COMMIT" : "proposal or PREPARE",
                 (unsigned long long)view, (unsigned long long)seq);
    }
}

void sim_check_votes(struct sim *s, uint32_t idx, const struct smr_output *out)
{
    if (!s->persist && s->replicas[idx].restarts > 0) {
        return; /* restarted with empty memory: faulty by the model, free to vote anew */
    }
    for (size_t i = 0; i < out->envelope_count && s->failure == 0; i++) {
        const struct smr_envelope *e = &out->envelopes[i];
        if (e->dest == SMR_DEST_CLIENT || e->size == 0) {
            continue;
        }
        uint8_t type = e->data[0];
        if (type == SMR_MSG_PRE_PREPARE) {
            struct smr_pre_prepare pp;
            if (smr_msg_decode_pre_prepare(e->data, e->size, &pp) == 0) {
                vote_seen(s, idx, SMR_MSG_PREPARE, pp.view, pp.seq, pp.digest);
            }
        } else if (type == SMR_MSG_PREPARE || type == SMR_MSG_COMMIT) {
            struct smr_vote vote;
            if (smr_msg_decode_vote(e->data, e->size, &vote) == 0) {
                vote_seen(s, idx, type, vote.view, vote.seq, vote.digest);
            }
        }
    }
}
