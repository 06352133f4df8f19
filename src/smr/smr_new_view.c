/* smr_new_view.c: the NEW_VIEW (PBFT section 4.4). The new leader gathers Q valid
 * VIEW_CHANGEs; from them every replica computes the same decision: the highest stable
 * checkpoint min_s, and for each seq in (min_s, max_s] the batch of the highest-view
 * prepared certificate, or the empty batch. Backups recompute it from the carried
 * VIEW_CHANGEs instead of trusting the leader. No I/O. */
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "core/assert.h"
#include "smr/smr_sig.h"
#include "smr/smr_view_msg.h"

static const uint8_t null_batch[4] = {0, 0, 0, 0};

/* The decision computed from a set of view changes. Batches point into the messages. */
struct nv_decision {
    uint64_t min_s;
    uint32_t min_s_source; /* index of a view change holding the min_s proof */
    uint64_t max_s;
    uint32_t count; /* max_s - min_s */
    const struct smr_vc_cert **chosen; /* per seq, or NULL for the null batch */
};

static int decision_compute(const struct smr *s, const struct smr_vc *vcs, uint32_t vc_count,
                            struct nv_decision *d)
{
    memset(d, 0, sizeof(*d));
    for (uint32_t i = 0; i < vc_count; i++) {
        if (vcs[i].stable_seq > d->min_s || i == 0) {
            d->min_s = vcs[i].stable_seq;
            d->min_s_source = i;
        }
    }
    d->max_s = d->min_s;
    for (uint32_t i = 0; i < vc_count; i++) {
        for (uint32_t k = 0; k < vcs[i].cert_count; k++) {
            if (vcs[i].certs[k].seq > d->max_s) {
                d->max_s = vcs[i].certs[k].seq;
            }
        }
    }
    d->count = (uint32_t)(d->max_s - d->min_s);
    if (d->count > s->config.window) {
        return TRONE_EPROTO;
    }
    d->chosen = calloc(d->count == 0 ? 1 : d->count, sizeof(*d->chosen));
    if (d->chosen == NULL) {
        return TRONE_ENOMEM;
    }
    for (uint32_t i = 0; i < vc_count; i++) {
        for (uint32_t k = 0; k < vcs[i].cert_count; k++) {
            const struct smr_vc_cert *c = &vcs[i].certs[k];
            if (c->seq <= d->min_s) {
                continue;
            }
            const struct smr_vc_cert **best = &d->chosen[c->seq - d->min_s - 1];
            /* Highest view wins; equal views cannot disagree among correct quorums, and the
             * digest order keeps even that case deterministic. */
            if (*best == NULL || c->view > (*best)->view ||
                (c->view == (*best)->view && memcmp(c->digest, (*best)->digest,
                                                    TRONE_HASH_LEN) < 0)) {
                *best = c;
            }
        }
    }
    return 0;
}

static void entry_pre_prepare(const struct nv_decision *d, uint64_t view, uint32_t i,
                              struct smr_pre_prepare *pp)
{
    const struct smr_vc_cert *c = d->chosen[i];
    memset(pp, 0, sizeof(*pp));
    pp->view = view;
    pp->seq = d->min_s + 1 + i;
    pp->batch = c != NULL ? c->batch : null_batch;
    pp->batch_size = c != NULL ? c->batch_size : (uint32_t)sizeof(null_batch);
    smr_batch_digest(pp->batch, pp->batch_size, pp->digest);
}

/* Enters the new view: adopt the checkpoint, re-propose the decided entries, restart timers. */
static void new_view_install(struct smr *s, uint64_t view, const struct smr_vc *vcs,
                             const struct nv_decision *d, const uint8_t *entry_sigs,
                             const uint8_t *nv_data, size_t nv_size)
{
    const struct smr_vc *source = &vcs[d->min_s_source];
    s->view = view;
    s->view_changing = false;
    s->view_dirty = true;
    s->view_started_ms = s->now_ms;
    s->view_timeout_ms = s->config.request_timeout_ms;
    buf_reset(&s->new_view);
    buf_put_bytes(&s->new_view, nv_data, nv_size);
    if (d->min_s > s->stable.seq) {
        smr__stable_advance(s, d->min_s, source->stable_digest, source->stable_mask,
                            (const uint8_t(*)[TRONE_SIG_LEN])source->stable_sigs, NULL, 0);
        if (s->executed < d->min_s) {
            smr__want_state(s, source->replica, d->min_s);
        }
    }
    bool leader = smr__leader_of(s, view) == s->config.self;
    for (uint32_t i = 0; i < d->count; i++) {
        struct smr_pre_prepare pp;
        entry_pre_prepare(d, view, i, &pp);
        memcpy(pp.sig, entry_sigs + (size_t)i * TRONE_SIG_LEN, TRONE_SIG_LEN);
        if (smr__in_window(s, pp.seq)) {
            smr__accept_pre_prepare(s, &pp, !leader);
        }
    }
    s->next_seq = d->max_s + 1;
    smr__pending_restart_timers(s);
    smr__trace(s, SMR_TRACE_NEW_VIEW, 0, smr__leader_of(s, view), view, d->max_s);
}

static void vcs_free(struct smr_vc *vcs, uint32_t count)
{
    for (uint32_t i = 0; i < count; i++) {
        smr_vc_free(&vcs[i]);
    }
}

/* The new leader, once Q replicas (itself included) asked for its view. */
void smr__new_view_try(struct smr *s)
{
    if (!s->view_changing || smr__leader_of(s, s->view) != s->config.self) {
        return;
    }
    struct smr_vc vcs[SMR_R];
    uint32_t count = 0;
    for (uint32_t r = 0; r < s->config.replica_count && count < s->quorum; r++) {
        if (s->vc_view[r] == s->view &&
            smr_vc_decode(s->vc_bytes[r].data, s->vc_bytes[r].used, s->config.window,
                          &vcs[count]) == 0) {
            count++;
        }
    }
    struct nv_decision d;
    if (count < s->quorum || decision_compute(s, vcs, count, &d) != 0) {
        vcs_free(vcs, count);
        return;
    }
    struct buf *out = &s->scratch;
    buf_reset(out);
    buf_put_u8(out, SMR_MSG_NEW_VIEW);
    buf_put_u64(out, s->view);
    buf_put_u32(out, count);
    for (uint32_t i = 0; i < count; i++) {
        buf_put_blob(out, vcs[i].body, vcs[i].body_size + TRONE_SIG_LEN);
    }
    buf_put_u32(out, d.count);
    uint8_t *sigs = calloc(d.count == 0 ? 1 : d.count, TRONE_SIG_LEN);
    for (uint32_t i = 0; sigs != NULL && i < d.count; i++) {
        struct smr_pre_prepare pp;
        entry_pre_prepare(&d, s->view, i, &pp);
        smr_sign_pre_prepare(&pp, s->config.secret_key);
        memcpy(sigs + (size_t)i * TRONE_SIG_LEN, pp.sig, TRONE_SIG_LEN);
        buf_put_bytes(out, pp.sig, TRONE_SIG_LEN);
    }
    uint8_t sig[TRONE_SIG_LEN];
    smr_sign_body("trone-new-view", out->data, out->used, s->config.secret_key, sig);
    buf_put_bytes(out, sig, TRONE_SIG_LEN);
    if (sigs != NULL && out->error == 0) {
        buf_put_bytes(smr__send_begin(s), out->data, out->used);
        smr__send_done(s, SMR_DEST_ALL, 0, NULL);
        /* Install from a private copy: installing executes, which reuses scratch. */
        struct buf copy = {0};
        buf_put_bytes(&copy, out->data, out->used);
        if (copy.error == 0) {
            new_view_install(s, s->view, vcs, &d, sigs, copy.data, copy.used);
        }
        buf_close(&copy);
    }
    free(sigs);
    free(d.chosen);
    vcs_free(vcs, count);
}

/* Decodes and validates the view changes a NEW_VIEW carries: distinct replicas, all for
 * its view, each fully valid. Returns the count decoded into vcs, or a negative error. */
static int nv_view_changes(struct smr *s, const struct smr_nv *nv, struct smr_vc *vcs)
{
    uint64_t seen = 0;
    uint32_t count = 0;
    int rc = 0;
    for (uint32_t i = 0; i < nv->vc_count && rc == 0; i++) {
        rc = smr_vc_decode(nv->vc_data[i], nv->vc_size[i], s->config.window, &vcs[count]);
        if (rc != 0) {
            break;
        }
        count++;
        const struct smr_vc *vc = &vcs[count - 1];
        if (vc->new_view != nv->view || vc->replica >= SMR_R || (seen >> vc->replica & 1)) {
            rc = TRONE_EPROTO;
        } else {
            seen |= 1ull << vc->replica;
            rc = smr_vc_validate(s, vc);
        }
    }
    if (rc == 0 && count < s->quorum) {
        rc = TRONE_EPROTO;
    }
    if (rc != 0) {
        vcs_free(vcs, count);
        return rc;
    }
    return (int)count;
}

static bool nv_entries_valid(const struct smr *s, const struct smr_nv *nv,
                             const struct nv_decision *d, uint32_t leader)
{
    if (nv->entry_count != d->count) {
        return false;
    }
    for (uint32_t i = 0; i < d->count; i++) {
        struct smr_pre_prepare pp;
        entry_pre_prepare(d, nv->view, i, &pp);
        memcpy(pp.sig, nv->entry_sigs + (size_t)i * TRONE_SIG_LEN, TRONE_SIG_LEN);
        if (!smr_verify_pre_prepare(&pp, s->config.replica_keys[leader])) {
            return false;
        }
    }
    return true;
}

void smr__on_new_view(struct smr *s, uint32_t from, const uint8_t *data, size_t size)
{
    struct smr_nv nv;
    if (smr_nv_decode(data, size, &nv) != 0) {
        smr__trace(s, SMR_TRACE_REJECTED, TRONE_EBADMSG, from, s->view, 0);
        return;
    }
    uint32_t leader = smr__leader_of(s, nv.view);
    if (nv.view < s->view || (nv.view == s->view && !s->view_changing)) {
        return; /* old news */
    }
    /* Anyone may forward a NEW_VIEW: its leader's signature is what counts. */
    if (!smr_verify_body("trone-new-view", nv.body, nv.body_size, nv.sig,
                         s->config.replica_keys[leader])) {
        smr__trace(s, SMR_TRACE_REJECTED, TRONE_EAUTH, from, nv.view, 0);
        return;
    }
    struct smr_vc vcs[SMR_R];
    int count = nv_view_changes(s, &nv, vcs);
    if (count < 0) {
        smr__trace(s, SMR_TRACE_REJECTED, count, from, nv.view, 0);
        return;
    }
    struct nv_decision d;
    int rc = decision_compute(s, vcs, (uint32_t)count, &d);
    if (rc == 0 && !nv_entries_valid(s, &nv, &d, leader)) {
        rc = TRONE_EAUTH;
    }
    if (rc == 0) {
        new_view_install(s, nv.view, vcs, &d, nv.entry_sigs, data, size);
    } else {
        smr__trace(s, SMR_TRACE_REJECTED, rc, from, nv.view, 0);
    }
    free(d.chosen);
    vcs_free(vcs, (uint32_t)count);
}
