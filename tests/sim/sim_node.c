/* sim_node.c: the simulated replicas and clients. Each replica is the real smr core over the
 * real control table; each client is the real smr client core. Every input is one call into a
 * core, and every output is routed through the network (and a Byzantine replica's filter). */
#include "sim.h"

#include <stdlib.h>
#include <string.h>

#include "core/assert.h"

static void replica_config(struct sim *s, uint32_t idx, struct smr_config *c)
{
    smr_config_defaults(c);
    c->replica_count = s->p.n;
    c->fault_count = s->p.f;
    c->model = s->p.model;
    c->self = idx;
    memcpy(c->replica_keys, s->replica_pk, sizeof(s->replica_pk));
    memcpy(c->secret_key, s->replica_sk[idx], TRONE_SECRET_KEY_LEN);
    c->batch_max = s->p.batch_max;
    c->pipeline_max = s->p.pipeline_max;
    c->checkpoint_interval = s->p.checkpoint_interval;
    c->window = s->p.checkpoint_interval * s->p.window_factor;
    c->request_timeout_ms = s->p.request_timeout_ms;
    c->status_interval_ms = s->p.status_interval_ms;
}

static uint64_t next_tick(const struct sim *s, uint64_t deadline_ms)
{
    if (deadline_ms == 0 || deadline_ms == UINT64_MAX) {
        return SIM_NEVER;
    }
    /* A deadline in the past is due now, but at least 1 ms later so time always moves. */
    return deadline_ms > s->now_ms ? deadline_ms : s->now_ms + 1;
}

static void replica_after(struct sim *s, uint32_t idx, int rc, const struct smr_output *out);

bool sim_replica_start(struct sim *s, uint32_t idx)
{
    struct sim_replica *r = &s->replicas[idx];
    TRONE_ASSERT(!r->up);
    TRONE_ASSERT(r->core == NULL);
    replica_config(s, idx, &r->config);
    SIM_MUST(smr_config_check(&r->config) == 0);
    if (!sim_table_create(s, idx)) {
        return false;
    }
    r->core = smr_create(&r->config, &r->app);
    if (r->core == NULL) {
        sim_table_destroy(s, idx);
        return false;
    }
    r->up = true;
    r->tick_ms = s->now_ms;
    r->last_exec_seq = 0;
    r->exec_count = 0;
    sim_check_replica_restarted(s, idx);
    if (s->persist) {
        /* Restart from the disk: what a real replica reads from its store at start. */
        int rc = sim_disk_restore(&r->disk, r->core);
        const struct smr_output *out = NULL;
        if (rc == 0) {
            rc = smr_restore_finish(r->core, s->now_ms, &out);
        }
        if (rc != 0) {
            sim_fail(s, SIM_EXIT_INVARIANT, "replica %u restore failed: %s", idx,
                     trone_err_name(rc));
            return true;
        }
        if (r->disk.count > 0) {
            s->restores++;
            sim_trace(s, "fault=restored replica=%u records=%zu executed=%llu view=%llu", idx,
                      r->disk.count, (unsigned long long)smr_executed_seq(r->core),
                      (unsigned long long)smr_view(r->core));
        }
        replica_after(s, idx, 0, out);
    }
    return true;
}

void sim_replica_crash(struct sim *s, uint32_t idx)
{
    struct sim_replica *r = &s->replicas[idx];
    TRONE_ASSERT(r->up);
    sim_trace(s, "fault=crash replica=%u executed=%llu", idx,
              (unsigned long long)smr_executed_seq(r->core));
    smr_destroy(r->core);
    r->core = NULL;
    sim_table_destroy(s, idx);
    sim_byz_close(r);
    r->up = false;
    r->restarts++;
    r->tick_ms = SIM_NEVER;
    sim_disk_crash(&r->disk);
    if (!s->persist) {
        sim_disk_close(&r->disk); /* amnesia: the disk is lost with the memory */
    }
}

static void replica_traces(struct sim *s, uint32_t idx, const struct smr_output *out)
{
    for (size_t i = 0; i < out->trace_count; i++) {
        const struct smr_trace *t = &out->trace[i];
        if (t->kind == SMR_TRACE_NEW_VIEW && t->view > s->view_max) {
            s->view_max = t->view;
        }
        if (t->kind == SMR_TRACE_STATE_INSTALLED) {
            s->state_installs++;
        }
        if (!s->verbose) {
            continue;
        }
        static const char *const kinds[] = {"?", "rejected", "view_change", "new_view",
                                            "checkpoint", "state_installed"};
        const char *kind = (unsigned)t->kind < 6 ? kinds[t->kind] : "?";
        sim_trace(s, "trace replica=%u kind=%s err=%s from=%u view=%llu seq=%llu", idx, kind,
                  t->err != 0 ? trone_err_name(t->err) : "0", t->from,
                  (unsigned long long)t->view, (unsigned long long)t->seq);
    }
}

/* After every replica step: checks, traces, outputs, next tick. */
static void replica_after(struct sim *s, uint32_t idx, int rc, const struct smr_output *out)
{
    struct sim_replica *r = &s->replicas[idx];
    if (rc != 0) {
        sim_fail(s, SIM_EXIT_INVARIANT, "replica %u smr_step returned %s", idx,
                 trone_err_name(rc));
        return;
    }
    TRONE_ASSERT(out != NULL);
    replica_traces(s, idx, out);
    sim_disk_apply(&r->disk, out, s->now_ms); /* write-ahead: before anything is sent */
    if (sim_replica_correct(s, idx)) {
        sim_check_votes(s, idx, out);
        sim_check_executed(s, idx, out);
        sim_check_table(s, idx);
    }
    sim_replica_emit(s, idx, out);
    r->tick_ms = next_tick(s, out->deadline_ms);
}

void sim_replica_tick(struct sim *s, uint32_t idx)
{
    struct sim_replica *r = &s->replicas[idx];
    TRONE_ASSERT(r->up);
    struct smr_input in = {.now_ms = s->now_ms, .kind = SMR_IN_TICK};
    const struct smr_output *out = NULL;
    int rc = smr_step(r->core, &in, &out);
    replica_after(s, idx, rc, out);
}

void sim_replica_deliver(struct sim *s, uint32_t idx, uint32_t from_node, const uint8_t *data,
                         size_t size)
{
    struct sim_replica *r = &s->replicas[idx];
    TRONE_ASSERT(r->up);
    struct smr_input in = {.now_ms = s->now_ms, .data = data, .size = size};
    if (sim_node_is_client(s, from_node)) {
        in.kind = SMR_IN_CLIENT;
        in.client = s->clients[from_node - s->p.n].public_key;
    } else {
        in.kind = SMR_IN_REPLICA;
        in.from = from_node;
    }
    const struct smr_output *out = NULL;
    int rc = smr_step(r->core, &in, &out);
    replica_after(s, idx, rc, out);
}

/* Honest routing of one envelope, or through the filter of a Byzantine replica. */
static void emit_to(struct sim *s, uint32_t idx, uint32_t to, const uint8_t *data, size_t size)
{
    if (s->replicas[idx].byz != 0) {
        sim_byz_send(s, idx, to, data, size);
    } else {
        sim_net_send(s, idx, to, data, size);
    }
}

void sim_replica_emit(struct sim *s, uint32_t idx, const struct smr_output *out)
{
    for (size_t i = 0; i < out->envelope_count; i++) {
        const struct smr_envelope *e = &out->envelopes[i];
        if (e->dest == SMR_DEST_CLIENT) {
            /* To every client of that key, as rt_replica_send_client does to every connection
             * of the key: each takes the replies of its own ids. */
            for (uint32_t c = 0; c < s->p.client_count; c++) {
                if (memcmp(s->clients[c].public_key, e->client, TRONE_KEY_LEN) == 0) {
                    emit_to(s, idx, sim_client_node(s, c), e->data, e->size);
                }
            }
        } else if (e->dest == SMR_DEST_REPLICA) {
            TRONE_ASSERT(e->replica < s->p.n);
            emit_to(s, idx, e->replica, e->data, e->size);
        } else {
            TRONE_ASSERT(e->dest == SMR_DEST_ALL);
            if (s->replicas[idx].byz != 0 && sim_byz_equivocate(s, idx, e->data, e->size)) {
                continue;
            }
            for (uint32_t j = 0; j < s->p.n; j++) {
                if (j != idx) {
                    emit_to(s, idx, j, e->data, e->size);
                }
            }
        }
    }
}
