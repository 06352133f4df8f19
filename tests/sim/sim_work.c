/* sim_work.c: the workload. The admin (client 0) registers the other clients and creates,
 * alters, lists and deletes channels; the other clients subscribe, unsubscribe and show
 * channels. Some operations are refused on purpose (unknown channel, not authorized, duplicate
 * name, not yet registered): refusals are results too and must agree. Each replica's
 * application is a real control table (brk_table). */
#include "sim.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/brk_op.h"
#include "broker/brk_table.h"
#include "core/assert.h"

#define SIM_TAGS 4u

static const char *const sim_classes[] = {
    "cft,fifo,si", "bft,total,pks,urgency=7,durable", "bft,fifo,ha,urgency=3",
    "cft,total,pke,durable",
};

bool sim_table_create(struct sim *s, uint32_t idx)
{
    struct sim_replica *r = &s->replicas[idx];
    struct brk_table *t = calloc(1, sizeof(*t));
    if (t == NULL) {
        return false;
    }
    if (brk_table_init(t, s->clients[0].public_key) != 0) {
        brk_table_close(t);
        free(t);
        return false;
    }
    brk_table_app(t, &r->app);
    r->table = t;
    return true;
}

void sim_table_destroy(struct sim *s, uint32_t idx)
{
    struct sim_replica *r = &s->replicas[idx];
    if (r->table != NULL) {
        brk_table_close(r->table);
        free(r->table);
        r->table = NULL;
    }
}

void sim_table_digest(struct sim *s, uint32_t idx, uint8_t out[TRONE_HASH_LEN])
{
    TRONE_ASSERT(s->replicas[idx].table != NULL);
    SIM_MUST(brk_table_digest(s->replicas[idx].table, out) == 0);
}

static void op_add(struct sim *s, struct sim_client *c, struct brk_op *op, const char *what)
{
    TRONE_ASSERT(c->op_count < SIM_OPS_MAX);
    struct sim_op *o = &c->ops[c->op_count++];
    buf_reset(&s->scratch);
    SIM_MUST(brk_op_encode(op, &s->scratch) == 0);
    TRONE_ASSERT(s->scratch.used <= sizeof(o->bytes));
    memcpy(o->bytes, s->scratch.data, s->scratch.used);
    o->size = s->scratch.used;
    o->what = what;
}

static void tag_name(char *out, size_t size, uint32_t i)
{
    snprintf(out, size, "ch%u", i);
}

static void client_name(char *out, size_t size, uint32_t i)
{
    snprintf(out, size, "c%u", i);
}

/* A member list of random registered names, sometimes "*", sometimes an unknown name. */
static void members_pick(struct sim *s, struct brk_name_list *list)
{
    if (sim_rng_chance(&s->rng, 250)) {
        SIM_MUST(brk_name_list_add(list, BRK_NAME_ANY) == 0);
        return;
    }
    char name[16];
    for (uint32_t i = 1; i < s->p.client_count; i++) {
        if (sim_rng_chance(&s->rng, 600)) {
            client_name(name, sizeof(name), i);
            SIM_MUST(brk_name_list_add(list, name) == 0);
        }
    }
    if (sim_rng_chance(&s->rng, 80)) {
        SIM_MUST(brk_name_list_add(list, "nobody") == 0); /* refused: ENOENT */
    }
}

static void admin_register(struct sim *s, struct brk_op *op, uint32_t i, bool dup)
{
    char name[16];
    client_name(name, sizeof(name), i);
    brk_op_init(op, BRK_OP_REGISTER);
    SIM_MUST(brk_op_set_register(op, name, s->clients[i].public_key) == 0);
    op_add(s, &s->clients[0], op, dup ? "register-duplicate" : "register");
}

static void admin_channel(struct sim *s, struct brk_op *op)
{
    char tag[16];
    tag_name(tag, sizeof(tag), (uint32_t)sim_rng_below(&s->rng, SIM_TAGS));
    uint64_t roll = sim_rng_below(&s->rng, 10);
    const char *what = "channel-create";
    if (roll < 5) {
        brk_op_init(op, BRK_OP_CHANNEL_CREATE);
        const char *cls = sim_classes[sim_rng_below(&s->rng, 4)];
        SIM_MUST(brk_class_parse(&op->cls, cls, NULL, 0) == 0);
        members_pick(s, &op->publishers);
        members_pick(s, &op->subscribers);
    } else if (roll < 7) {
        brk_op_init(op, BRK_OP_CHANNEL_ALTER);
        members_pick(s, &op->subscribers);
        if (sim_rng_chance(&s->rng, 500)) {
            op->has_class = true;
            SIM_MUST(brk_class_parse(&op->cls, sim_classes[roll % 4], NULL, 0) == 0);
        }
        what = "channel-alter";
    } else if (roll < 9) {
        brk_op_init(op, BRK_OP_CHANNEL_DELETE);
        what = "channel-delete";
    } else {
        brk_op_init(op, BRK_OP_CHANNEL_LIST);
        tag[0] = 0;
        what = "channel-list";
    }
    if (tag[0] != 0) {
        SIM_MUST(brk_op_set_tag(op, tag) == 0);
    }
    op_add(s, &s->clients[0], op, what);
}

static void client_ops(struct sim *s, struct brk_op *op, uint32_t i)
{
    struct sim_client *c = &s->clients[i];
    uint32_t count = (uint32_t)sim_rng_range(&s->rng, 2, s->p.client_ops_max);
    for (uint32_t k = 0; k < count; k++) {
        char tag[16];
        tag_name(tag, sizeof(tag), (uint32_t)sim_rng_below(&s->rng, SIM_TAGS + 1));
        uint64_t roll = sim_rng_below(&s->rng, 10);
        enum brk_op_kind kind = roll < 6 ? BRK_OP_SUBSCRIBE
                                : roll < 9 ? BRK_OP_UNSUBSCRIBE : BRK_OP_CHANNEL_SHOW;
        brk_op_init(op, kind);
        SIM_MUST(brk_op_set_tag(op, tag) == 0);
        op_add(s, c, op, brk_op_kind_name(kind));
    }
}

void sim_work_plan(struct sim *s)
{
    struct brk_op *op = calloc(1, sizeof(*op));
    TRONE_ASSERT(op != NULL);
    struct sim_client *admin = &s->clients[0];
    admin->think_ms_max = sim_rng_range(&s->rng, 5, 200);
    for (uint32_t i = 1; i < s->p.client_count; i++) {
        admin_register(s, op, i, false);
        if (sim_rng_chance(&s->rng, 200)) {
            admin_register(s, op, i, true);
        }
    }
    uint32_t channel_ops = (uint32_t)sim_rng_range(&s->rng, 3, 10);
    for (uint32_t k = 0; k < channel_ops; k++) {
        admin_channel(s, op);
    }
    for (uint32_t i = 1; i < s->p.client_count; i++) {
        s->clients[i].think_ms_max = sim_rng_range(&s->rng, 5, 300);
        client_ops(s, op, i);
    }
    free(op);
}
