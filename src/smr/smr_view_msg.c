/* smr_view_msg.c: encoding, strict decoding and validation of VIEW_CHANGE and NEW_VIEW.
 * Validation verifies every signature a message carries, so a Byzantine replica cannot
 * make a correct one adopt an unproven checkpoint or certificate. No I/O. */
#include "smr/smr_view_msg.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "smr/smr_sig.h"

static void sigs_write(struct buf *out, uint64_t mask, const uint8_t sigs[][TRONE_SIG_LEN])
{
    buf_put_u64(out, mask);
    for (uint32_t r = 0; r < SMR_R; r++) {
        if ((mask >> r & 1) != 0) {
            buf_put_bytes(out, sigs[r], TRONE_SIG_LEN);
        }
    }
}

static uint64_t sigs_read(struct buf_reader *r, uint8_t sigs[][TRONE_SIG_LEN])
{
    uint64_t mask = buf_get_u64(r);
    if (mask >> SMR_R != 0) {
        r->error = TRONE_EBADMSG;
        return 0;
    }
    for (uint32_t i = 0; i < SMR_R; i++) {
        if ((mask >> i & 1) != 0) {
            buf_get_bytes(r, sigs[i], TRONE_SIG_LEN);
        }
    }
    return mask;
}

static void cert_write(struct buf *out, uint64_t seq, const struct smr_cert *cert)
{
    buf_put_u64(out, seq);
    buf_put_u64(out, cert->view);
    buf_put_bytes(out, cert->digest, TRONE_HASH_LEN);
    buf_put_blob(out, cert->batch.data, cert->batch.used);
    buf_put_bytes(out, cert->pp_sig, TRONE_SIG_LEN);
    sigs_write(out, cert->mask, (const uint8_t(*)[TRONE_SIG_LEN])cert->sigs);
}

void smr_vc_encode_own(struct smr *s, uint64_t view, struct buf *out)
{
    size_t start = out->used;
    buf_put_u8(out, SMR_MSG_VIEW_CHANGE);
    buf_put_u64(out, view);
    buf_put_u32(out, s->config.self);
    buf_put_u64(out, s->stable.seq);
    buf_put_bytes(out, s->stable.digest, TRONE_HASH_LEN);
    sigs_write(out, s->stable.mask, (const uint8_t(*)[TRONE_SIG_LEN])s->stable.sigs);
    size_t count_at = out->used;
    buf_put_u32(out, 0);
    uint32_t count = 0;
    for (uint64_t seq = s->stable.seq + 1; smr__in_window(s, seq); seq++) {
        const struct smr_slot *slot = &s->slots[seq % s->config.window];
        if (slot->seq == seq && slot->cert.valid) {
            cert_write(out, seq, &slot->cert);
            count++;
        }
    }
    if (out->error != 0) {
        return;
    }
    buf_store_u32(out->data + count_at, count);
    uint8_t sig[TRONE_SIG_LEN];
    smr_sign_body("trone-view-change", out->data + start, out->used - start,
                  s->config.secret_key, sig);
    buf_put_bytes(out, sig, TRONE_SIG_LEN);
}

static void cert_read(struct buf_reader *r, struct smr_vc_cert *c)
{
    size_t batch_size = 0;
    c->seq = buf_get_u64(r);
    c->view = buf_get_u64(r);
    buf_get_bytes(r, c->digest, TRONE_HASH_LEN);
    c->batch = buf_get_blob(r, TRONE_MESSAGE_MAX, &batch_size);
    c->batch_size = (uint32_t)batch_size;
    buf_get_bytes(r, c->pp_sig, TRONE_SIG_LEN);
    c->mask = sigs_read(r, c->sigs);
}

int smr_vc_decode(const uint8_t *data, size_t size, uint32_t cert_max, struct smr_vc *vc)
{
    struct buf_reader r;
    memset(vc, 0, sizeof(*vc));
    buf_reader_init(&r, data, size);
    if (buf_get_u8(&r) != SMR_MSG_VIEW_CHANGE) {
        return TRONE_EBADMSG;
    }
    vc->new_view = buf_get_u64(&r);
    vc->replica = buf_get_u32(&r);
    vc->stable_seq = buf_get_u64(&r);
    buf_get_bytes(&r, vc->stable_digest, TRONE_HASH_LEN);
    vc->stable_mask = sigs_read(&r, vc->stable_sigs);
    vc->cert_count = buf_get_u32(&r);
    if (r.error != 0 || vc->cert_count > cert_max) {
        return TRONE_EBADMSG;
    }
    vc->certs = calloc(vc->cert_count == 0 ? 1 : vc->cert_count, sizeof(*vc->certs));
    if (vc->certs == NULL) {
        return TRONE_ENOMEM;
    }
    for (uint32_t i = 0; i < vc->cert_count && r.error == 0; i++) {
        cert_read(&r, &vc->certs[i]);
    }
    vc->body = data;
    vc->body_size = r.used;
    buf_get_bytes(&r, vc->sig, TRONE_SIG_LEN);
    if (buf_reader_finish(&r) != 0) {
        smr_vc_free(vc);
        return TRONE_EBADMSG;
    }
    return 0;
}

void smr_vc_free(struct smr_vc *vc)
{
    free(vc->certs);
    vc->certs = NULL;
    vc->cert_count = 0;
}

/* A prepared certificate: valid batch and digest, the leader's pre-prepare signature, and
 * Q-1 PREPARE signatures from other replicas, all for the certificate's view. */
static bool cert_valid(const struct smr *s, const struct smr_vc *vc, const struct smr_vc_cert *c)
{
    uint32_t n = s->config.replica_count;
    uint32_t leader = (uint32_t)(c->view % n);
    uint8_t digest[TRONE_HASH_LEN];
    if (c->view >= vc->new_view || c->seq <= vc->stable_seq ||
        c->seq > vc->stable_seq + s->config.window || c->mask >> n != 0 ||
        (c->mask >> leader & 1) != 0 || smr__popcount(c->mask) < s->quorum - 1) {
        return false;
    }
    smr_batch_digest(c->batch, c->batch_size, digest);
    if (memcmp(digest, c->digest, TRONE_HASH_LEN) != 0 ||
        smr_batch_count(c->batch, c->batch_size) < 0) {
        return false;
    }
    struct smr_pre_prepare pp = {.view = c->view, .seq = c->seq};
    memcpy(pp.digest, c->digest, TRONE_HASH_LEN);
    memcpy(pp.sig, c->pp_sig, TRONE_SIG_LEN);
    if (!smr_verify_pre_prepare(&pp, s->config.replica_keys[leader])) {
        return false;
    }
    for (uint32_t r = 0; r < n; r++) {
        if ((c->mask >> r & 1) == 0) {
            continue;
        }
        struct smr_vote vote = {.view = c->view, .seq = c->seq, .replica = r};
        memcpy(vote.digest, c->digest, TRONE_HASH_LEN);
        memcpy(vote.sig, c->sigs[r], TRONE_SIG_LEN);
        if (!smr_verify_prepare(&vote, s->config.replica_keys[r])) {
            return false;
        }
    }
    return true;
}

int smr_vc_validate(const struct smr *s, const struct smr_vc *vc)
{
    if (vc->replica >= s->config.replica_count) {
        return TRONE_EPROTO;
    }
    if (!smr_verify_body("trone-view-change", vc->body, vc->body_size, vc->sig,
                         s->config.replica_keys[vc->replica])) {
        return TRONE_EAUTH;
    }
    if (!smr__stable_proof_valid(s, vc->stable_seq, vc->stable_digest, vc->stable_mask,
                                 (const uint8_t(*)[TRONE_SIG_LEN])vc->stable_sigs)) {
        return TRONE_EAUTH;
    }
    for (uint32_t i = 0; i < vc->cert_count; i++) {
        if (i > 0 && vc->certs[i].seq <= vc->certs[i - 1].seq) {
            return TRONE_EPROTO;
        }
        if (!cert_valid(s, vc, &vc->certs[i])) {
            return TRONE_EAUTH;
        }
    }
    return 0;
}

int smr_nv_decode(const uint8_t *data, size_t size, struct smr_nv *nv)
{
    struct buf_reader r;
    memset(nv, 0, sizeof(*nv));
    buf_reader_init(&r, data, size);
    if (buf_get_u8(&r) != SMR_MSG_NEW_VIEW) {
        return TRONE_EBADMSG;
    }
    nv->view = buf_get_u64(&r);
    nv->vc_count = buf_get_u32(&r);
    if (r.error != 0 || nv->vc_count == 0 || nv->vc_count > SMR_R) {
        return TRONE_EBADMSG;
    }
    for (uint32_t i = 0; i < nv->vc_count; i++) {
        nv->vc_data[i] = buf_get_blob(&r, TRONE_MESSAGE_MAX, &nv->vc_size[i]);
    }
    nv->entry_count = buf_get_u32(&r);
    if (r.error != 0 || nv->entry_count > TRONE_MESSAGE_MAX / TRONE_SIG_LEN) {
        return TRONE_EBADMSG;
    }
    nv->entry_sigs = buf_get_ref(&r, (size_t)nv->entry_count * TRONE_SIG_LEN);
    nv->body = data;
    nv->body_size = r.used;
    buf_get_bytes(&r, nv->sig, TRONE_SIG_LEN);
    return buf_reader_finish(&r);
}
