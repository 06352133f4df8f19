/* smr_view_msg.h: VIEW_CHANGE and NEW_VIEW, the messages that carry transferable proof
 * (PBFT section 4.4): a checkpoint proof and prepared certificates. Codec and validation;
 * no I/O. */
#ifndef TRONE_SMR_VIEW_MSG_H
#define TRONE_SMR_VIEW_MSG_H

#include "smr/smr_internal.h"

/* A prepared certificate as carried in a VIEW_CHANGE. */
struct smr_vc_cert {
    uint64_t seq;
    uint64_t view;
    uint8_t digest[TRONE_HASH_LEN];
    const uint8_t *batch;
    uint32_t batch_size;
    uint8_t pp_sig[TRONE_SIG_LEN];
    uint64_t mask;
    uint8_t sigs[SMR_R][TRONE_SIG_LEN];
};

struct smr_vc {
    uint64_t new_view;
    uint32_t replica;
    uint64_t stable_seq;
    uint8_t stable_digest[TRONE_HASH_LEN];
    uint64_t stable_mask;
    uint8_t stable_sigs[SMR_R][TRONE_SIG_LEN];
    uint32_t cert_count;
    struct smr_vc_cert *certs; /* owned: free with smr_vc_free */
    uint8_t sig[TRONE_SIG_LEN];
    const uint8_t *body;       /* the signed bytes (inside the decoded input) */
    size_t body_size;
};

/* Decodes a VIEW_CHANGE (certificates limited to cert_max). TRONE_EBADMSG or TRONE_ENOMEM. */
TRONE_MUST_CHECK int smr_vc_decode(const uint8_t *data, size_t size, uint32_t cert_max,
                                   struct smr_vc *vc);
void smr_vc_free(struct smr_vc *vc);
/* Checks signatures and proofs of a decoded VIEW_CHANGE against the core's configuration. */
TRONE_MUST_CHECK int smr_vc_validate(const struct smr *s, const struct smr_vc *vc);
/* Encodes this replica's VIEW_CHANGE for view into out (signed). */
void smr_vc_encode_own(struct smr *s, uint64_t view, struct buf *out);

/* NEW_VIEW: view, the VIEW_CHANGE messages, one leader signature per re-proposed seq. */
struct smr_nv {
    uint64_t view;
    uint32_t vc_count;
    const uint8_t *vc_data[SMR_R];
    size_t vc_size[SMR_R];
    uint32_t entry_count;
    const uint8_t *entry_sigs; /* entry_count * TRONE_SIG_LEN bytes */
    uint8_t sig[TRONE_SIG_LEN];
    const uint8_t *body;
    size_t body_size;
};

TRONE_MUST_CHECK int smr_nv_decode(const uint8_t *data, size_t size, struct smr_nv *nv);

#endif
