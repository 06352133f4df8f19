/* smr_client.c: the client side of the replication protocol: sign, send to every replica,
 * retransmit, and accept a result only when f+1 replicas (one under CFT) returned the same
 * status and result, so no Byzantine replica alone can make a client accept a lie. No I/O. */
#include "smr/smr_client.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "core/assert.h"
#include "smr/smr_msg.h"
#include "smr/smr_sig.h"

#define CLIENT_INFLIGHT_MAX 64u

struct client_request {
    bool used;
    uint64_t id;
    uint64_t sent_ms;
    struct buf message;
    uint64_t reply_mask;
    int32_t status[TRONE_REPLICAS_MAX];
    uint8_t result_hash[TRONE_REPLICAS_MAX][TRONE_HASH_LEN];
    struct buf result[TRONE_REPLICAS_MAX];
};

struct smr_client {
    struct smr_client_config config;
    uint64_t next_id;
    struct client_request requests[CLIENT_INFLIGHT_MAX];
    struct buf out_messages[CLIENT_INFLIGHT_MAX];
    struct buf done_results[SMR_CLIENT_DONE_MAX];
    struct smr_client_output output;
};

struct smr_client *smr_client_create(const struct smr_client_config *config)
{
    if (config->replica_count == 0 || config->replica_count > TRONE_REPLICAS_MAX ||
        config->inflight_max == 0 || config->inflight_max > CLIENT_INFLIGHT_MAX ||
        config->retransmit_ms == 0 || sodium_init() < 0) {
        return NULL;
    }
    struct smr_client *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        return NULL;
    }
    c->config = *config;
    c->next_id = config->first_request_id == 0 ? 1 : config->first_request_id;
    return c;
}

static void request_release(struct client_request *r)
{
    buf_close(&r->message);
    for (uint32_t i = 0; i < TRONE_REPLICAS_MAX; i++) {
        buf_close(&r->result[i]);
    }
    memset(r, 0, sizeof(*r));
}

void smr_client_destroy(struct smr_client *c)
{
    if (c == NULL) {
        return;
    }
    for (uint32_t i = 0; i < CLIENT_INFLIGHT_MAX; i++) {
        request_release(&c->requests[i]);
        buf_close(&c->out_messages[i]);
    }
    for (uint32_t i = 0; i < SMR_CLIENT_DONE_MAX; i++) {
        buf_close(&c->done_results[i]);
    }
    sodium_memzero(c->config.secret_key, sizeof(c->config.secret_key));
    free(c);
}

size_t smr_client_inflight(const struct smr_client *c)
{
    size_t count = 0;
    for (uint32_t i = 0; i < CLIENT_INFLIGHT_MAX; i++) {
        count += c->requests[i].used ? 1 : 0;
    }
    return count;
}

static void output_begin(struct smr_client *c)
{
    memset(&c->output, 0, sizeof(c->output));
    c->output.messages = c->out_messages;
}

static void output_send(struct smr_client *c, const struct buf *message)
{
    if (c->output.message_count >= CLIENT_INFLIGHT_MAX) {
        return; /* retransmitted on a later tick */
    }
    struct buf *out = &c->out_messages[c->output.message_count];
    buf_reset(out);
    buf_put_bytes(out, message->data, message->used);
    if (out->error == 0) {
        c->output.message_count++;
    }
}

static void output_finish(struct smr_client *c, uint64_t now_ms)
{
    uint64_t deadline = UINT64_MAX;
    for (uint32_t i = 0; i < CLIENT_INFLIGHT_MAX; i++) {
        const struct client_request *r = &c->requests[i];
        if (r->used && r->sent_ms + c->config.retransmit_ms < deadline) {
            deadline = r->sent_ms + c->config.retransmit_ms;
        }
    }
    c->output.deadline_ms = deadline > now_ms ? deadline : now_ms + 1;
}

int smr_client_submit(struct smr_client *c, uint64_t now_ms, const void *op, size_t op_size,
                      uint64_t *id, const struct smr_client_output **out)
{
    output_begin(c);
    if (op_size > TRONE_OP_MAX) {
        return TRONE_ETOOBIG;
    }
    struct client_request *r = NULL;
    for (uint32_t i = 0; i < CLIENT_INFLIGHT_MAX && r == NULL; i++) {
        r = c->requests[i].used ? NULL : &c->requests[i];
    }
    if (r == NULL || smr_client_inflight(c) >= c->config.inflight_max) {
        return TRONE_EBUSY;
    }
    struct smr_request m = {.request_id = c->next_id, .op = op, .op_size = (uint32_t)op_size};
    memcpy(m.client, c->config.public_key, TRONE_KEY_LEN);
    smr_sign_request(&m, c->config.secret_key);
    buf_init(&r->message, 0);
    smr_msg_encode_request(&r->message, &m);
    if (r->message.error != 0) {
        int rc = r->message.error;
        request_release(r);
        return rc;
    }
    r->used = true;
    r->id = c->next_id++;
    r->sent_ms = now_ms;
    *id = r->id;
    output_send(c, &r->message);
    output_finish(c, now_ms);
    *out = &c->output;
    return 0;
}

/* Counts replicas whose reply matches replica `from`'s (same status, same result). */
static uint32_t reply_matches(const struct client_request *r, uint32_t from)
{
    uint32_t count = 0;
    for (uint32_t i = 0; i < TRONE_REPLICAS_MAX; i++) {
        if ((r->reply_mask >> i & 1) != 0 && r->status[i] == r->status[from] &&
            memcmp(r->result_hash[i], r->result_hash[from], TRONE_HASH_LEN) == 0) {
            count++;
        }
    }
    return count;
}

static void request_complete(struct smr_client *c, struct client_request *r, uint32_t from)
{
    if (c->output.done_count >= SMR_CLIENT_DONE_MAX) {
        return; /* completes on the next matching reply */
    }
    size_t k = c->output.done_count;
    struct buf *result = &c->done_results[k];
    buf_reset(result);
    buf_put_bytes(result, r->result[from].data, r->result[from].used);
    if (result->error != 0) {
        return;
    }
    c->output.done[k].request_id = r->id;
    c->output.done[k].status = r->status[from];
    c->output.done[k].result = result->data;
    c->output.done[k].result_size = result->used;
    c->output.done_count++;
    request_release(r);
}

int smr_client_receive(struct smr_client *c, uint64_t now_ms, uint32_t from, const uint8_t *data,
                       size_t size, const struct smr_client_output **out)
{
    output_begin(c);
    *out = &c->output;
    struct smr_reply m;
    if (from >= c->config.replica_count || smr_msg_decode_reply(data, size, &m) != 0 ||
        m.replica != from) {
        c->output.rejected_count++;
        output_finish(c, now_ms);
        return 0;
    }
    struct client_request *r = NULL;
    for (uint32_t i = 0; i < CLIENT_INFLIGHT_MAX && r == NULL; i++) {
        r = c->requests[i].used && c->requests[i].id == m.request_id ? &c->requests[i] : NULL;
    }
    if (r == NULL) {
        output_finish(c, now_ms); /* a late or duplicate reply */
        return 0;
    }
    buf_reset(&r->result[from]);
    buf_put_bytes(&r->result[from], m.result, m.result_size);
    if (r->result[from].error != 0) {
        return TRONE_ENOMEM;
    }
    r->reply_mask |= 1ull << from;
    r->status[from] = m.status;
    crypto_generichash(r->result_hash[from], TRONE_HASH_LEN, m.result, m.result_size, NULL, 0);
    uint32_t quorum = smr_reply_quorum(c->config.fault_count, c->config.model);
    if (reply_matches(r, from) >= quorum) {
        request_complete(c, r, from);
    }
    output_finish(c, now_ms);
    return 0;
}

int smr_client_tick(struct smr_client *c, uint64_t now_ms, const struct smr_client_output **out)
{
    output_begin(c);
    for (uint32_t i = 0; i < CLIENT_INFLIGHT_MAX; i++) {
        struct client_request *r = &c->requests[i];
        if (r->used && now_ms >= r->sent_ms + c->config.retransmit_ms) {
            r->sent_ms = now_ms;
            output_send(c, &r->message);
        }
    }
    output_finish(c, now_ms);
    *out = &c->output;
    return 0;
}
