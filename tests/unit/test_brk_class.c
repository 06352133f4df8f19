/* test_brk_class.c: channel CLASS parsing, canonical formatting and wire codec (brk_class.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "broker/brk_class.h"

/* ---- Helpers ---- */

static struct brk_class parse_ok(const char *text)
{
    struct brk_class c;
    char errmsg[128];
    int err = brk_class_parse(&c, text, errmsg, sizeof(errmsg));
    if (err != 0) {
        fail_msg("parse '%s' failed: %s", text, errmsg);
    }
    return c;
}

/* Parses a bad text; checks the error, that the message names bad_item, and that the class
 * was reset to the defaults. */
static void parse_bad(const char *text, const char *bad_item)
{
    struct brk_class c;
    struct brk_class defaults;
    brk_class_default(&defaults);
    char errmsg[128] = "untouched";
    assert_int_equal(brk_class_parse(&c, text, errmsg, sizeof(errmsg)), TRONE_EINVAL);
    if (strstr(errmsg, bad_item) == NULL) {
        fail_msg("message '%s' for '%s' does not name '%s'", errmsg, text, bad_item);
    }
    assert_null(strchr(errmsg, '\n'));
    assert_true(brk_class_equal(&c, &defaults));
}

/* ---- Scenarios ---- */

/* A full list sets every field. */
static void test_parse_full(void **state)
{
    (void)state;
    struct brk_class c = parse_ok("bft,total,pks,urgency=7,durable");
    assert_int_equal(c.fault, BRK_FAULT_BFT);
    assert_int_equal(c.order, BRK_ORDER_TOTAL);
    assert_int_equal(c.method, BRK_METHOD_PKS);
    assert_int_equal(c.urgency, 7);
    assert_true(c.durable);
}

/* Items left out keep their defaults, items may come in any order, spaces are ignored. */
static void test_parse_defaults(void **state)
{
    (void)state;
    struct brk_class c = parse_ok("");
    assert_int_equal(c.fault, BRK_FAULT_CFT);
    assert_int_equal(c.order, BRK_ORDER_FIFO);
    assert_int_equal(c.method, BRK_METHOD_SI);
    assert_int_equal(c.urgency, 0);
    assert_false(c.durable);
    c = parse_ok(" pke , urgency=3");
    assert_int_equal(c.fault, BRK_FAULT_CFT);
    assert_int_equal(c.method, BRK_METHOD_PKE);
    assert_int_equal(c.urgency, 3);
    c = parse_ok("durable,ha,total");
    assert_true(c.durable);
    assert_int_equal(c.method, BRK_METHOD_HA);
    assert_int_equal(c.order, BRK_ORDER_TOTAL);
}

/* Every kind of bad item is refused with a message naming it. */
static void test_parse_bad_items(void **state)
{
    (void)state;
    parse_bad("bft,cft", "'cft'");
    parse_bad("fifo,total", "'total'");
    parse_bad("si,pks", "'pks'");
    parse_bad("urgency=1,urgency=2", "'urgency=2'");
    parse_bad("durable,durable", "repeated");
    parse_bad("bft,bft", "repeated");
    parse_bad("bft,fast", "'fast'");
    parse_bad("urgency=8", "'urgency=8'");
    parse_bad("urgency=", "'urgency='");
    parse_bad("urgency=-1", "'urgency=-1'");
    parse_bad("urgency=07", "'urgency=07'");
    parse_bad("urgency", "'urgency'");
    parse_bad("BFT", "'BFT'");
    parse_bad("bft,,total", "empty");
    parse_bad("bft,", "empty");
    parse_bad(",bft", "empty");
    parse_bad("durable=yes", "'durable=yes'");
    parse_bad("averyveryveryveryveryveryverylongitemthatdoesnotexist", "unknown");
    /* A NULL errmsg is allowed. */
    struct brk_class c;
    assert_int_equal(brk_class_parse(&c, "nope", NULL, 0), TRONE_EINVAL);
}

/* Formatting gives the canonical text, which parses back to the same class. */
static void test_format_round_trip(void **state)
{
    (void)state;
    char text[BRK_CLASS_TEXT_MAX];
    struct brk_class c = parse_ok("");
    assert_int_equal(brk_class_format(&c, text, sizeof(text)), strlen("cft,fifo,si,urgency=0"));
    assert_string_equal(text, "cft,fifo,si,urgency=0");
    c = parse_ok("durable,urgency=7,pks,total,bft");
    brk_class_format(&c, text, sizeof(text));
    assert_string_equal(text, "bft,total,pks,urgency=7,durable");
    /* Every class round-trips. */
    for (unsigned bits = 0; bits < 2 * 2 * 4 * 8 * 2; bits++) {
        struct brk_class a = {.fault = (enum brk_fault)(bits & 1),
                              .order = (enum brk_order)((bits >> 1) & 1),
                              .method = (enum brk_method)((bits >> 2) & 3),
                              .urgency = (uint8_t)((bits >> 4) & 7),
                              .durable = (bits >> 7) & 1};
        assert_true(brk_class_format(&a, text, sizeof(text)) > 0);
        struct brk_class b = parse_ok(text);
        assert_true(brk_class_equal(&a, &b));
    }
    /* Too small an output is refused, not overrun. */
    char small[8];
    assert_int_equal(brk_class_format(&c, small, sizeof(small)), TRONE_ETOOBIG);
    assert_string_equal(small, "");
}

/* The wire form is five bytes, decodes to the same class and refuses unknown values. */
static void test_wire(void **state)
{
    (void)state;
    struct brk_class c = parse_ok("bft,total,pke,urgency=5,durable");
    struct buf b;
    buf_init(&b, 0);
    brk_class_encode(&c, &b);
    assert_int_equal(b.used, BRK_CLASS_WIRE_SIZE);
    struct buf_reader r;
    struct brk_class d;
    buf_reader_init(&r, b.data, b.used);
    assert_int_equal(brk_class_decode(&r, &d), 0);
    assert_int_equal(buf_reader_finish(&r), 0);
    assert_true(brk_class_equal(&c, &d));
    /* Each byte set to an unknown value is refused. */
    static const uint8_t bad[BRK_CLASS_WIRE_SIZE] = {2, 2, 4, 8, 2};
    for (unsigned i = 0; i < BRK_CLASS_WIRE_SIZE; i++) {
        uint8_t bytes[BRK_CLASS_WIRE_SIZE];
        memcpy(bytes, b.data, sizeof(bytes));
        bytes[i] = bad[i];
        buf_reader_init(&r, bytes, sizeof(bytes));
        assert_int_equal(brk_class_decode(&r, &d), TRONE_EBADMSG);
        assert_int_equal(r.error, TRONE_EBADMSG);
    }
    /* Short input is refused. */
    buf_reader_init(&r, b.data, BRK_CLASS_WIRE_SIZE - 1);
    assert_int_equal(brk_class_decode(&r, &d), TRONE_EBADMSG);
    buf_close(&b);
}

/* Retention items: parsed with their units, only with durable, formatted canonically (largest
 * exact unit), carried on the wire (21 bytes) and back; out-of-range and malformed ones are
 * refused, and a non-canonical wire form (limits flagged, both zero) too. */
static void test_retention(void **state)
{
    (void)state;
    struct brk_class c = parse_ok("cft,fifo,durable,retain=7d,retain-bytes=256M");
    assert_int_equal(c.retain_ms, UINT64_C(7) * 86400000u);
    assert_int_equal(c.retain_bytes, UINT64_C(256) << 20);
    char text[BRK_CLASS_TEXT_MAX];
    assert_true(brk_class_format(&c, text, sizeof(text)) > 0);
    assert_string_equal(text, "cft,fifo,si,urgency=0,durable,retain=7d,retain-bytes=256M");
    c = parse_ok("durable,retain=90m,retain-bytes=1000");
    brk_class_format(&c, text, sizeof(text));
    assert_string_equal(text, "cft,fifo,si,urgency=0,durable,retain=90m,retain-bytes=1000");
    struct brk_class back = parse_ok(text);
    assert_true(brk_class_equal(&c, &back));
    c = parse_ok("durable,retain=0s"); /* 0: no limit */
    brk_class_format(&c, text, sizeof(text));
    assert_string_equal(text, "cft,fifo,si,urgency=0,durable");
    parse_bad("cft,retain=7d", "need durable");
    parse_bad("durable,retain=7", "retain=7");
    parse_bad("durable,retain=7w", "retain=7w");
    parse_bad("durable,retain=-1d", "retain=-1d");
    parse_bad("durable,retain-bytes=12T", "retain-bytes=12T");
    parse_bad("durable,retain-bytes=99999999999999999", "retain-bytes=");
    parse_bad("durable,retain=1d,retain=2d", "retain=2d");

    c = parse_ok("bft,total,pks,durable,retain=1h");
    struct buf b;
    buf_init(&b, 0);
    brk_class_encode(&c, &b);
    assert_int_equal(b.used, BRK_CLASS_WIRE_MAX);
    assert_int_equal(brk_class_wire_size(&c), BRK_CLASS_WIRE_MAX);
    struct buf_reader r;
    struct brk_class d;
    buf_reader_init(&r, b.data, b.used);
    assert_int_equal(brk_class_decode(&r, &d), 0);
    assert_int_equal(buf_reader_finish(&r), 0);
    assert_true(brk_class_equal(&c, &d));
    buf_reader_init(&r, b.data, b.used - 1); /* cut short */
    assert_int_equal(brk_class_decode(&r, &d), TRONE_EBADMSG);
    memset(b.data + BRK_CLASS_WIRE_SIZE, 0, 16); /* limits flagged, both zero */
    buf_reader_init(&r, b.data, b.used);
    assert_int_equal(brk_class_decode(&r, &d), TRONE_EBADMSG);
    buf_close(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_full),       cmocka_unit_test(test_parse_defaults),
        cmocka_unit_test(test_parse_bad_items),  cmocka_unit_test(test_format_round_trip),
        cmocka_unit_test(test_wire),             cmocka_unit_test(test_retention),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
