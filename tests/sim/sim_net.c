/* sim_net.c: the simulated network. Every message is bytes from a true sender to one node;
 * this seed's faults drop, duplicate, delay, reorder and partition it. The chaos event starts
 * and ends partitions and crashes and restarts crash-prone replicas during phase 1. */
#include "sim.h"

#include <stdlib.h>
#include <string.h>

#include "core/assert.h"
#include "smr/smr_msg.h"

const char *sim_msg_name(const uint8_t *data, size_t size)
{
    static const char *const names[] = {
        "?",         "REQUEST", "REPLY",    "PRE_PREPARE",   "PREPARE", "COMMIT",
        "CHECKPOINT", "VIEW_CHANGE", "NEW_VIEW", "STATUS", "DECIDED", "STATE_REQUEST",
        "STATE",
    };
    _Static_assert(sizeof(names) / sizeof(names[0]) == SMR_MSG_TYPE_MAX + 1, "names");
    return names[smr_msg_type(data, size)];
}

bool sim_net_partitioned(const struct sim *s, uint32_t from, uint32_t to)
{
    if (s->partition_mask == 0) {
        return false;
    }
    bool from_b = (s->partition_mask >> from) & 1u;
    bool to_b = (s->partition_mask >> to) & 1u;
    return from_b != to_b;
}

static void net_enqueue(struct sim *s, uint32_t from, uint32_t to, const uint8_t *data,
                        size_t size, uint64_t delay_ms)
{
    struct sim_event ev;
    memset(&ev, 0, sizeof(ev));
    ev.time_ms = s->now_ms + delay_ms;
    ev.node = to;
    ev.kind = SIM_EV_NET;
    ev.from = from;
    ev.size = size;
    ev.data = malloc(size == 0 ? 1 : size);
    TRONE_ASSERT(ev.data != NULL);
    if (size > 0) {
        memcpy(ev.data, data, size);
    }
    if (!sim_queue_push(&s->queue, &ev)) {
        s->dropped++;
        sim_trace(s, "fault=queue_full from=%u to=%u", from, to);
    }
}

static uint64_t net_delay(struct sim *s, uint32_t from)
{
    const struct sim_faults *f = &s->faults;
    uint64_t delay = sim_rng_range(&s->rng, f->delay_ms_min, f->delay_ms_max);
    if (from == f->slow_node) {
        delay += sim_rng_range(&s->rng, 0, f->slow_ms_max);
    }
    if (sim_rng_chance(&s->rng, f->reorder_permille)) {
        delay += sim_rng_range(&s->rng, 1, f->reorder_ms_max);
    }
    return delay;
}

void sim_net_send(struct sim *s, uint32_t from, uint32_t to, const uint8_t *data, size_t size)
{
    TRONE_ASSERT(from < s->p.n + s->p.client_count);
    TRONE_ASSERT(to < s->p.n + s->p.client_count);
    if (!s->healed) {
        if (sim_net_partitioned(s, from, to)) {
            s->dropped++;
            sim_trace(s, "fault=partition from=%u to=%u msg=%s", from, to,
                      sim_msg_name(data, size));
            return;
        }
        if (sim_rng_chance(&s->rng, s->faults.drop_permille)) {
            s->dropped++;
            sim_trace(s, "fault=drop from=%u to=%u msg=%s", from, to, sim_msg_name(data, size));
            return;
        }
    }
    net_enqueue(s, from, to, data, size, net_delay(s, from));
    if (sim_rng_chance(&s->rng, s->faults.dup_permille)) {
        sim_trace(s, "fault=duplicate from=%u to=%u msg=%s", from, to, sim_msg_name(data, size));
        net_enqueue(s, from, to, data, size, net_delay(s, from));
    }
}

/* A partition splits the nodes (replicas and clients) in two sides for a while; messages
 * between the sides are lost. Phase 2 heals it. */
static void chaos_partition(struct sim *s)
{
    if (s->partition_mask != 0) {
        if (s->now_ms >= s->partition_until_ms) {
            sim_trace(s, "fault=partition_end");
            s->partition_mask = 0;
        }
        return;
    }
    if (!sim_rng_chance(&s->rng, s->faults.partition_permille)) {
        return;
    }
    uint64_t mask = 0;
    for (uint32_t i = 0; i < s->p.n; i++) {
        if (sim_rng_chance(&s->rng, 400)) {
            mask |= 1ull << i;
        }
    }
    uint64_t all = (1ull << s->p.n) - 1;
    if (mask == 0 || mask == all) {
        return;
    }
    /* Clients fall on either side: some lose part of the replicas for a while. */
    for (uint32_t i = 0; i < s->p.client_count; i++) {
        if (sim_rng_chance(&s->rng, 300)) {
            mask |= 1ull << sim_client_node(s, i);
        }
    }
    s->partition_mask = mask;
    s->partition_until_ms = s->now_ms + sim_rng_range(&s->rng, 100, 2000);
    sim_trace(s, "fault=partition_start mask=0x%llx until=%llu", (unsigned long long)mask,
              (unsigned long long)s->partition_until_ms);
}

static void chaos_crash(struct sim *s)
{
    for (uint32_t i = 0; i < s->p.n; i++) {
        struct sim_replica *r = &s->replicas[i];
        if (!r->crash_prone) {
            continue;
        }
        if (!r->up && s->now_ms >= r->down_until_ms) {
            sim_trace(s, "fault=restart replica=%u", i);
            SIM_MUST(sim_replica_start(s, i));
        } else if (r->up && sim_rng_chance(&s->rng, s->faults.crash_permille)) {
            sim_replica_crash(s, i);
            r->down_until_ms = s->now_ms + sim_rng_range(&s->rng, 50, 3000);
        }
    }
}

void sim_net_chaos(struct sim *s)
{
    if (s->healed) {
        return;
    }
    chaos_partition(s);
    chaos_crash(s);
    struct sim_event ev;
    memset(&ev, 0, sizeof(ev));
    ev.time_ms = s->now_ms + s->p.chaos_period_ms;
    ev.node = SIM_NODES_MAX;
    ev.kind = SIM_EV_CHAOS;
    SIM_MUST(sim_queue_push(&s->queue, &ev));
}
