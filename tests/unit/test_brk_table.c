/* test_brk_table.c: the control table's rules, queries, digest, snapshot and restore
 * (brk_table.h). Keys are real Ed25519 keys made from fixed seeds, so runs are repeatable. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "broker/brk_table.h"

/* ---- Fixture ---- */

#define KEYS 300u

struct fixture {
    uint8_t keys[KEYS][TRONE_KEY_LEN]; /* keys[0] is the admin */
    struct brk_table a;
    struct brk_table b;
    struct brk_op *op;
    struct buf encoded;
    struct buf result;
    struct brk_result res;
};

static void key_make(uint8_t key[TRONE_KEY_LEN], uint32_t n)
{
    uint8_t seed[crypto_sign_SEEDBYTES] = {0};
    uint8_t secret[crypto_sign_SECRETKEYBYTES];
    memcpy(seed, &n, sizeof(n));
    seed[31] = 0x5a;
    assert_int_equal(crypto_sign_seed_keypair(key, secret, seed), 0);
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    for (uint32_t i = 0; i < KEYS; i++) {
        key_make(f->keys[i], i);
    }
    assert_int_equal(brk_table_init(&f->a, f->keys[0]), 0);
    assert_int_equal(brk_table_init(&f->b, f->keys[0]), 0);
    f->op = calloc(1, sizeof(*f->op));
    assert_non_null(f->op);
    buf_init(&f->encoded, 0);
    buf_init(&f->result, TRONE_RESULT_MAX);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    brk_table_close(&f->a);
    brk_table_close(&f->b);
    buf_close(&f->encoded);
    buf_close(&f->result);
    free(f->op);
    free(f);
    return 0;
}

/* ---- Helpers ---- */

/* Executes f->op on t as the client with key index `who`; returns the result status. */
static int run(struct fixture *f, struct brk_table *t, uint32_t who)
{
    buf_reset(&f->encoded);
    assert_int_equal(brk_op_encode(f->op, &f->encoded), 0);
    buf_reset(&f->result);
    brk_table_execute(t, 1, f->keys[who], f->encoded.data, f->encoded.used, &f->result);
    assert_int_equal(f->result.error, 0);
    assert_int_equal(brk_result_decode(f->result.data, f->result.used, &f->res), 0);
    return f->res.status;
}

static int do_register(struct fixture *f, struct brk_table *t, uint32_t who, const char *name,
                       uint32_t key_idx)
{
    brk_op_init(f->op, BRK_OP_REGISTER);
    assert_int_equal(brk_op_set_register(f->op, name, f->keys[key_idx]), 0);
    return run(f, t, who);
}

static int do_create(struct fixture *f, struct brk_table *t, uint32_t who, const char *tag,
                     const char *cls, const char *publishers, const char *subscribers)
{
    brk_op_init(f->op, BRK_OP_CHANNEL_CREATE);
    assert_int_equal(brk_op_set_tag(f->op, tag), 0);
    assert_int_equal(brk_class_parse(&f->op->cls, cls, NULL, 0), 0);
    assert_int_equal(brk_name_list_parse(&f->op->publishers, publishers, NULL, 0), 0);
    assert_int_equal(brk_name_list_parse(&f->op->subscribers, subscribers, NULL, 0), 0);
    return run(f, t, who);
}

static int do_tagged(struct fixture *f, struct brk_table *t, uint32_t who,
                     enum brk_op_kind kind, const char *tag)
{
    brk_op_init(f->op, kind);
    if (tag[0] != '\0') {
        assert_int_equal(brk_op_set_tag(f->op, tag), 0);
    }
    return run(f, t, who);
}

/* Registers probe1..probe3 (keys 1..3) and console (key 4), then creates os.metrics
 * (publishers probe1, probe2; subscriber console) and diag.alerts (subscribers "*"). */
static void populate(struct fixture *f, struct brk_table *t)
{
    assert_int_equal(do_register(f, t, 0, "probe1", 1), 0);
    assert_int_equal(do_register(f, t, 0, "probe2", 2), 0);
    assert_int_equal(do_register(f, t, 0, "probe3", 3), 0);
    assert_int_equal(do_register(f, t, 0, "console", 4), 0);
    assert_int_equal(do_create(f, t, 0, "os.metrics", "cft,fifo", "probe1,probe2", "console"),
                     0);
    assert_int_equal(do_create(f, t, 0, "diag.alerts", "bft,total,pks,urgency=7,durable",
                               "probe3", "*"),
                     0);
}

static void digest(struct brk_table *t, uint8_t out[TRONE_HASH_LEN])
{
    assert_int_equal(brk_table_digest(t, out), 0);
}

/* ---- Scenarios ---- */

/* Only the admin may register clients and create, alter or delete channels; a refused op
 * changes nothing. */
static void test_admin_only(void **state)
{
    struct fixture *f = *state;
    populate(f, &f->a);
    uint8_t before[TRONE_HASH_LEN];
    uint8_t after[TRONE_HASH_LEN];
    digest(&f->a, before);
    assert_int_equal(do_register(f, &f->a, 1, "intruder", 9), TRONE_EPERM);
    assert_non_null(strstr(f->res.message, "only the admin"));
    assert_int_equal(do_create(f, &f->a, 1, "x", "", "", ""), TRONE_EPERM);
    assert_non_null(strstr(f->res.message, "only the admin"));
    assert_int_equal(do_tagged(f, &f->a, 4, BRK_OP_CHANNEL_DELETE, "os.metrics"), TRONE_EPERM);
    brk_op_init(f->op, BRK_OP_CHANNEL_ALTER);
    assert_int_equal(brk_op_set_tag(f->op, "os.metrics"), 0);
    assert_int_equal(brk_name_list_add(&f->op->subscribers, "probe1"), 0);
    assert_int_equal(run(f, &f->a, 1), TRONE_EPERM);
    /* An unregistered key is no admin either. */
    assert_int_equal(do_create(f, &f->a, 9, "y", "", "", ""), TRONE_EPERM);
    digest(&f->a, after);
    assert_memory_equal(before, after, TRONE_HASH_LEN);
}

/* REGISTER refuses a duplicate name, a duplicate key, the reserved admin name and a key that
 * is not an Ed25519 point. */
static void test_register_duplicates(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(do_register(f, &f->a, 0, "probe1", 1), 0);
    assert_int_equal(brk_table_client_count(&f->a), 2);
    assert_int_equal(do_register(f, &f->a, 0, "probe1", 2), TRONE_EEXIST);
    assert_int_equal(do_register(f, &f->a, 0, "other", 1), TRONE_EEXIST);
    assert_int_equal(do_register(f, &f->a, 0, "admin", 2), TRONE_EEXIST);
    assert_int_equal(do_register(f, &f->a, 0, "second-admin", 0), TRONE_EEXIST);
    brk_op_init(f->op, BRK_OP_REGISTER);
    uint8_t bad[TRONE_KEY_LEN] = {0};
    assert_int_equal(brk_op_set_register(f->op, "zero", bad), 0);
    assert_int_equal(run(f, &f->a, 0), TRONE_EINVAL);
    assert_int_equal(brk_table_client_count(&f->a), 2);
    const struct brk_client *c = brk_table_client_by_key(&f->a, f->keys[1]);
    assert_non_null(c);
    assert_string_equal(c->name, "probe1");
    assert_non_null(brk_table_client_by_name(&f->a, "admin"));
    assert_null(brk_table_client_by_key(&f->a, f->keys[2]));
}

/* Subscribing needs registration and authorization; the wildcard admits any registered
 * client; the admin is authorized everywhere. */
static void test_subscribe_rules(void **state)
{
    struct fixture *f = *state;
    populate(f, &f->a);
    assert_int_equal(do_tagged(f, &f->a, 1, BRK_OP_SUBSCRIBE, "os.metrics"), TRONE_EPERM);
    assert_non_null(strstr(f->res.message, "not an authorized subscriber"));
    assert_int_equal(do_tagged(f, &f->a, 9, BRK_OP_SUBSCRIBE, "diag.alerts"), TRONE_EPERM);
    assert_int_equal(do_tagged(f, &f->a, 4, BRK_OP_SUBSCRIBE, "os.metrics"), 0);
    assert_int_equal(do_tagged(f, &f->a, 4, BRK_OP_SUBSCRIBE, "os.metrics"), 0); /* again */
    assert_int_equal(do_tagged(f, &f->a, 1, BRK_OP_SUBSCRIBE, "diag.alerts"), 0);
    assert_int_equal(do_tagged(f, &f->a, 0, BRK_OP_SUBSCRIBE, "os.metrics"), 0);
    assert_int_equal(do_tagged(f, &f->a, 4, BRK_OP_SUBSCRIBE, "nope"), TRONE_ENOENT);
    const struct brk_channel *ch = brk_table_find_channel(&f->a, "os.metrics");
    assert_non_null(ch);
    assert_int_equal(ch->subscribed.count, 2);
    assert_true(brk_table_channel_subscribed(&f->a, ch, f->keys[4]));
    assert_true(brk_table_channel_subscribed(&f->a, ch, f->keys[0]));
    assert_false(brk_table_channel_subscribed(&f->a, ch, f->keys[1]));
    /* Subscribers come in key order. */
    const struct brk_client *s0 = brk_table_subscriber(&f->a, ch, 0);
    const struct brk_client *s1 = brk_table_subscriber(&f->a, ch, 1);
    assert_true(memcmp(s0->key, s1->key, TRONE_KEY_LEN) < 0);
    /* Queries for the data path. */
    assert_true(brk_table_may_publish(&f->a, "os.metrics", f->keys[1]));
    assert_false(brk_table_may_publish(&f->a, "os.metrics", f->keys[3]));
    assert_true(brk_table_may_publish(&f->a, "os.metrics", f->keys[0]));
    assert_false(brk_table_may_publish(&f->a, "nope", f->keys[0]));
    assert_true(brk_table_may_subscribe(&f->a, "diag.alerts", f->keys[2]));
    assert_false(brk_table_may_subscribe(&f->a, "diag.alerts", f->keys[9]));
    assert_false(brk_table_may_subscribe(&f->a, "os.metrics", f->keys[2]));
    /* Unsubscribe. */
    assert_int_equal(do_tagged(f, &f->a, 4, BRK_OP_UNSUBSCRIBE, "os.metrics"), 0);
    assert_int_equal(do_tagged(f, &f->a, 4, BRK_OP_UNSUBSCRIBE, "os.metrics"), TRONE_ENOENT);
    assert_false(brk_table_channel_subscribed(&f->a, ch, f->keys[4]));
}

/* Deleting a channel drops its subscriptions; a new channel of the same tag starts empty. */
static void test_delete(void **state)
{
    struct fixture *f = *state;
    populate(f, &f->a);
    assert_int_equal(do_tagged(f, &f->a, 2, BRK_OP_SUBSCRIBE, "diag.alerts"), 0);
    assert_int_equal(do_tagged(f, &f->a, 0, BRK_OP_CHANNEL_DELETE, "diag.alerts"), 0);
    assert_null(brk_table_find_channel(&f->a, "diag.alerts"));
    assert_int_equal(brk_table_channel_count(&f->a), 1);
    assert_int_equal(do_tagged(f, &f->a, 0, BRK_OP_CHANNEL_DELETE, "diag.alerts"), TRONE_ENOENT);
    assert_int_equal(do_tagged(f, &f->a, 2, BRK_OP_UNSUBSCRIBE, "diag.alerts"), TRONE_ENOENT);
    assert_int_equal(do_create(f, &f->a, 0, "diag.alerts", "", "", "*"), 0);
    const struct brk_channel *ch = brk_table_find_channel(&f->a, "diag.alerts");
    assert_non_null(ch);
    assert_int_equal(ch->subscribed.count, 0);
    assert_int_equal(do_create(f, &f->a, 0, "diag.alerts", "", "", ""), TRONE_EEXIST);
    assert_int_equal(do_create(f, &f->a, 0, "z", "", "ghost", ""), TRONE_ENOENT);
    assert_non_null(strstr(f->res.message, "'ghost'"));
}

/* ALTER removes, adds and sets the class; subscribers who lose authorization are dropped;
 * a bad ALTER changes nothing. */
static void test_alter(void **state)
{
    struct fixture *f = *state;
    populate(f, &f->a);
    assert_int_equal(do_tagged(f, &f->a, 4, BRK_OP_SUBSCRIBE, "diag.alerts"), 0);
    assert_int_equal(do_tagged(f, &f->a, 1, BRK_OP_SUBSCRIBE, "diag.alerts"), 0);
    brk_op_init(f->op, BRK_OP_CHANNEL_ALTER);
    assert_int_equal(brk_op_set_tag(f->op, "diag.alerts"), 0);
    assert_int_equal(brk_name_list_parse(&f->op->subscribers_removed, "*", NULL, 0), 0);
    assert_int_equal(brk_name_list_parse(&f->op->subscribers, "console", NULL, 0), 0);
    assert_int_equal(brk_name_list_parse(&f->op->publishers, "probe1", NULL, 0), 0);
    f->op->has_class = true;
    assert_int_equal(brk_class_parse(&f->op->cls, "cft,urgency=1", NULL, 0), 0);
    assert_int_equal(run(f, &f->a, 0), 0);
    const struct brk_channel *ch = brk_table_find_channel(&f->a, "diag.alerts");
    assert_int_equal(ch->cls.urgency, 1);
    assert_int_equal(ch->cls.fault, BRK_FAULT_CFT);
    assert_true(brk_table_channel_subscribed(&f->a, ch, f->keys[4]));
    assert_false(brk_table_channel_subscribed(&f->a, ch, f->keys[1]));
    assert_true(brk_table_may_publish(&f->a, "diag.alerts", f->keys[1]));
    /* Refusals: remove a non-member, add and remove the same name, unknown tag. */
    uint8_t before[TRONE_HASH_LEN];
    uint8_t after[TRONE_HASH_LEN];
    digest(&f->a, before);
    brk_op_init(f->op, BRK_OP_CHANNEL_ALTER);
    assert_int_equal(brk_op_set_tag(f->op, "diag.alerts"), 0);
    assert_int_equal(brk_name_list_parse(&f->op->publishers, "probe2", NULL, 0), 0);
    assert_int_equal(brk_name_list_parse(&f->op->subscribers_removed, "probe2", NULL, 0), 0);
    assert_int_equal(run(f, &f->a, 0), TRONE_ENOENT);
    brk_op_init(f->op, BRK_OP_CHANNEL_ALTER);
    assert_int_equal(brk_op_set_tag(f->op, "diag.alerts"), 0);
    assert_int_equal(brk_name_list_parse(&f->op->subscribers, "probe2", NULL, 0), 0);
    assert_int_equal(brk_name_list_parse(&f->op->subscribers_removed, "probe2", NULL, 0), 0);
    assert_int_equal(run(f, &f->a, 0), TRONE_EINVAL);
    assert_int_equal(brk_op_set_tag(f->op, "missing"), 0);
    assert_int_equal(run(f, &f->a, 0), TRONE_ENOENT);
    digest(&f->a, after);
    assert_memory_equal(before, after, TRONE_HASH_LEN);
}

/* SHOW and LIST describe channels with names sorted; LIST pages after a tag; unregistered
 * clients may not read the table; garbage ops yield TRONE_EBADMSG results. */
static void test_show_list(void **state)
{
    struct fixture *f = *state;
    populate(f, &f->a);
    assert_int_equal(do_tagged(f, &f->a, 4, BRK_OP_SUBSCRIBE, "os.metrics"), 0);
    struct brk_channel_info *info = calloc(1, sizeof(*info));
    assert_non_null(info);
    struct brk_channel_iter it;
    assert_int_equal(do_tagged(f, &f->a, 3, BRK_OP_CHANNEL_SHOW, "os.metrics"), 0);
    assert_int_equal(brk_channel_iter_init(&it, f->res.body, f->res.body_size), 0);
    assert_int_equal(brk_channel_iter_next(&it, info), 1);
    assert_string_equal(info->tag, "os.metrics");
    assert_int_equal(info->publishers.count, 2);
    assert_string_equal(info->publishers.names[0], "probe1");
    assert_string_equal(info->publishers.names[1], "probe2");
    assert_string_equal(info->subscribed.names[0], "console");
    assert_int_equal(brk_channel_iter_next(&it, info), 0);
    assert_int_equal(do_tagged(f, &f->a, 0, BRK_OP_CHANNEL_LIST, ""), 0);
    assert_int_equal(brk_channel_iter_init(&it, f->res.body, f->res.body_size), 0);
    assert_int_equal(it.count, 2);
    assert_int_equal(brk_channel_iter_next(&it, info), 1);
    assert_string_equal(info->tag, "diag.alerts");
    assert_string_equal(info->subscribers.names[0], "*");
    assert_int_equal(brk_channel_iter_next(&it, info), 1);
    assert_string_equal(info->tag, "os.metrics");
    assert_int_equal(brk_channel_iter_next(&it, info), 0);
    assert_false(it.more);
    assert_int_equal(do_tagged(f, &f->a, 0, BRK_OP_CHANNEL_LIST, "diag.alerts"), 0);
    assert_int_equal(brk_channel_iter_init(&it, f->res.body, f->res.body_size), 0);
    assert_int_equal(it.count, 1);
    assert_int_equal(do_tagged(f, &f->a, 9, BRK_OP_CHANNEL_LIST, ""), TRONE_EPERM);
    assert_int_equal(do_tagged(f, &f->a, 9, BRK_OP_CHANNEL_SHOW, "os.metrics"), TRONE_EPERM);
    assert_int_equal(do_tagged(f, &f->a, 1, BRK_OP_CHANNEL_SHOW, "none"), TRONE_ENOENT);
    const uint8_t garbage[] = {9, 9, 9};
    buf_reset(&f->result);
    brk_table_execute(&f->a, 1, f->keys[0], garbage, sizeof(garbage), &f->result);
    assert_int_equal(brk_result_decode(f->result.data, f->result.used, &f->res), 0);
    assert_int_equal(f->res.status, TRONE_EBADMSG);
    free(info);
}

static bool keys_has(const uint8_t (*keys)[TRONE_KEY_LEN], uint32_t count,
                     const uint8_t key[TRONE_KEY_LEN])
{
    for (uint32_t i = 0; i < count; i++) {
        if (memcmp(keys[i], key, TRONE_KEY_LEN) == 0) {
            return true;
        }
    }
    return false;
}

/* CHANNEL_KEYS gives the publishers' keys (the admin included, "*" as a flag) and the
 * recipients of an HA/PKE channel key: the listed subscribers and the clients subscribed now,
 * sorted and without duplicates; it follows subscriptions and needs a registered client. */
static void test_channel_keys(void **state)
{
    struct fixture *f = *state;
    populate(f, &f->a);
    struct brk_channel_keys *keys = calloc(1, sizeof(*keys));
    assert_non_null(keys);
    assert_int_equal(do_tagged(f, &f->a, 4, BRK_OP_SUBSCRIBE, "os.metrics"), 0);
    assert_int_equal(do_tagged(f, &f->a, 0, BRK_OP_SUBSCRIBE, "os.metrics"), 0);
    assert_int_equal(do_tagged(f, &f->a, 3, BRK_OP_CHANNEL_KEYS, "os.metrics"), 0);
    assert_int_equal(brk_channel_keys_decode(f->res.body, f->res.body_size, keys), 0);
    assert_false(keys->publishers_any);
    assert_int_equal(keys->publisher_count, 3); /* probe1, probe2 and the admin */
    assert_true(keys_has(keys->publishers, 3, f->keys[0]));
    assert_true(keys_has(keys->publishers, 3, f->keys[1]));
    assert_true(keys_has(keys->publishers, 3, f->keys[2]));
    assert_int_equal(keys->recipient_count, 2); /* console (listed and subscribed), admin */
    assert_true(keys_has(keys->recipients, 2, f->keys[4]));
    assert_true(keys_has(keys->recipients, 2, f->keys[0]));
    /* Under "*" only current subscriptions are recipients. */
    assert_int_equal(do_tagged(f, &f->a, 0, BRK_OP_CHANNEL_KEYS, "diag.alerts"), 0);
    assert_int_equal(brk_channel_keys_decode(f->res.body, f->res.body_size, keys), 0);
    assert_int_equal(keys->recipient_count, 0);
    assert_int_equal(do_tagged(f, &f->a, 2, BRK_OP_SUBSCRIBE, "diag.alerts"), 0);
    assert_int_equal(do_tagged(f, &f->a, 1, BRK_OP_SUBSCRIBE, "diag.alerts"), 0);
    assert_int_equal(do_tagged(f, &f->a, 0, BRK_OP_CHANNEL_KEYS, "diag.alerts"), 0);
    assert_int_equal(brk_channel_keys_decode(f->res.body, f->res.body_size, keys), 0);
    assert_int_equal(keys->recipient_count, 2);
    assert_true(memcmp(keys->recipients[0], keys->recipients[1], TRONE_KEY_LEN) < 0);
    assert_true(keys_has(keys->recipients, 2, f->keys[1]));
    assert_true(keys_has(keys->recipients, 2, f->keys[2]));
    assert_int_equal(do_tagged(f, &f->a, 2, BRK_OP_UNSUBSCRIBE, "diag.alerts"), 0);
    assert_int_equal(do_tagged(f, &f->a, 0, BRK_OP_CHANNEL_KEYS, "diag.alerts"), 0);
    assert_int_equal(brk_channel_keys_decode(f->res.body, f->res.body_size, keys), 0);
    assert_int_equal(keys->recipient_count, 1);
    /* Refusals, and a strict decoder: trailing bytes and unsorted lists are refused. */
    assert_int_equal(do_tagged(f, &f->a, 9, BRK_OP_CHANNEL_KEYS, "os.metrics"), TRONE_EPERM);
    assert_int_equal(do_tagged(f, &f->a, 1, BRK_OP_CHANNEL_KEYS, "none"), TRONE_ENOENT);
    struct buf body = {0};
    keys->recipient_count = 2;
    memcpy(keys->recipients[0], f->keys[1], TRONE_KEY_LEN);
    memcpy(keys->recipients[1], f->keys[1], TRONE_KEY_LEN);
    keys->recipients[1][31] ^= 1;
    bool ordered = memcmp(keys->recipients[0], keys->recipients[1], TRONE_KEY_LEN) < 0;
    if (!ordered) {
        memcpy(keys->recipients[1], keys->recipients[0], TRONE_KEY_LEN);
        memcpy(keys->recipients[0], f->keys[1], TRONE_KEY_LEN);
        keys->recipients[0][31] ^= 1;
    }
    brk_channel_keys_put(&body, keys);
    assert_int_equal(body.error, 0);
    assert_int_equal(brk_channel_keys_decode(body.data, body.used, keys), 0);
    assert_int_equal(brk_channel_keys_decode(body.data, body.used - 1, keys), TRONE_EBADMSG);
    buf_put_u8(&body, 0);
    assert_int_equal(brk_channel_keys_decode(body.data, body.used, keys), TRONE_EBADMSG);
    body.used--;
    size_t last = body.used - 2 * TRONE_KEY_LEN;
    uint8_t tmp[TRONE_KEY_LEN];
    memcpy(tmp, body.data + last, TRONE_KEY_LEN);
    memcpy(body.data + last, body.data + last + TRONE_KEY_LEN, TRONE_KEY_LEN);
    memcpy(body.data + last + TRONE_KEY_LEN, tmp, TRONE_KEY_LEN);
    assert_int_equal(brk_channel_keys_decode(body.data, body.used, keys), TRONE_EBADMSG);
    buf_close(&body);
    free(keys);
}

/* Two tables given the same ops have the same digest, even when independent registrations
 * came in another order; every change moves the digest. */
static void test_digest(void **state)
{
    struct fixture *f = *state;
    populate(f, &f->a);
    assert_int_equal(do_register(f, &f->b, 0, "console", 4), 0);
    assert_int_equal(do_register(f, &f->b, 0, "probe3", 3), 0);
    assert_int_equal(do_register(f, &f->b, 0, "probe2", 2), 0);
    assert_int_equal(do_register(f, &f->b, 0, "probe1", 1), 0);
    assert_int_equal(do_create(f, &f->b, 0, "diag.alerts", "bft,total,pks,urgency=7,durable",
                               "probe3", "*"),
                     0);
    assert_int_equal(do_create(f, &f->b, 0, "os.metrics", "cft,fifo", "probe2,probe1",
                               "console"),
                     0);
    uint8_t da[TRONE_HASH_LEN];
    uint8_t db[TRONE_HASH_LEN];
    digest(&f->a, da);
    digest(&f->b, db);
    assert_memory_equal(da, db, TRONE_HASH_LEN);
    /* Each successful change makes the digest differ from before. */
    uint8_t prev[TRONE_HASH_LEN];
    memcpy(prev, da, sizeof(prev));
    for (int step = 0; step < 5; step++) {
        int status = step == 0   ? do_tagged(f, &f->a, 4, BRK_OP_SUBSCRIBE, "os.metrics")
                     : step == 1 ? do_register(f, &f->a, 0, "late", 5)
                     : step == 2 ? do_create(f, &f->a, 0, "net.paths", "", "late", "")
                     : step == 3 ? do_tagged(f, &f->a, 4, BRK_OP_UNSUBSCRIBE, "os.metrics")
                                 : do_tagged(f, &f->a, 0, BRK_OP_CHANNEL_DELETE, "net.paths");
        assert_int_equal(status, 0);
        digest(&f->a, da);
        assert_memory_not_equal(prev, da, TRONE_HASH_LEN);
        memcpy(prev, da, sizeof(prev));
    }
    /* A class change alone moves it too. */
    brk_op_init(f->op, BRK_OP_CHANNEL_ALTER);
    assert_int_equal(brk_op_set_tag(f->op, "os.metrics"), 0);
    f->op->has_class = true;
    assert_int_equal(brk_class_parse(&f->op->cls, "cft,fifo,durable", NULL, 0), 0);
    assert_int_equal(run(f, &f->a, 0), 0);
    digest(&f->a, da);
    assert_memory_not_equal(prev, da, TRONE_HASH_LEN);
}

/* A snapshot restored into another table gives the same digest and the same behaviour. */
static void test_snapshot_restore(void **state)
{
    struct fixture *f = *state;
    populate(f, &f->a);
    assert_int_equal(do_tagged(f, &f->a, 4, BRK_OP_SUBSCRIBE, "os.metrics"), 0);
    assert_int_equal(do_tagged(f, &f->a, 2, BRK_OP_SUBSCRIBE, "diag.alerts"), 0);
    struct buf snap;
    buf_init(&snap, 0);
    assert_int_equal(brk_table_snapshot(&f->a, &snap), 0);
    assert_int_equal(brk_table_restore(&f->b, snap.data, snap.used), 0);
    uint8_t da[TRONE_HASH_LEN];
    uint8_t db[TRONE_HASH_LEN];
    digest(&f->a, da);
    digest(&f->b, db);
    assert_memory_equal(da, db, TRONE_HASH_LEN);
    /* The same ops give the same results on both. */
    assert_int_equal(do_register(f, &f->a, 0, "probe9", 9), 0);
    assert_int_equal(do_register(f, &f->b, 0, "probe9", 9), 0);
    assert_int_equal(do_tagged(f, &f->a, 9, BRK_OP_SUBSCRIBE, "diag.alerts"), 0);
    assert_int_equal(do_tagged(f, &f->b, 9, BRK_OP_SUBSCRIBE, "diag.alerts"), 0);
    assert_int_equal(do_tagged(f, &f->b, 1, BRK_OP_SUBSCRIBE, "os.metrics"), TRONE_EPERM);
    assert_true(brk_table_may_publish(&f->b, "os.metrics", f->keys[2]));
    digest(&f->a, da);
    digest(&f->b, db);
    assert_memory_equal(da, db, TRONE_HASH_LEN);
    /* A table with another admin refuses the snapshot. */
    struct brk_table other;
    assert_int_equal(brk_table_init(&other, f->keys[5]), 0);
    assert_int_equal(brk_table_restore(&other, snap.data, snap.used), TRONE_ECORRUPT);
    assert_int_equal(brk_table_client_count(&other), 1);
    brk_table_close(&other);
    buf_close(&snap);
}

/* Restores reuse the old arrays as a spare: a table whose old state had deleted channels
 * (holes among its slots) still restores exactly, and keeps working afterwards. */
static void test_restore_reuses_spare(void **state)
{
    struct fixture *f = *state;
    populate(f, &f->a);
    assert_int_equal(do_create(f, &f->a, 0, "net.paths", "", "probe3", "console"), 0);
    assert_int_equal(do_tagged(f, &f->a, 4, BRK_OP_SUBSCRIBE, "net.paths"), 0);
    assert_int_equal(do_tagged(f, &f->a, 0, BRK_OP_CHANNEL_DELETE, "diag.alerts"), 0);
    uint8_t original[TRONE_HASH_LEN];
    uint8_t now[TRONE_HASH_LEN];
    digest(&f->a, original);
    struct buf full;
    struct buf empty;
    buf_init(&full, 0);
    buf_init(&empty, 0);
    assert_int_equal(brk_table_snapshot(&f->a, &full), 0);
    assert_int_equal(brk_table_snapshot(&f->b, &empty), 0);
    for (int round = 0; round < 3; round++) {
        assert_int_equal(brk_table_restore(&f->a, empty.data, empty.used), 0);
        assert_int_equal(brk_table_channel_count(&f->a), 0);
        assert_null(brk_table_find_channel(&f->a, "os.metrics"));
        assert_int_equal(brk_table_restore(&f->a, full.data, full.used), 0);
        digest(&f->a, now);
        assert_memory_equal(original, now, TRONE_HASH_LEN);
    }
    assert_int_equal(do_create(f, &f->a, 0, "diag.alerts", "", "", "*"), 0);
    assert_int_equal(do_tagged(f, &f->a, 1, BRK_OP_SUBSCRIBE, "diag.alerts"), 0);
    assert_int_equal(brk_table_channel_count(&f->a), 3);
    assert_true(brk_table_may_subscribe(&f->a, "net.paths", f->keys[4]));
    buf_close(&full);
    buf_close(&empty);
}

/* Any corruption of a snapshot is either refused with the table unchanged, or (when the bytes
 * still describe a valid table) restored so that its snapshot is exactly those bytes. */
static void test_restore_corrupt(void **state)
{
    struct fixture *f = *state;
    populate(f, &f->a);
    assert_int_equal(do_tagged(f, &f->a, 4, BRK_OP_SUBSCRIBE, "os.metrics"), 0);
    struct buf snap;
    struct buf again;
    buf_init(&snap, 0);
    buf_init(&again, 0);
    assert_int_equal(brk_table_snapshot(&f->a, &snap), 0);
    uint8_t before[TRONE_HASH_LEN];
    uint8_t after[TRONE_HASH_LEN];
    digest(&f->b, before);
    for (size_t size = 0; size < snap.used; size++) {
        assert_int_equal(brk_table_restore(&f->b, snap.data, size), TRONE_ECORRUPT);
    }
    uint8_t *bytes = malloc(snap.used + 1);
    assert_non_null(bytes);
    memcpy(bytes, snap.data, snap.used);
    bytes[snap.used] = 0;
    assert_int_equal(brk_table_restore(&f->b, bytes, snap.used + 1), TRONE_ECORRUPT);
    unsigned refused = 0;
    for (size_t i = 0; i < snap.used; i++) {
        for (unsigned bit = 0; bit < 8; bit++) {
            memcpy(bytes, snap.data, snap.used);
            bytes[i] ^= (uint8_t)(1u << bit);
            int err = brk_table_restore(&f->b, bytes, snap.used);
            if (err == 0) {
                buf_reset(&again);
                assert_int_equal(brk_table_snapshot(&f->b, &again), 0);
                assert_int_equal(again.used, snap.used);
                assert_memory_equal(again.data, bytes, snap.used);
                assert_int_equal(brk_table_restore(&f->b, snap.data, snap.used), 0);
            } else {
                assert_int_equal(err, TRONE_ECORRUPT);
                refused++;
            }
            digest(&f->b, after);
            if (err != 0) {
                /* After the first successful restore b holds a's state. */
                uint8_t da[TRONE_HASH_LEN];
                digest(&f->a, da);
                assert_true(memcmp(after, before, TRONE_HASH_LEN) == 0 ||
                            memcmp(after, da, TRONE_HASH_LEN) == 0);
            }
        }
    }
    assert_true(refused > snap.used); /* most flips are caught */
    /* A refused restore keeps the last good state. */
    assert_int_equal(brk_table_restore(&f->b, snap.data, snap.used), 0);
    bytes[0] = BRK_SNAPSHOT_VERSION + 1;
    assert_int_equal(brk_table_restore(&f->b, bytes, snap.used), TRONE_ECORRUPT);
    uint8_t da[TRONE_HASH_LEN];
    digest(&f->a, da);
    digest(&f->b, after);
    assert_memory_equal(da, after, TRONE_HASH_LEN);
    free(bytes);
    buf_close(&again);
    buf_close(&snap);
}

/* Bounded counts: members per list, subscriptions per channel, clients and channels. */
static void test_full(void **state)
{
    struct fixture *f = *state;
    char name[32];
    for (uint32_t i = 1; i < KEYS; i++) {
        snprintf(name, sizeof(name), "c%u", i);
        assert_int_equal(do_register(f, &f->a, 0, name, i), 0);
    }
    assert_int_equal(do_create(f, &f->a, 0, "wide", "", "", "*"), 0);
    for (uint32_t i = 1; i <= TRONE_CHANNEL_MEMBERS_MAX; i++) {
        assert_int_equal(do_tagged(f, &f->a, i, BRK_OP_SUBSCRIBE, "wide"), 0);
    }
    assert_int_equal(do_tagged(f, &f->a, TRONE_CHANNEL_MEMBERS_MAX + 1, BRK_OP_SUBSCRIBE,
                               "wide"),
                     TRONE_EFULL);
    /* ALTER adding one more publisher than fits. */
    brk_op_init(f->op, BRK_OP_CHANNEL_ALTER);
    assert_int_equal(brk_op_set_tag(f->op, "wide"), 0);
    for (uint32_t i = 1; i <= TRONE_CHANNEL_MEMBERS_MAX; i++) {
        snprintf(name, sizeof(name), "c%u", i);
        assert_int_equal(brk_name_list_add(&f->op->publishers, name), 0);
    }
    assert_int_equal(run(f, &f->a, 0), 0);
    brk_op_init(f->op, BRK_OP_CHANNEL_ALTER);
    assert_int_equal(brk_op_set_tag(f->op, "wide"), 0);
    assert_int_equal(brk_name_list_add(&f->op->publishers, "*"), 0);
    assert_int_equal(run(f, &f->a, 0), TRONE_EFULL);
    /* Channels up to the maximum. */
    for (uint32_t i = 1; i < TRONE_CHANNELS_MAX; i++) {
        snprintf(name, sizeof(name), "ch%05u", i);
        assert_int_equal(do_create(f, &f->a, 0, name, "", "", ""), 0);
    }
    assert_int_equal(do_create(f, &f->a, 0, "one-more", "", "", ""), TRONE_EFULL);
    assert_int_equal(brk_table_channel_count(&f->a), TRONE_CHANNELS_MAX);
    /* A full table still snapshots and restores. */
    struct buf snap;
    buf_init(&snap, 0);
    assert_int_equal(brk_table_snapshot(&f->a, &snap), 0);
    assert_int_equal(brk_table_restore(&f->b, snap.data, snap.used), 0);
    assert_int_equal(brk_table_channel_count(&f->b), TRONE_CHANNELS_MAX);
    buf_close(&snap);
}

/* The client table fills at TRONE_CLIENTS_MAX (the admin included). */
static void test_clients_full(void **state)
{
    struct fixture *f = *state;
    char name[32];
    uint8_t key[TRONE_KEY_LEN];
    brk_op_init(f->op, BRK_OP_REGISTER);
    for (uint32_t i = 1; i <= TRONE_CLIENTS_MAX; i++) {
        snprintf(name, sizeof(name), "c%u", i);
        key_make(key, 1000 + i);
        assert_int_equal(brk_op_set_register(f->op, name, key), 0);
        int expected = i < TRONE_CLIENTS_MAX ? 0 : TRONE_EFULL;
        assert_int_equal(run(f, &f->a, 0), expected);
    }
    assert_int_equal(brk_table_client_count(&f->a), TRONE_CLIENTS_MAX);
}

/* The smr_app glue reaches the table. */
static void test_app(void **state)
{
    struct fixture *f = *state;
    struct smr_app app;
    brk_table_app(&f->a, &app);
    assert_ptr_equal(app.ctx, &f->a);
    brk_op_init(f->op, BRK_OP_REGISTER);
    assert_int_equal(brk_op_set_register(f->op, "probe1", f->keys[1]), 0);
    buf_reset(&f->encoded);
    assert_int_equal(brk_op_encode(f->op, &f->encoded), 0);
    buf_reset(&f->result);
    app.execute(app.ctx, 7, f->keys[0], f->encoded.data, f->encoded.used, &f->result);
    assert_int_equal(brk_result_decode(f->result.data, f->result.used, &f->res), 0);
    assert_int_equal(f->res.status, 0);
    struct buf snap;
    buf_init(&snap, 0);
    assert_int_equal(app.snapshot(app.ctx, &snap), 0);
    assert_int_equal(app.restore(&f->b, snap.data, snap.used), 0);
    assert_non_null(brk_table_client_by_name(&f->b, "probe1"));
    buf_close(&snap);
}

/* ---- Total order ---- */

struct order_seen {
    uint32_t calls;
    struct brk_order_exec last;
    uint8_t publisher[TRONE_KEY_LEN];
};

static void order_hook(void *ctx, const struct brk_order_exec *o)
{
    struct order_seen *seen = ctx;
    seen->calls++;
    seen->last = *o;
    memcpy(seen->publisher, o->publisher, TRONE_KEY_LEN);
}

/* Executes ORDER(tag, epoch, first, count) as who; returns the status and, on 0, the first
 * position in *position. */
static int do_order(struct fixture *f, struct brk_table *t, uint32_t who, const char *tag,
                    uint64_t epoch, uint64_t first, uint32_t count, uint64_t *position)
{
    uint8_t digest[TRONE_HASH_LEN];
    memset(digest, (int)(first & 0xff), sizeof(digest));
    brk_op_init(f->op, BRK_OP_ORDER);
    assert_int_equal(brk_op_set_order(f->op, tag, epoch, first, count, digest), 0);
    int status = run(f, t, who);
    if (status == 0) {
        assert_int_equal(f->res.body_size, 8);
        *position = buf_load_u64(f->res.body);
    } else {
        assert_int_equal(f->res.body_size, 0);
    }
    return status;
}

/* ORDER assigns consecutive positions per channel across publishers, keeps each publisher's
 * ranges contiguous, refuses what it must, and tells the hook about every executed one. */
static void test_order_exec(void **state)
{
    struct fixture *f = *state;
    populate(f, &f->a);
    assert_int_equal(do_register(f, &f->a, 0, "probe4", 5), 0);
    brk_op_init(f->op, BRK_OP_CHANNEL_ALTER);
    assert_int_equal(brk_op_set_tag(f->op, "diag.alerts"), 0);
    assert_int_equal(brk_name_list_parse(&f->op->publishers, "probe4", NULL, 0), 0);
    assert_int_equal(run(f, &f->a, 0), 0);
    struct order_seen seen;
    memset(&seen, 0, sizeof(seen));
    brk_table_order_hook(&f->a, order_hook, &seen);
    uint64_t pos = 0;
    assert_int_equal(do_order(f, &f->a, 3, "diag.alerts", 7, 1, 3, &pos), 0);
    assert_true(pos == 1);
    assert_int_equal(do_order(f, &f->a, 5, "diag.alerts", 9, 40, 2, &pos), 0); /* any start */
    assert_true(pos == 4);
    assert_int_equal(do_order(f, &f->a, 3, "diag.alerts", 7, 4, 2, &pos), 0);
    assert_true(pos == 6);
    assert_int_equal(seen.calls, 3);
    assert_true(seen.last.first_position == 6 && seen.last.first_seq == 4);
    assert_true(seen.last.count == 2 && seen.last.epoch == 7);
    assert_string_equal(seen.last.tag, "diag.alerts");
    assert_memory_equal(seen.publisher, f->keys[3], TRONE_KEY_LEN);
    /* Refusals change nothing and are not told to the hook. */
    assert_int_equal(do_order(f, &f->a, 3, "diag.alerts", 7, 5, 2, &pos), TRONE_EINVAL);
    assert_int_equal(do_order(f, &f->a, 3, "diag.alerts", 7, 7, 1, &pos), TRONE_EINVAL);
    assert_int_equal(do_order(f, &f->a, 3, "diag.alerts", 7, 4, 2, &pos), TRONE_EEXIST);
    assert_int_equal(do_order(f, &f->a, 1, "diag.alerts", 1, 1, 1, &pos), TRONE_EPERM);
    assert_int_equal(do_order(f, &f->a, 1, "os.metrics", 1, 1, 1, &pos), TRONE_EINVAL);
    assert_int_equal(do_order(f, &f->a, 3, "no.such", 1, 1, 1, &pos), TRONE_ENOENT);
    assert_int_equal(do_order(f, &f->a, 200, "diag.alerts", 1, 1, 1, &pos), TRONE_EPERM);
    assert_int_equal(seen.calls, 3);
    /* A new epoch starts anywhere and continues the channel's positions. */
    assert_int_equal(do_order(f, &f->a, 3, "diag.alerts", 8, 1, 1, &pos), 0);
    assert_true(pos == 8);
    assert_int_equal(seen.calls, 4);
    /* Another process of the same key (an older epoch, 6) orders between them: each epoch
     * keeps its own contiguity (before, epoch 6 was refused as older than 8). */
    assert_int_equal(do_order(f, &f->a, 3, "diag.alerts", 6, 1, 2, &pos), 0);
    assert_true(pos == 9);
    assert_int_equal(do_order(f, &f->a, 3, "diag.alerts", 7, 6, 1, &pos), 0);
    assert_true(pos == 11);
    assert_int_equal(do_order(f, &f->a, 3, "diag.alerts", 8, 2, 1, &pos), 0);
    assert_int_equal(do_order(f, &f->a, 3, "diag.alerts", 6, 3, 1, &pos), 0);
    assert_int_equal(do_order(f, &f->a, 3, "diag.alerts", 6, 3, 1, &pos), TRONE_EEXIST);
    assert_int_equal(do_order(f, &f->a, 3, "diag.alerts", 7, 8, 1, &pos), TRONE_EINVAL);
    assert_int_equal(seen.calls, 8);
}

/* The order state is in the snapshot and the digest: a restored table continues the positions
 * and the contiguity checks exactly as the original, and the hook survives restores. */
static void test_order_snapshot(void **state)
{
    struct fixture *f = *state;
    populate(f, &f->a);
    uint64_t pos = 0;
    uint8_t before[TRONE_HASH_LEN];
    uint8_t da[TRONE_HASH_LEN];
    uint8_t db[TRONE_HASH_LEN];
    digest(&f->a, before);
    assert_int_equal(do_order(f, &f->a, 3, "diag.alerts", 7, 1, 3, &pos), 0);
    digest(&f->a, da);
    assert_memory_not_equal(before, da, TRONE_HASH_LEN);
    struct order_seen seen;
    memset(&seen, 0, sizeof(seen));
    brk_table_order_hook(&f->b, order_hook, &seen);
    struct buf snap;
    buf_init(&snap, 0);
    assert_int_equal(brk_table_snapshot(&f->a, &snap), 0);
    assert_int_equal(brk_table_restore(&f->b, snap.data, snap.used), 0);
    digest(&f->b, db);
    assert_memory_equal(da, db, TRONE_HASH_LEN);
    assert_int_equal(do_order(f, &f->b, 3, "diag.alerts", 7, 1, 3, &pos), TRONE_EEXIST);
    assert_int_equal(do_order(f, &f->b, 3, "diag.alerts", 7, 4, 1, &pos), 0);
    assert_true(pos == 4);
    assert_int_equal(seen.calls, 1);
    assert_int_equal(do_order(f, &f->a, 3, "diag.alerts", 7, 4, 1, &pos), 0);
    digest(&f->a, da);
    digest(&f->b, db);
    assert_memory_equal(da, db, TRONE_HASH_LEN);
    /* Any byte of the order state changed is refused or gives another digest; truncations
     * are refused. */
    for (size_t size = 1; size < snap.used; size++) {
        assert_int_equal(brk_table_restore(&f->b, snap.data, size), TRONE_ECORRUPT);
    }
    buf_close(&snap);
}

/* A channel remembers BRK_ORDER_FLOORS_MAX publishers; the one that ordered least recently
 * is forgotten first, the same way on every replica. */
static void test_order_floors_bound(void **state)
{
    struct fixture *f = *state;
    char name[16];
    for (uint32_t i = 1; i <= BRK_ORDER_FLOORS_MAX + 1; i++) {
        snprintf(name, sizeof(name), "pub%u", i);
        assert_int_equal(do_register(f, &f->a, 0, name, i), 0);
        assert_int_equal(do_register(f, &f->b, 0, name, i), 0);
    }
    assert_int_equal(do_create(f, &f->a, 0, "t", "cft,total", "*", "*"), 0);
    uint64_t pos = 0;
    for (uint32_t i = 1; i <= BRK_ORDER_FLOORS_MAX + 1; i++) {
        assert_int_equal(do_order(f, &f->a, i, "t", 1, 1, 1, &pos), 0);
        assert_true(pos == i);
    }
    /* pub1 was forgotten: its next range counts as a new start (and forgets pub2, now the
     * least recent); pub3 is still known. */
    assert_int_equal(do_order(f, &f->a, 1, "t", 1, 5, 1, &pos), 0);
    assert_int_equal(do_order(f, &f->a, 3, "t", 1, 5, 1, &pos), TRONE_EINVAL);
    const struct brk_channel *ch = brk_table_find_channel(&f->a, "t");
    assert_int_equal(ch->floor_count, BRK_ORDER_FLOORS_MAX);
    struct buf snap;
    buf_init(&snap, 0);
    assert_int_equal(brk_table_snapshot(&f->a, &snap), 0);
    assert_int_equal(brk_table_restore(&f->b, snap.data, snap.used), 0);
    uint64_t pos_b = 0;
    assert_int_equal(do_order(f, &f->b, 3, "t", 1, 5, 1, &pos_b), TRONE_EINVAL);
    assert_int_equal(do_order(f, &f->b, 2, "t", 1, 9, 1, &pos_b), 0); /* forgotten */
    assert_int_equal(do_order(f, &f->a, 2, "t", 1, 9, 1, &pos), 0);
    assert_true(pos == pos_b && pos == BRK_ORDER_FLOORS_MAX + 3);
    buf_close(&snap);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_admin_only, setup, teardown),
        cmocka_unit_test_setup_teardown(test_register_duplicates, setup, teardown),
        cmocka_unit_test_setup_teardown(test_subscribe_rules, setup, teardown),
        cmocka_unit_test_setup_teardown(test_delete, setup, teardown),
        cmocka_unit_test_setup_teardown(test_alter, setup, teardown),
        cmocka_unit_test_setup_teardown(test_show_list, setup, teardown),
        cmocka_unit_test_setup_teardown(test_channel_keys, setup, teardown),
        cmocka_unit_test_setup_teardown(test_digest, setup, teardown),
        cmocka_unit_test_setup_teardown(test_snapshot_restore, setup, teardown),
        cmocka_unit_test_setup_teardown(test_restore_reuses_spare, setup, teardown),
        cmocka_unit_test_setup_teardown(test_restore_corrupt, setup, teardown),
        cmocka_unit_test_setup_teardown(test_full, setup, teardown),
        cmocka_unit_test_setup_teardown(test_clients_full, setup, teardown),
        cmocka_unit_test_setup_teardown(test_app, setup, teardown),
        cmocka_unit_test_setup_teardown(test_order_exec, setup, teardown),
        cmocka_unit_test_setup_teardown(test_order_snapshot, setup, teardown),
        cmocka_unit_test_setup_teardown(test_order_floors_bound, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
