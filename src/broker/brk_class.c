/* brk_class.c: channel CLASS parsing, canonical formatting and wire codec.
 * Pure functions: no I/O, no allocation, no locale (bytes are compared as ASCII). */
#include "broker/brk_class.h"

#include <stdio.h>
#include <string.h>

#include "core/assert.h"

/* Fields a class text may set; each may be set once. */
enum brk_class_field {
    BRK_CLASS_FIELD_FAULT = 0,
    BRK_CLASS_FIELD_ORDER = 1,
    BRK_CLASS_FIELD_METHOD = 2,
    BRK_CLASS_FIELD_URGENCY = 3,
    BRK_CLASS_FIELD_DURABLE = 4,
    BRK_CLASS_FIELD_RETAIN = 5,
    BRK_CLASS_FIELD_RETAIN_BYTES = 6,
    BRK_CLASS_FIELD_COUNT = 7,
};

/* Longest item we look at; longer items are unknown by definition. */
#define BRK_CLASS_ITEM_MAX 32u
/* Bound on the number of items in a text (a text cannot usefully hold more). */
#define BRK_CLASS_ITEMS_MAX 64u

void brk_class_default(struct brk_class *c)
{
    memset(c, 0, sizeof(*c));
    c->fault = BRK_FAULT_CFT;
    c->order = BRK_ORDER_FIFO;
    c->method = BRK_METHOD_SI;
    c->urgency = 0;
    c->durable = false;
}

bool brk_class_valid(const struct brk_class *c)
{
    if (c->fault != BRK_FAULT_CFT && c->fault != BRK_FAULT_BFT) {
        return false;
    }
    if (c->order != BRK_ORDER_FIFO && c->order != BRK_ORDER_TOTAL) {
        return false;
    }
    if ((unsigned)c->method > (unsigned)BRK_METHOD_PKE) {
        return false;
    }
    if (!c->durable && (c->retain_ms != 0 || c->retain_bytes != 0)) {
        return false;
    }
    return c->urgency <= BRK_URGENCY_MAX && c->retain_ms <= BRK_CLASS_RETAIN_MS_MAX &&
           c->retain_bytes <= BRK_CLASS_RETAIN_BYTES_MAX;
}

bool brk_class_equal(const struct brk_class *a, const struct brk_class *b)
{
    TRONE_ASSERT(brk_class_valid(a));
    TRONE_ASSERT(brk_class_valid(b));
    return a->fault == b->fault && a->order == b->order && a->method == b->method &&
           a->urgency == b->urgency && a->durable == b->durable &&
           a->retain_ms == b->retain_ms && a->retain_bytes == b->retain_bytes;
}

const char *brk_fault_name(enum brk_fault fault)
{
    switch (fault) {
    case BRK_FAULT_CFT:
        return "cft";
    case BRK_FAULT_BFT:
        return "bft";
    }
    return "?";
}

const char *brk_order_name(enum brk_order order)
{
    switch (order) {
    case BRK_ORDER_FIFO:
        return "fifo";
    case BRK_ORDER_TOTAL:
        return "total";
    }
    return "?";
}

const char *brk_method_name(enum brk_method method)
{
    switch (method) {
    case BRK_METHOD_SI:
        return "si";
    case BRK_METHOD_HA:
        return "ha";
    case BRK_METHOD_PKS:
        return "pks";
    case BRK_METHOD_PKE:
        return "pke";
    }
    return "?";
}

static void brk_class_errmsg(char *errmsg, size_t errmsg_size, const char *what,
                             const char *item)
{
    if (errmsg != NULL && errmsg_size > 0) {
        snprintf(errmsg, errmsg_size, "%s class item '%s'", what, item);
    }
}

/* Reads the decimal number at *p (1 to 16 digits, no sign) and moves *p past it; false if
 * there is none. */
static bool brk_class_number(const char **p, uint64_t *value)
{
    uint64_t v = 0;
    unsigned digits = 0;
    for (; **p >= '0' && **p <= '9' && digits < 17; (*p)++, digits++) {
        v = v * 10u + (uint64_t)(**p - '0');
    }
    *value = v;
    return digits > 0 && digits <= 16;
}

/* retain=N(s|m|h|d) or retain-bytes=N[K|M|G]; the field it set, or -1. */
static int brk_class_retention(struct brk_class *c, const char *item)
{
    const char *p = NULL;
    uint64_t v = 0;
    if (strncmp(item, "retain=", 7) == 0) {
        p = item + 7;
        static const char units[] = "smhd";
        static const uint64_t scale[] = {1000u, 60000u, 3600000u, 86400000u};
        if (!brk_class_number(&p, &v) || p[0] == '\0' || p[1] != '\0' ||
            strchr(units, p[0]) == NULL) {
            return -1;
        }
        uint64_t ms = scale[strchr(units, p[0]) - units];
        if (v > BRK_CLASS_RETAIN_MS_MAX / ms) {
            return -1;
        }
        c->retain_ms = v * ms;
        return BRK_CLASS_FIELD_RETAIN;
    }
    if (strncmp(item, "retain-bytes=", 13) == 0) {
        p = item + 13;
        uint64_t unit = 1;
        if (!brk_class_number(&p, &v)) {
            return -1;
        }
        if (p[0] != '\0' && p[1] == '\0') {
            unit = p[0] == 'K' ? 1024u : p[0] == 'M' ? 1024u * 1024u
                                       : p[0] == 'G' ? UINT64_C(1024) * 1024u * 1024u
                                                     : 0;
        } else if (p[0] != '\0') {
            unit = 0;
        }
        if (unit == 0 || v > BRK_CLASS_RETAIN_BYTES_MAX / unit) {
            return -1;
        }
        c->retain_bytes = v * unit;
        return BRK_CLASS_FIELD_RETAIN_BYTES;
    }
    return -1;
}

/* Sets one field from a keyword; returns the field it set or -1 if item is not a keyword. */
static int brk_class_keyword(struct brk_class *c, const char *item)
{
    static const char *const faults[] = {"cft", "bft"};
    static const char *const orders[] = {"fifo", "total"};
    static const char *const methods[] = {"si", "ha", "pks", "pke"};
    for (unsigned i = 0; i < 2; i++) {
        if (strcmp(item, faults[i]) == 0) {
            c->fault = (enum brk_fault)i;
            return BRK_CLASS_FIELD_FAULT;
        }
        if (strcmp(item, orders[i]) == 0) {
            c->order = (enum brk_order)i;
            return BRK_CLASS_FIELD_ORDER;
        }
    }
    for (unsigned i = 0; i < 4; i++) {
        if (strcmp(item, methods[i]) == 0) {
            c->method = (enum brk_method)i;
            return BRK_CLASS_FIELD_METHOD;
        }
    }
    if (strcmp(item, "durable") == 0) {
        c->durable = true;
        return BRK_CLASS_FIELD_DURABLE;
    }
    /* urgency=N with exactly one digit 0..7: no sign, no leading zeros, no spaces. */
    if (strncmp(item, "urgency=", 8) == 0 && item[8] >= '0' && item[8] <= '7' &&
        item[9] == '\0') {
        c->urgency = (uint8_t)(item[8] - '0');
        return BRK_CLASS_FIELD_URGENCY;
    }
    return brk_class_retention(c, item);
}

/* Copies the next comma-separated item of text starting at *pos into item, without the
 * surrounding spaces, and moves *pos past the comma. Returns false if the item is too long
 * (item then holds its first BRK_CLASS_ITEM_MAX bytes). */
static bool brk_class_next_item(const char *text, size_t *pos, char item[BRK_CLASS_ITEM_MAX + 1])
{
    size_t start = *pos;
    size_t end = start;
    while (text[end] != '\0' && text[end] != ',') {
        end++;
    }
    *pos = text[end] == ',' ? end + 1 : end;
    while (start < end && text[start] == ' ') {
        start++;
    }
    while (end > start && text[end - 1] == ' ') {
        end--;
    }
    size_t length = end - start;
    bool fits = length <= BRK_CLASS_ITEM_MAX;
    if (!fits) {
        length = BRK_CLASS_ITEM_MAX;
    }
    memcpy(item, text + start, length);
    item[length] = '\0';
    return fits;
}

int brk_class_parse(struct brk_class *c, const char *text, char *errmsg, size_t errmsg_size)
{
    TRONE_ASSERT(c != NULL);
    TRONE_ASSERT(text != NULL);
    brk_class_default(c);
    if (errmsg != NULL && errmsg_size > 0) {
        errmsg[0] = '\0';
    }
    size_t length = strlen(text);
    if (strspn(text, " ") == length) {
        return 0; /* empty text: all defaults */
    }
    struct brk_class parsed;
    brk_class_default(&parsed);
    bool set[BRK_CLASS_FIELD_COUNT] = {false};
    size_t pos = 0;
    bool last = false;
    for (unsigned n = 0; n < BRK_CLASS_ITEMS_MAX && !last; n++) {
        char item[BRK_CLASS_ITEM_MAX + 1];
        last = text[pos] == '\0' || strchr(text + pos, ',') == NULL;
        bool fits = brk_class_next_item(text, &pos, item);
        if (item[0] == '\0') {
            brk_class_errmsg(errmsg, errmsg_size, "empty", "");
            return TRONE_EINVAL;
        }
        struct brk_class before = parsed;
        int field = fits ? brk_class_keyword(&parsed, item) : -1;
        if (field < 0) {
            brk_class_errmsg(errmsg, errmsg_size, "unknown", item);
            return TRONE_EINVAL;
        }
        if (set[field]) {
            bool same = brk_class_equal(&before, &parsed);
            brk_class_errmsg(errmsg, errmsg_size, same ? "repeated" : "conflicting", item);
            return TRONE_EINVAL;
        }
        set[field] = true;
    }
    if (!last) {
        if (errmsg != NULL && errmsg_size > 0) {
            snprintf(errmsg, errmsg_size, "too many class items (at most %u)",
                     BRK_CLASS_ITEMS_MAX);
        }
        return TRONE_EINVAL;
    }
    if (!parsed.durable && (set[BRK_CLASS_FIELD_RETAIN] || set[BRK_CLASS_FIELD_RETAIN_BYTES])) {
        if (errmsg != NULL && errmsg_size > 0) {
            snprintf(errmsg, errmsg_size, "retain and retain-bytes need durable");
        }
        return TRONE_EINVAL;
    }
    TRONE_ASSERT(brk_class_valid(&parsed));
    *c = parsed;
    return 0;
}

int brk_class_format(const struct brk_class *c, char *out, size_t out_size)
{
    TRONE_ASSERT(out != NULL);
    if (out_size > 0) {
        out[0] = '\0';
    }
    if (!brk_class_valid(c)) {
        return TRONE_EINVAL;
    }
    char retain[48] = "";
    char bytes[48] = "";
    if (c->retain_ms != 0) {
        static const char units[] = "dhms";
        static const uint64_t scale[] = {86400000u, 3600000u, 60000u, 1000u};
        unsigned u = 0;
        while (u < 3 && c->retain_ms % scale[u] != 0) {
            u++;
        }
        if (c->retain_ms % scale[u] == 0) {
            snprintf(retain, sizeof(retain), ",retain=%llu%c",
                     (unsigned long long)(c->retain_ms / scale[u]), units[u]);
        } else {
            snprintf(retain, sizeof(retain), ",retain=%llus",
                     (unsigned long long)(c->retain_ms / 1000u)); /* not from the parser */
        }
    }
    if (c->retain_bytes != 0) {
        static const char units[] = "GMK";
        static const uint64_t scale[] = {UINT64_C(1) << 30, UINT64_C(1) << 20, UINT64_C(1) << 10};
        unsigned u = 0;
        while (u < 3 && c->retain_bytes % scale[u] != 0) {
            u++;
        }
        if (u < 3) {
            snprintf(bytes, sizeof(bytes), ",retain-bytes=%llu%c",
                     (unsigned long long)(c->retain_bytes / scale[u]), units[u]);
        } else {
            snprintf(bytes, sizeof(bytes), ",retain-bytes=%llu",
                     (unsigned long long)c->retain_bytes);
        }
    }
    int n = snprintf(out, out_size, "%s,%s,%s,urgency=%u%s%s%s", brk_fault_name(c->fault),
                     brk_order_name(c->order), brk_method_name(c->method),
                     (unsigned)c->urgency, c->durable ? ",durable" : "", retain, bytes);
    TRONE_ASSERT(n > 0);
    if ((size_t)n >= out_size) {
        if (out_size > 0) {
            out[0] = '\0';
        }
        return TRONE_ETOOBIG;
    }
    return n;
}

void brk_class_encode(const struct brk_class *c, struct buf *out)
{
    TRONE_ASSERT(brk_class_valid(c));
    buf_put_u8(out, (uint8_t)c->fault);
    buf_put_u8(out, (uint8_t)c->order);
    buf_put_u8(out, (uint8_t)c->method);
    buf_put_u8(out, c->urgency);
    bool limits = c->retain_ms != 0 || c->retain_bytes != 0;
    buf_put_u8(out, !c->durable ? 0 : limits ? 2 : 1);
    if (limits) {
        buf_put_u64(out, c->retain_ms);
        buf_put_u64(out, c->retain_bytes);
    }
}

size_t brk_class_wire_size(const struct brk_class *c)
{
    TRONE_ASSERT(brk_class_valid(c));
    return c->retain_ms != 0 || c->retain_bytes != 0 ? BRK_CLASS_WIRE_MAX : BRK_CLASS_WIRE_SIZE;
}

int brk_class_decode(struct buf_reader *r, struct brk_class *c)
{
    brk_class_default(c);
    const uint8_t *p = buf_get_ref(r, BRK_CLASS_WIRE_SIZE);
    if (p == NULL) {
        return r->error;
    }
    if (p[0] > BRK_FAULT_BFT || p[1] > BRK_ORDER_TOTAL || p[2] > BRK_METHOD_PKE ||
        p[3] > BRK_URGENCY_MAX || p[4] > 2) {
        r->error = TRONE_EBADMSG;
        return r->error;
    }
    c->fault = (enum brk_fault)p[0];
    c->order = (enum brk_order)p[1];
    c->method = (enum brk_method)p[2];
    c->urgency = p[3];
    c->durable = p[4] >= 1;
    if (p[4] == 2) {
        uint64_t ms = buf_get_u64(r);
        uint64_t bytes = buf_get_u64(r);
        if (r->error == 0 && ((ms == 0 && bytes == 0) || ms > BRK_CLASS_RETAIN_MS_MAX ||
                              bytes > BRK_CLASS_RETAIN_BYTES_MAX)) {
            r->error = TRONE_EBADMSG; /* not canonical, or out of range */
        }
        if (r->error != 0) {
            brk_class_default(c);
            return r->error;
        }
        c->retain_ms = ms;
        c->retain_bytes = bytes;
    }
    TRONE_ASSERT(brk_class_valid(c));
    return 0;
}
