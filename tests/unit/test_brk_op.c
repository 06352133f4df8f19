/* test_brk_op.c: control operation codec, CLI builders, results and channel descriptions
 * (brk_op.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "broker/brk_op.h"

/* ---- Fixture: two heap ops (each about 66 KiB) and an output buffer ---- */

struct fixture {
    struct brk_op *op;
    struct brk_op *decoded;
    struct buf out;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    f->op = calloc(1, sizeof(*f->op));
    f->decoded = calloc(1, sizeof(*f->decoded));
    assert_non_null(f->op);
    assert_non_null(f->decoded);
    buf_init(&f->out, 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    buf_close(&f->out);
    free(f->op);
    free(f->decoded);
    free(f);
    return 0;
}

/* ---- Helpers ---- */

/* Encodes f->op, decodes it, and checks the decoded op equals the original byte for byte. */
static void round_trip(struct fixture *f)
{
    buf_reset(&f->out);
    assert_int_equal(brk_op_encode(f->op, &f->out), 0);
    assert_int_equal(f->out.data[0], BRK_OP_VERSION);
    assert_int_equal(f->out.data[1], f->op->kind);
    assert_int_equal(brk_op_decode(f->out.data, f->out.used, f->decoded), 0);
    assert_memory_equal(f->op, f->decoded, sizeof(*f->op));
}

static void add_names(struct brk_name_list *list, const char *text)
{
    char errmsg[128];
    int err = brk_name_list_parse(list, text, errmsg, sizeof(errmsg));
    if (err != 0) {
        fail_msg("names '%s': %s", text, errmsg);
    }
}

static void build_alter(struct fixture *f)
{
    brk_op_init(f->op, BRK_OP_CHANNEL_ALTER);
    assert_int_equal(brk_op_set_tag(f->op, "os.metrics"), 0);
    f->op->has_class = true;
    assert_int_equal(brk_class_parse(&f->op->cls, "bft,urgency=2", NULL, 0), 0);
    add_names(&f->op->publishers, "probe3");
    add_names(&f->op->publishers_removed, "probe1,probe2");
    add_names(&f->op->subscribers, "*");
    add_names(&f->op->subscribers_removed, "console");
}

/* ---- Scenarios ---- */

/* Every kind of op survives encode and decode unchanged. */
static void test_round_trip_every_kind(void **state)
{
    struct fixture *f = *state;
    uint8_t key[TRONE_KEY_LEN];
    memset(key, 0xab, sizeof(key));
    brk_op_init(f->op, BRK_OP_REGISTER);
    assert_int_equal(brk_op_set_register(f->op, "probe-1", key), 0);
    round_trip(f);

    brk_op_init(f->op, BRK_OP_CHANNEL_CREATE);
    assert_int_equal(brk_op_set_tag(f->op, "os.metrics"), 0);
    assert_int_equal(brk_class_parse(&f->op->cls, "bft,total,pks,urgency=7,durable", NULL, 0),
                     0);
    add_names(&f->op->publishers, "probe1,probe2,admin");
    add_names(&f->op->subscribers, "*");
    round_trip(f);

    build_alter(f);
    round_trip(f);
    f->op->has_class = false;
    brk_class_default(&f->op->cls);
    round_trip(f);

    const enum brk_op_kind tagged[] = {BRK_OP_CHANNEL_DELETE, BRK_OP_SUBSCRIBE,
                                       BRK_OP_UNSUBSCRIBE, BRK_OP_CHANNEL_SHOW,
                                       BRK_OP_CHANNEL_LIST};
    for (unsigned i = 0; i < sizeof(tagged) / sizeof(tagged[0]); i++) {
        brk_op_init(f->op, tagged[i]);
        assert_int_equal(brk_op_set_tag(f->op, "diag.alerts_2"), 0);
        round_trip(f);
    }
    /* CHANNEL_LIST may have an empty "after" tag; the others may not. */
    brk_op_init(f->op, BRK_OP_CHANNEL_LIST);
    round_trip(f);
    brk_op_init(f->op, BRK_OP_CHANNEL_SHOW);
    buf_reset(&f->out);
    assert_int_equal(brk_op_encode(f->op, &f->out), TRONE_EINVAL);
    assert_int_equal(f->out.used, 0);
}

/* Every proper prefix of a valid op, and the op with a trailing byte, is refused. */
static void test_truncated_and_trailing(void **state)
{
    struct fixture *f = *state;
    build_alter(f);
    buf_reset(&f->out);
    assert_int_equal(brk_op_encode(f->op, &f->out), 0);
    for (size_t size = 0; size < f->out.used; size++) {
        assert_int_equal(brk_op_decode(f->out.data, size, f->decoded), TRONE_EBADMSG);
    }
    buf_put_u8(&f->out, 0);
    assert_int_equal(brk_op_decode(f->out.data, f->out.used, f->decoded), TRONE_EBADMSG);
    /* A refused decode leaves a zeroed op. */
    assert_int_equal(f->decoded->kind, 0);
    assert_int_equal(f->decoded->publishers.count, 0);
}

/* Bad version, bad kind, bad characters, empty tags, duplicates and oversized counts. */
static void test_bad_fields(void **state)
{
    struct fixture *f = *state;
    brk_op_init(f->op, BRK_OP_SUBSCRIBE);
    assert_int_equal(brk_op_set_tag(f->op, "abc"), 0);
    buf_reset(&f->out);
    assert_int_equal(brk_op_encode(f->op, &f->out), 0);
    uint8_t bytes[16];
    memcpy(bytes, f->out.data, f->out.used);
    size_t size = f->out.used;
    assert_int_equal(brk_op_decode(bytes, size, f->decoded), 0);
    bytes[0] = BRK_OP_VERSION + 1;
    assert_int_equal(brk_op_decode(bytes, size, f->decoded), TRONE_EBADMSG);
    bytes[0] = BRK_OP_VERSION;
    bytes[1] = 0;
    assert_int_equal(brk_op_decode(bytes, size, f->decoded), TRONE_EBADMSG);
    bytes[1] = BRK_OP_CHANNEL_KEYS + 1;
    assert_int_equal(brk_op_decode(bytes, size, f->decoded), TRONE_EBADMSG);
    bytes[1] = BRK_OP_SUBSCRIBE;
    bytes[4] = '/'; /* tag "/bc" */
    assert_int_equal(brk_op_decode(bytes, size, f->decoded), TRONE_EBADMSG);
    bytes[4] = '\0'; /* a NUL inside a string */
    assert_int_equal(brk_op_decode(bytes, size, f->decoded), TRONE_EBADMSG);
    /* Empty tag for SUBSCRIBE: version, kind, u16 0. */
    const uint8_t empty[] = {BRK_OP_VERSION, BRK_OP_SUBSCRIBE, 0, 0};
    assert_int_equal(brk_op_decode(empty, sizeof(empty), f->decoded), TRONE_EBADMSG);
    /* Duplicate member in a CREATE list, written by hand. */
    struct buf b;
    buf_init(&b, 0);
    buf_put_u8(&b, BRK_OP_VERSION);
    buf_put_u8(&b, BRK_OP_CHANNEL_CREATE);
    buf_put_str(&b, "t");
    struct brk_class cls;
    brk_class_default(&cls);
    brk_class_encode(&cls, &b);
    size_t list_at = b.used;
    buf_put_u16(&b, 2);
    buf_put_str(&b, "x");
    buf_put_str(&b, "x");
    buf_put_u16(&b, 0);
    assert_int_equal(brk_op_decode(b.data, b.used, f->decoded), TRONE_EBADMSG);
    /* A count above the members maximum is refused before any name is read. */
    b.data[list_at] = (uint8_t)((TRONE_CHANNEL_MEMBERS_MAX + 1) & 0xff);
    b.data[list_at + 1] = (uint8_t)((TRONE_CHANNEL_MEMBERS_MAX + 1) >> 8);
    assert_int_equal(brk_op_decode(b.data, b.used, f->decoded), TRONE_EBADMSG);
    buf_close(&b);
    /* Encoding refuses invalid fields. */
    brk_op_init(f->op, BRK_OP_CHANNEL_CREATE);
    assert_int_equal(brk_op_set_tag(f->op, "bad tag"), TRONE_EINVAL);
    memcpy(f->op->tag, "t", 2);
    f->op->cls.urgency = 9;
    assert_int_equal(brk_op_encode(f->op, &f->out), TRONE_EINVAL);
}

/* Tags and names accept exactly their character set and length range. */
static void test_tags_and_names(void **state)
{
    (void)state;
    char text[TRONE_TAG_MAX + 2];
    memset(text, 'a', sizeof(text));
    text[TRONE_TAG_MAX] = '\0';
    assert_true(brk_tag_valid(text));
    text[TRONE_TAG_MAX] = 'a';
    text[TRONE_TAG_MAX + 1] = '\0';
    assert_false(brk_tag_valid(text));
    text[TRONE_NAME_MAX] = '\0';
    assert_true(brk_name_valid(text));
    text[TRONE_NAME_MAX] = 'a';
    text[TRONE_NAME_MAX + 1] = '\0';
    assert_false(brk_name_valid(text));
    assert_true(brk_tag_valid("A-z_0.9"));
    assert_false(brk_tag_valid(""));
    assert_false(brk_tag_valid("a b"));
    assert_false(brk_tag_valid("*"));
    assert_false(brk_name_valid("*"));
    assert_true(brk_member_valid("*"));
    assert_false(brk_member_valid("**"));
    assert_false(brk_name_valid("caf\xc3\xa9"));
}

/* An op larger than TRONE_OP_MAX is refused by the encoder and by the decoder. */
static void test_oversized(void **state)
{
    struct fixture *f = *state;
    brk_op_init(f->op, BRK_OP_CHANNEL_ALTER);
    assert_int_equal(brk_op_set_tag(f->op, "big"), 0);
    struct brk_name_list *lists[4] = {&f->op->publishers, &f->op->publishers_removed,
                                      &f->op->subscribers, &f->op->subscribers_removed};
    for (unsigned l = 0; l < 4; l++) {
        for (unsigned i = 0; i < TRONE_CHANNEL_MEMBERS_MAX; i++) {
            char name[TRONE_NAME_MAX + 1];
            memset(name, 'n', TRONE_NAME_MAX);
            name[0] = (char)('0' + l);
            name[1] = (char)('0' + i / 100);
            name[2] = (char)('0' + i / 10 % 10);
            name[3] = (char)('0' + i % 10);
            name[TRONE_NAME_MAX] = '\0';
            assert_int_equal(brk_name_list_add(lists[l], name), 0);
        }
    }
    char extra[] = "extra";
    assert_int_equal(brk_name_list_add(lists[0], extra), TRONE_EFULL);
    buf_reset(&f->out);
    assert_int_equal(brk_op_encode(f->op, &f->out), TRONE_ETOOBIG);
    assert_int_equal(f->out.used, 0);
    uint8_t *big = calloc(1, TRONE_OP_MAX + 1);
    assert_non_null(big);
    big[0] = BRK_OP_VERSION;
    big[1] = BRK_OP_CHANNEL_LIST;
    assert_int_equal(brk_op_decode(big, TRONE_OP_MAX + 1, f->decoded), TRONE_ETOOBIG);
    free(big);
}

/* The CLI's comma lists: good lists, repeated, invalid and trailing-comma items. */
static void test_name_list_parse(void **state)
{
    (void)state;
    struct brk_name_list *list = calloc(1, sizeof(*list));
    assert_non_null(list);
    char errmsg[128];
    assert_int_equal(brk_name_list_parse(list, "a,b.c,*", errmsg, sizeof(errmsg)), 0);
    assert_int_equal(list->count, 3);
    assert_string_equal(list->names[2], "*");
    assert_true(brk_name_list_contains(list, "b.c"));
    assert_int_equal(brk_name_list_parse(list, "d,a", errmsg, sizeof(errmsg)), TRONE_EEXIST);
    assert_non_null(strstr(errmsg, "'a'"));
    assert_int_equal(brk_name_list_parse(list, "e f", errmsg, sizeof(errmsg)), TRONE_EINVAL);
    assert_non_null(strstr(errmsg, "'e f'"));
    assert_int_equal(brk_name_list_parse(list, "g,", errmsg, sizeof(errmsg)), TRONE_EINVAL);
    assert_int_equal(brk_name_list_parse(list, ",h", errmsg, sizeof(errmsg)), TRONE_EINVAL);
    assert_int_equal(brk_name_list_parse(list, "", errmsg, sizeof(errmsg)), 0);
    free(list);
}

/* Results: header round trip, refusal of bad statuses and messages, and channel bodies. */
static void test_results(void **state)
{
    struct fixture *f = *state;
    struct brk_result res;
    buf_reset(&f->out);
    brk_result_put(&f->out, TRONE_EPERM, "only the admin may register");
    assert_int_equal(brk_result_decode(f->out.data, f->out.used, &res), 0);
    assert_int_equal(res.status, TRONE_EPERM);
    assert_string_equal(res.message, "only the admin may register");
    assert_int_equal(res.body_size, 0);
    for (size_t size = 0; size < 6; size++) {
        assert_int_equal(brk_result_decode(f->out.data, size, &res), TRONE_EBADMSG);
    }
    buf_reset(&f->out);
    brk_result_put(&f->out, -1000, "x");
    assert_int_equal(brk_result_decode(f->out.data, f->out.used, &res), TRONE_EBADMSG);
    buf_reset(&f->out);
    brk_result_put(&f->out, 0, "bell\a");
    assert_int_equal(brk_result_decode(f->out.data, f->out.used, &res), TRONE_EBADMSG);
}

static void fill_info(struct brk_channel_info *info)
{
    memset(info, 0, sizeof(*info));
    memcpy(info->tag, "os.metrics", 11);
    assert_int_equal(brk_class_parse(&info->cls, "bft,total,pks,urgency=7,durable", NULL, 0), 0);
    add_names(&info->publishers, "probe1,probe2");
    add_names(&info->subscribers, "*");
    add_names(&info->subscribed, "console");
}

/* A channel body decodes to what was put, and formats for humans and JSON. */
static void test_channel_body(void **state)
{
    struct fixture *f = *state;
    struct brk_channel_info *info = calloc(2, sizeof(*info));
    assert_non_null(info);
    fill_info(&info[0]);
    buf_reset(&f->out);
    buf_put_u32(&f->out, 1);
    brk_channel_info_put(&f->out, &info[0]);
    buf_put_u8(&f->out, 1);
    struct brk_channel_iter it;
    assert_int_equal(brk_channel_iter_init(&it, f->out.data, f->out.used), 0);
    assert_int_equal(brk_channel_iter_next(&it, &info[1]), 1);
    assert_memory_equal(&info[0], &info[1], sizeof(info[0]));
    assert_int_equal(brk_channel_iter_next(&it, &info[1]), 0);
    assert_true(it.more);
    /* Truncated bodies are refused somewhere along the walk, never read past the end. */
    for (size_t size = 0; size < f->out.used; size++) {
        int err = brk_channel_iter_init(&it, f->out.data, size);
        int got = err == 0 ? brk_channel_iter_next(&it, &info[1]) : err;
        if (got == 1) {
            got = brk_channel_iter_next(&it, &info[1]);
        }
        assert_int_equal(got, TRONE_EBADMSG);
    }
    struct buf text;
    buf_init(&text, 0);
    brk_channel_info_format(&info[0], &text);
    buf_put_u8(&text, 0);
    assert_string_equal((char *)text.data, "channel os.metrics\n"
                                           "  class        bft,total,pks,urgency=7,durable\n"
                                           "  publishers   probe1 probe2\n"
                                           "  subscribers  *\n"
                                           "  subscribed   console\n");
    buf_reset(&text);
    brk_channel_info_json(&info[0], &text);
    buf_put_u8(&text, 0);
    assert_string_equal((char *)text.data,
                        "{\"tag\":\"os.metrics\",\"class\":\"bft,total,pks,urgency=7,durable\","
                        "\"fault\":\"bft\",\"order\":\"total\",\"method\":\"pks\",\"urgency\":7,"
                        "\"durable\":true,\"publishers\":[\"probe1\",\"probe2\"],"
                        "\"subscribers\":[\"*\"],\"subscribed\":[\"console\"]}");
    /* The longest class text (every retention item at its largest) fits the JSON too
     * (fuzz_brk_op found it overflowing a fixed buffer). */
    assert_int_equal(brk_class_parse(&info[0].cls,
                                     "bft,total,pke,urgency=7,durable,retain=3162239999s,"
                                     "retain-bytes=1125899906842623",
                                     NULL, 0),
                     0);
    buf_reset(&text);
    brk_channel_info_json(&info[0], &text);
    buf_put_u8(&text, 0);
    assert_non_null(strstr((char *)text.data, "retain-bytes="));
    buf_close(&text);
    free(info);
}

/* ORDER: round trip; the builder and the encoder refuse empty, oversized, zero-based or
 * wrapping ranges; the decoder refuses them too, and every truncation. */
static void test_order(void **state)
{
    struct fixture *f = *state;
    uint8_t digest[TRONE_HASH_LEN];
    memset(digest, 0x3c, sizeof(digest));
    brk_op_init(f->op, BRK_OP_ORDER);
    assert_int_equal(brk_op_set_order(f->op, "alerts", 17, 5, BRK_ORDER_COUNT_MAX, digest), 0);
    round_trip(f);
    assert_true(f->decoded->epoch == 17 && f->decoded->first_seq == 5);
    assert_int_equal(f->decoded->count, BRK_ORDER_COUNT_MAX);
    size_t good = f->out.used;
    for (size_t size = 0; size < good; size++) {
        assert_int_equal(brk_op_decode(f->out.data, size, f->decoded), TRONE_EBADMSG);
    }
    /* Field by field: count sits after the tag (2 + 6), epoch and first seq. */
    size_t count_at = 2 + 2 + 6 + 8 + 8;
    uint32_t bad_counts[] = {0, BRK_ORDER_COUNT_MAX + 1};
    for (unsigned i = 0; i < 2; i++) {
        buf_store_u32(f->out.data + count_at, bad_counts[i]);
        assert_int_equal(brk_op_decode(f->out.data, good, f->decoded), TRONE_EBADMSG);
    }
    buf_store_u32(f->out.data + count_at, 2);
    buf_store_u64(f->out.data + count_at - 8, UINT64_MAX); /* seq UINT64_MAX + 1 wraps */
    assert_int_equal(brk_op_decode(f->out.data, good, f->decoded), TRONE_EBADMSG);
    buf_store_u64(f->out.data + count_at - 8, 0);
    assert_int_equal(brk_op_decode(f->out.data, good, f->decoded), TRONE_EBADMSG);
    buf_store_u64(f->out.data + count_at - 8, 1);
    buf_store_u64(f->out.data + count_at - 16, 0); /* epoch 0 */
    assert_int_equal(brk_op_decode(f->out.data, good, f->decoded), TRONE_EBADMSG);
    /* The builder refuses the same; encoding a hand-made bad op too. */
    assert_int_equal(brk_op_set_order(f->op, "alerts", 0, 1, 1, digest), TRONE_EINVAL);
    assert_int_equal(brk_op_set_order(f->op, "alerts", 1, 0, 1, digest), TRONE_EINVAL);
    assert_int_equal(brk_op_set_order(f->op, "alerts", 1, 1, 0, digest), TRONE_EINVAL);
    assert_int_equal(brk_op_set_order(f->op, "alerts", 1, UINT64_MAX, 1, digest), TRONE_EINVAL);
    assert_int_equal(brk_op_set_order(f->op, "bad tag", 1, 1, 1, digest), TRONE_EINVAL);
    f->op->count = 0;
    buf_reset(&f->out);
    assert_int_equal(brk_op_encode(f->op, &f->out), TRONE_EINVAL);
    assert_string_equal(brk_op_kind_name(BRK_OP_ORDER), "order");
}

/* The range digest depends on every hash and on their order. */
static void test_order_digest(void **state)
{
    (void)state;
    uint8_t hashes[3][TRONE_HASH_LEN];
    const uint8_t events[3][4] = {{1, 2, 3, 4}, {5, 6, 7, 8}, {1, 2, 3, 5}};
    for (unsigned i = 0; i < 3; i++) {
        brk_order_event_hash(hashes[i], events[i], sizeof(events[i]));
    }
    assert_memory_not_equal(hashes[0], hashes[2], TRONE_HASH_LEN);
    uint8_t a[TRONE_HASH_LEN];
    uint8_t b[TRONE_HASH_LEN];
    uint8_t c[TRONE_HASH_LEN];
    brk_order_digest(a, (const uint8_t(*)[TRONE_HASH_LEN])hashes, 2);
    brk_order_digest(b, (const uint8_t(*)[TRONE_HASH_LEN])hashes, 2);
    assert_memory_equal(a, b, TRONE_HASH_LEN);
    uint8_t swapped[2][TRONE_HASH_LEN];
    memcpy(swapped[0], hashes[1], TRONE_HASH_LEN);
    memcpy(swapped[1], hashes[0], TRONE_HASH_LEN);
    brk_order_digest(c, (const uint8_t(*)[TRONE_HASH_LEN])swapped, 2);
    assert_memory_not_equal(a, c, TRONE_HASH_LEN);
    brk_order_digest(c, (const uint8_t(*)[TRONE_HASH_LEN])hashes, 3);
    assert_memory_not_equal(a, c, TRONE_HASH_LEN);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_round_trip_every_kind, setup, teardown),
        cmocka_unit_test_setup_teardown(test_truncated_and_trailing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_fields, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tags_and_names, setup, teardown),
        cmocka_unit_test_setup_teardown(test_oversized, setup, teardown),
        cmocka_unit_test_setup_teardown(test_name_list_parse, setup, teardown),
        cmocka_unit_test_setup_teardown(test_results, setup, teardown),
        cmocka_unit_test_setup_teardown(test_channel_body, setup, teardown),
        cmocka_unit_test_setup_teardown(test_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_order_digest, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
