/* smr_msg.c: encoding and strict decoding of the fixed-shape protocol messages.
 * VIEW_CHANGE, NEW_VIEW and STATE, which nest proofs, live in smr_proof_msg.c. */
#include "smr/smr_msg.h"

#include <sodium.h>
#include <string.h>

int smr_msg_type(const uint8_t *data, size_t size)
{
    if (size == 0 || data[0] == 0 || data[0] > SMR_MSG_TYPE_MAX) {
        return 0;
    }
    return data[0];
}

static void request_write(struct buf *out, const struct smr_request *m)
{
    buf_put_bytes(out, m->client, TRONE_KEY_LEN);
    buf_put_u64(out, m->request_id);
    buf_put_blob(out, m->op, m->op_size);
    buf_put_bytes(out, m->sig, TRONE_SIG_LEN);
}

void smr_msg_read_request(struct buf_reader *r, struct smr_request *m)
{
    size_t op_size = 0;
    buf_get_bytes(r, m->client, TRONE_KEY_LEN);
    m->request_id = buf_get_u64(r);
    m->op = buf_get_blob(r, TRONE_OP_MAX, &op_size);
    m->op_size = (uint32_t)op_size;
    buf_get_bytes(r, m->sig, TRONE_SIG_LEN);
}

void smr_msg_encode_request(struct buf *out, const struct smr_request *m)
{
    buf_put_u8(out, SMR_MSG_REQUEST);
    request_write(out, m);
}

/* Opens a reader on a message after checking its type byte. */
static void reader_open(struct buf_reader *r, const uint8_t *data, size_t size, uint8_t type)
{
    buf_reader_init(r, data, size);
    if (buf_get_u8(r) != type) {
        r->error = TRONE_EBADMSG;
    }
}

int smr_msg_decode_request(const uint8_t *data, size_t size, struct smr_request *m)
{
    struct buf_reader r;
    reader_open(&r, data, size, SMR_MSG_REQUEST);
    smr_msg_read_request(&r, m);
    return buf_reader_finish(&r);
}

void smr_msg_encode_reply(struct buf *out, const struct smr_reply *m)
{
    buf_put_u8(out, SMR_MSG_REPLY);
    buf_put_u32(out, m->replica);
    buf_put_u64(out, m->view);
    buf_put_u64(out, m->request_id);
    buf_put_u32(out, (uint32_t)m->status);
    buf_put_blob(out, m->result, m->result_size);
}

int smr_msg_decode_reply(const uint8_t *data, size_t size, struct smr_reply *m)
{
    struct buf_reader r;
    size_t result_size = 0;
    reader_open(&r, data, size, SMR_MSG_REPLY);
    m->replica = buf_get_u32(&r);
    m->view = buf_get_u64(&r);
    m->request_id = buf_get_u64(&r);
    m->status = (int32_t)buf_get_u32(&r);
    m->result = buf_get_blob(&r, TRONE_RESULT_MAX, &result_size);
    m->result_size = (uint32_t)result_size;
    return buf_reader_finish(&r);
}

void smr_msg_encode_pre_prepare(struct buf *out, const struct smr_pre_prepare *m)
{
    buf_put_u8(out, SMR_MSG_PRE_PREPARE);
    buf_put_u64(out, m->view);
    buf_put_u64(out, m->seq);
    buf_put_bytes(out, m->digest, TRONE_HASH_LEN);
    buf_put_blob(out, m->batch, m->batch_size);
    buf_put_bytes(out, m->sig, TRONE_SIG_LEN);
}

int smr_msg_decode_pre_prepare(const uint8_t *data, size_t size, struct smr_pre_prepare *m)
{
    struct buf_reader r;
    size_t batch_size = 0;
    reader_open(&r, data, size, SMR_MSG_PRE_PREPARE);
    m->view = buf_get_u64(&r);
    m->seq = buf_get_u64(&r);
    buf_get_bytes(&r, m->digest, TRONE_HASH_LEN);
    m->batch = buf_get_blob(&r, TRONE_MESSAGE_MAX, &batch_size);
    m->batch_size = (uint32_t)batch_size;
    buf_get_bytes(&r, m->sig, TRONE_SIG_LEN);
    return buf_reader_finish(&r);
}

void smr_msg_encode_vote(struct buf *out, enum smr_msg_type type, const struct smr_vote *m)
{
    buf_put_u8(out, (uint8_t)type);
    buf_put_u64(out, m->view);
    buf_put_u64(out, m->seq);
    buf_put_bytes(out, m->digest, TRONE_HASH_LEN);
    buf_put_u32(out, m->replica);
    buf_put_bytes(out, m->sig, TRONE_SIG_LEN);
}

int smr_msg_decode_vote(const uint8_t *data, size_t size, struct smr_vote *m)
{
    struct buf_reader r;
    int type = smr_msg_type(data, size);
    if (type != SMR_MSG_PREPARE && type != SMR_MSG_COMMIT) {
        return TRONE_EBADMSG;
    }
    reader_open(&r, data, size, (uint8_t)type);
    m->view = buf_get_u64(&r);
    m->seq = buf_get_u64(&r);
    buf_get_bytes(&r, m->digest, TRONE_HASH_LEN);
    m->replica = buf_get_u32(&r);
    buf_get_bytes(&r, m->sig, TRONE_SIG_LEN);
    return buf_reader_finish(&r);
}

void smr_msg_encode_checkpoint(struct buf *out, const struct smr_checkpoint *m)
{
    buf_put_u8(out, SMR_MSG_CHECKPOINT);
    buf_put_u64(out, m->seq);
    buf_put_bytes(out, m->digest, TRONE_HASH_LEN);
    buf_put_u32(out, m->replica);
    buf_put_bytes(out, m->sig, TRONE_SIG_LEN);
}

int smr_msg_decode_checkpoint(const uint8_t *data, size_t size, struct smr_checkpoint *m)
{
    struct buf_reader r;
    reader_open(&r, data, size, SMR_MSG_CHECKPOINT);
    m->seq = buf_get_u64(&r);
    buf_get_bytes(&r, m->digest, TRONE_HASH_LEN);
    m->replica = buf_get_u32(&r);
    buf_get_bytes(&r, m->sig, TRONE_SIG_LEN);
    return buf_reader_finish(&r);
}

void smr_msg_encode_status(struct buf *out, const struct smr_status *m)
{
    buf_put_u8(out, SMR_MSG_STATUS);
    buf_put_u32(out, m->replica);
    buf_put_u64(out, m->view);
    buf_put_u8(out, m->view_changing);
    buf_put_u64(out, m->executed);
    buf_put_u64(out, m->stable);
}

int smr_msg_decode_status(const uint8_t *data, size_t size, struct smr_status *m)
{
    struct buf_reader r;
    reader_open(&r, data, size, SMR_MSG_STATUS);
    m->replica = buf_get_u32(&r);
    m->view = buf_get_u64(&r);
    m->view_changing = buf_get_u8(&r);
    m->executed = buf_get_u64(&r);
    m->stable = buf_get_u64(&r);
    if (m->view_changing > 1) {
        return TRONE_EBADMSG;
    }
    return buf_reader_finish(&r);
}

void smr_msg_encode_decided(struct buf *out, const struct smr_decided *m)
{
    buf_put_u8(out, SMR_MSG_DECIDED);
    buf_put_u32(out, m->replica);
    buf_put_u64(out, m->seq);
    buf_put_blob(out, m->batch, m->batch_size);
}

int smr_msg_decode_decided(const uint8_t *data, size_t size, struct smr_decided *m)
{
    struct buf_reader r;
    size_t batch_size = 0;
    reader_open(&r, data, size, SMR_MSG_DECIDED);
    m->replica = buf_get_u32(&r);
    m->seq = buf_get_u64(&r);
    m->batch = buf_get_blob(&r, TRONE_MESSAGE_MAX, &batch_size);
    m->batch_size = (uint32_t)batch_size;
    return buf_reader_finish(&r);
}

void smr_msg_encode_state_request(struct buf *out, const struct smr_state_request *m)
{
    buf_put_u8(out, SMR_MSG_STATE_REQUEST);
    buf_put_u32(out, m->replica);
    buf_put_u64(out, m->seq);
}

int smr_msg_decode_state_request(const uint8_t *data, size_t size, struct smr_state_request *m)
{
    struct buf_reader r;
    reader_open(&r, data, size, SMR_MSG_STATE_REQUEST);
    m->replica = buf_get_u32(&r);
    m->seq = buf_get_u64(&r);
    return buf_reader_finish(&r);
}

int smr_batch_count(const uint8_t *batch, size_t size)
{
    struct buf_reader r;
    buf_reader_init(&r, batch, size);
    uint32_t count = buf_get_u32(&r);
    if (r.error != 0 || count > TRONE_BATCH_MAX) {
        return TRONE_EBADMSG;
    }
    for (uint32_t i = 0; i < count; i++) {
        struct smr_request request;
        smr_msg_read_request(&r, &request);
    }
    if (buf_reader_finish(&r) != 0) {
        return TRONE_EBADMSG;
    }
    return (int)count;
}

void smr_batch_digest(const uint8_t *batch, size_t size, uint8_t digest[TRONE_HASH_LEN])
{
    crypto_generichash(digest, TRONE_HASH_LEN, batch, size, NULL, 0);
}
