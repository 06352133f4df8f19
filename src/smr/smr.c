/* smr.c: the replica core's entry points: create, step, destroy, and the output helpers the
 * other smr_*.c files use. No I/O, no clock: time comes from each input. */
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "core/assert.h"
#include "smr/smr_internal.h"

void smr_config_defaults(struct smr_config *c)
{
    memset(c, 0, sizeof(*c));
    c->model = SMR_BFT;
    c->batch_max = 64;
    c->pipeline_max = 4;
    c->checkpoint_interval = 64;
    c->window = 256;
    c->request_timeout_ms = 2000;
    c->status_interval_ms = 200;
}

uint32_t smr_quorum(uint32_t n, uint32_t f, enum smr_fault_model model)
{
    if (model == SMR_CFT) {
        return n / 2 + 1;
    }
    return (n + f) / 2 + 1; /* ceil((n + f + 1) / 2): two quorums share f + 1 replicas */
}

uint32_t smr_reply_quorum(uint32_t f, enum smr_fault_model model)
{
    return model == SMR_BFT ? f + 1 : 1;
}

int smr_config_check(const struct smr_config *c)
{
    uint32_t n = c->replica_count;
    uint32_t f = c->fault_count;
    if (n == 0 || n > TRONE_REPLICAS_MAX || c->self >= n) {
        return TRONE_ECONFIG;
    }
    if (c->model == SMR_BFT ? n < 3 * f + 1 : n < 2 * f + 1) {
        return TRONE_ECONFIG;
    }
    if (c->batch_max == 0 || c->batch_max > TRONE_BATCH_MAX || c->pipeline_max == 0) {
        return TRONE_ECONFIG;
    }
    if (c->checkpoint_interval == 0 || c->window < 2 * c->checkpoint_interval ||
        c->window % c->checkpoint_interval != 0 || c->pipeline_max > c->window) {
        return TRONE_ECONFIG;
    }
    if (c->request_timeout_ms == 0 || c->status_interval_ms == 0) {
        return TRONE_ECONFIG;
    }
    return 0;
}

struct smr *smr_create(const struct smr_config *config, const struct smr_app *app)
{
    if (smr_config_check(config) != 0 || sodium_init() < 0) {
        return NULL;
    }
    struct smr *s = calloc(1, sizeof(*s));
    if (s == NULL) {
        return NULL;
    }
    s->config = *config;
    s->app = *app;
    s->quorum = smr_quorum(config->replica_count, config->fault_count, config->model);
    s->claim_quorum = smr_reply_quorum(config->fault_count, config->model);
    s->slots = calloc(config->window, sizeof(*s->slots));
    s->ckpt_count = config->window / config->checkpoint_interval + 1;
    s->ckpts = calloc(s->ckpt_count, sizeof(*s->ckpts));
    s->records = calloc((size_t)config->window + SMR_RECORDS_EXTRA, sizeof(*s->records));
    s->record_offsets =
        calloc((size_t)config->window + SMR_RECORDS_EXTRA, sizeof(*s->record_offsets));
    if (s->slots == NULL || s->ckpts == NULL || s->records == NULL ||
        s->record_offsets == NULL) {
        smr_destroy(s);
        return NULL;
    }
    s->view_timeout_ms = config->request_timeout_ms;
    s->next_seq = 1;
    s->restoring = true;
    return s;
}

static void slot_free(struct smr_slot *slot)
{
    buf_close(&slot->batch);
    buf_close(&slot->cert.batch);
    buf_close(&slot->decided_batch);
}

void smr_destroy(struct smr *s)
{
    if (s == NULL) {
        return;
    }
    for (uint32_t i = 0; s->slots != NULL && i < s->config.window; i++) {
        slot_free(&s->slots[i]);
    }
    for (uint32_t i = 0; s->ckpts != NULL && i < s->ckpt_count; i++) {
        buf_close(&s->ckpts[i].snapshot);
    }
    for (uint32_t i = 0; i < SMR_PENDING_MAX; i++) {
        buf_close(&s->pending[i].bytes);
    }
    for (uint32_t i = 0; i < s->client_count; i++) {
        smr__client_entry_close(&s->clients[i]);
    }
    for (uint32_t i = 0; i < SMR_R; i++) {
        buf_close(&s->vc_bytes[i]);
    }
    buf_close(&s->new_view);
    buf_close(&s->stable.snapshot);
    buf_close(&s->out_data);
    buf_close(&s->persist_data);
    free(s->records);
    free(s->record_offsets);
    buf_close(&s->scratch);
    buf_close(&s->result);
    free(s->clients);
    free(s->slots);
    free(s->ckpts);
    sodium_memzero(&s->config.secret_key, sizeof(s->config.secret_key));
    free(s);
}

uint32_t smr__leader_of(const struct smr *s, uint64_t view)
{
    return (uint32_t)(view % s->config.replica_count);
}

bool smr__in_window(const struct smr *s, uint64_t seq)
{
    return seq > s->stable.seq && seq <= s->stable.seq + s->config.window;
}

/* The slot of seq, reset if it still holds a truncated seq. seq must be in the window. */
struct smr_slot *smr__slot(struct smr *s, uint64_t seq)
{
    TRONE_ASSERT(smr__in_window(s, seq));
    struct smr_slot *slot = &s->slots[seq % s->config.window];
    if (slot->seq != seq) {
        TRONE_ASSERT(slot->seq < seq);
        struct buf batch = slot->batch, cert = slot->cert.batch, decided = slot->decided_batch;
        memset(slot, 0, sizeof(*slot));
        buf_reset(&batch);
        buf_reset(&cert);
        buf_reset(&decided);
        slot->batch = batch;
        slot->cert.batch = cert;
        slot->decided_batch = decided;
        slot->seq = seq;
    }
    return slot;
}

uint32_t smr__popcount(uint64_t mask)
{
    return (uint32_t)__builtin_popcountll(mask);
}

struct buf *smr__send_begin(struct smr *s)
{
    return &s->out_data;
}

/* Records the message appended since the previous envelope. Messages beyond the envelope
 * table are dropped: the protocol retransmits, and the table is sized far above a step. */
void smr__send_done(struct smr *s, enum smr_dest dest, uint32_t replica, const uint8_t *client)
{
    size_t start = s->output.envelope_count == 0
                       ? 0
                       : s->envelope_offsets[s->output.envelope_count - 1] +
                             s->envelopes[s->output.envelope_count - 1].size;
    if (s->out_data.error != 0 || s->output.envelope_count >= SMR_ENVELOPES_MAX) {
        s->out_data.used = start;
        s->out_data.error = 0;
        return;
    }
    struct smr_envelope *e = &s->envelopes[s->output.envelope_count];
    memset(e, 0, sizeof(*e));
    e->dest = dest;
    e->replica = replica;
    if (client != NULL) {
        memcpy(e->client, client, TRONE_KEY_LEN);
    }
    e->size = s->out_data.used - start;
    s->envelope_offsets[s->output.envelope_count] = start;
    s->output.envelope_count++;
}

void smr__trace(struct smr *s, enum smr_trace_kind kind, int err, uint32_t from, uint64_t view,
                uint64_t seq)
{
    if (s->output.trace_count >= SMR_TRACE_MAX) {
        return;
    }
    struct smr_trace *t = &s->output.trace[s->output.trace_count++];
    t->kind = kind;
    t->err = err;
    t->from = from;
    t->view = view;
    t->seq = seq;
}

static void step_replica_message(struct smr *s, uint32_t from, const uint8_t *data, size_t size)
{
    switch (smr_msg_type(data, size)) {
    case SMR_MSG_PRE_PREPARE: smr__on_pre_prepare(s, from, data, size); break;
    case SMR_MSG_PREPARE: smr__on_prepare(s, from, data, size); break;
    case SMR_MSG_COMMIT: smr__on_commit(s, from, data, size); break;
    case SMR_MSG_CHECKPOINT: smr__on_checkpoint(s, from, data, size); break;
    case SMR_MSG_VIEW_CHANGE: smr__on_view_change(s, from, data, size); break;
    case SMR_MSG_NEW_VIEW: smr__on_new_view(s, from, data, size); break;
    case SMR_MSG_STATUS: smr__on_status(s, from, data, size); break;
    case SMR_MSG_DECIDED: smr__on_decided(s, from, data, size); break;
    case SMR_MSG_STATE_REQUEST: smr__on_state_request(s, from, data, size); break;
    case SMR_MSG_STATE: smr__on_state(s, from, data, size); break;
    default: smr__trace(s, SMR_TRACE_REJECTED, TRONE_EBADMSG, from, s->view, 0); break;
    }
}

static void step_tick(struct smr *s)
{
    if (s->now_ms >= s->status_due_ms) {
        s->status_due_ms = s->now_ms + s->config.status_interval_ms;
        smr__status_tick(s);
        smr__retransmit(s);
    }
    smr__view_tick(s);
}

static uint64_t next_deadline(const struct smr *s)
{
    uint64_t deadline = s->status_due_ms;
    uint64_t view_deadline = s->view_started_ms + s->view_timeout_ms;
    if (view_deadline > s->now_ms && view_deadline < deadline) {
        deadline = view_deadline;
    }
    return deadline > s->now_ms ? deadline : s->now_ms + 1;
}

static void output_finish(struct smr *s)
{
    smr__persist_collect(s);
    for (size_t i = 0; i < s->output.envelope_count; i++) {
        s->envelopes[i].data = s->out_data.data + s->envelope_offsets[i];
    }
    s->output.envelopes = s->envelopes;
    s->output.executed = s->executed_log;
    s->output.deadline_ms = next_deadline(s);
}

static void step_begin(struct smr *s, uint64_t now_ms)
{
    memset(&s->output, 0, sizeof(s->output));
    buf_reset(&s->out_data);
    buf_reset(&s->persist_data);
    if (now_ms > s->now_ms) {
        s->now_ms = now_ms;
    }
}

int smr_restore_finish(struct smr *s, uint64_t now_ms, const struct smr_output **out)
{
    step_begin(s, now_ms);
    int rc = smr__restore_finish(s);
    if (rc != 0) {
        return rc;
    }
    output_finish(s);
    *out = &s->output;
    return 0;
}

int smr_step(struct smr *s, const struct smr_input *in, const struct smr_output **out)
{
    step_begin(s, in->now_ms);
    s->restoring = false;
    s->stepped = true;
    if (s->status_due_ms == 0) {
        s->status_due_ms = s->now_ms + s->config.status_interval_ms;
        s->view_started_ms = s->now_ms;
    }
    switch (in->kind) {
    case SMR_IN_REPLICA:
        if (in->from >= s->config.replica_count || in->from == s->config.self) {
            smr__trace(s, SMR_TRACE_REJECTED, TRONE_EPROTO, in->from, s->view, 0);
        } else {
            step_replica_message(s, in->from, in->data, in->size);
        }
        break;
    case SMR_IN_CLIENT:
        smr__on_request(s, in->client, in->data, in->size);
        break;
    case SMR_IN_TICK:
    default:
        break;
    }
    step_tick(s);
    smr__propose(s);
    output_finish(s);
    *out = &s->output;
    return 0;
}

uint64_t smr_view(const struct smr *s) { return s->view; }
uint32_t smr_leader(const struct smr *s) { return smr__leader_of(s, s->view); }
bool smr_view_changing(const struct smr *s) { return s->view_changing; }
uint64_t smr_executed_seq(const struct smr *s) { return s->executed; }
uint64_t smr_stable_seq(const struct smr *s) { return s->stable.seq; }
