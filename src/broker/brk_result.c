/* brk_result.c: results of control operations: the result header, the channel descriptions of
 * CHANNEL_SHOW / CHANNEL_LIST bodies, and their human and JSON formatting (format in
 * brk_op.h). Decoding checks every length and bound. No I/O. */
#include "broker/brk_op.h"

#include <stdio.h>
#include <string.h>

#include "core/assert.h"

void brk_result_put(struct buf *out, int32_t status, const char *message)
{
    TRONE_ASSERT(status <= 0);
    TRONE_ASSERT(message != NULL);
    size_t length = strnlen(message, BRK_MESSAGE_MAX);
    buf_put_u32(out, (uint32_t)status);
    buf_put_u16(out, (uint16_t)length);
    buf_put_bytes(out, message, length);
}

/* A status is 0 or one of the TRONE_E* codes. */
static bool brk_status_valid(int32_t status)
{
    return status == 0 || (status < 0 && strcmp(trone_err_name(status), "TRONE_EUNKNOWN") != 0);
}

int brk_result_decode(const uint8_t *data, size_t size, struct brk_result *res)
{
    TRONE_ASSERT(res != NULL);
    memset(res, 0, sizeof(*res));
    if (size > TRONE_RESULT_MAX) {
        return TRONE_EBADMSG;
    }
    struct buf_reader r;
    buf_reader_init(&r, data, size);
    int32_t status = (int32_t)buf_get_u32(&r);
    buf_get_str(&r, res->message, BRK_MESSAGE_MAX);
    bool ok = r.error == 0 && brk_status_valid(status);
    /* Messages reach terminals: printable ASCII only. */
    for (size_t i = 0; ok && res->message[i] != '\0'; i++) {
        ok = res->message[i] >= 0x20 && res->message[i] <= 0x7e;
    }
    if (!ok) {
        memset(res, 0, sizeof(*res));
        return TRONE_EBADMSG;
    }
    res->status = status;
    res->body_size = buf_reader_left(&r);
    res->body = res->body_size > 0 ? data + r.used : NULL;
    return 0;
}

static void brk_info_list_put(struct buf *out, const struct brk_name_list *list)
{
    TRONE_ASSERT(list->count <= TRONE_CHANNEL_MEMBERS_MAX);
    buf_put_u16(out, (uint16_t)list->count);
    for (uint32_t i = 0; i < list->count; i++) {
        buf_put_str(out, list->names[i]);
    }
}

void brk_channel_info_put(struct buf *out, const struct brk_channel_info *info)
{
    TRONE_ASSERT(brk_tag_valid(info->tag));
    buf_put_str(out, info->tag);
    brk_class_encode(&info->cls, out);
    brk_info_list_put(out, &info->publishers);
    brk_info_list_put(out, &info->subscribers);
    brk_info_list_put(out, &info->subscribed);
}

int brk_channel_iter_init(struct brk_channel_iter *it, const uint8_t *body, size_t body_size)
{
    memset(it, 0, sizeof(*it));
    buf_reader_init(&it->reader, body, body_size);
    it->count = buf_get_u32(&it->reader);
    /* Each channel takes at least 2 + 1 + 5 + 3 * 2 bytes: a cheap bound on the count. */
    if (it->reader.error != 0 || it->count > buf_reader_left(&it->reader) / 14) {
        memset(it, 0, sizeof(*it));
        return TRONE_EBADMSG;
    }
    return 0;
}

/* Reads a list of distinct members, "*" allowed only if any_ok. */
static void brk_info_list_get(struct buf_reader *r, struct brk_name_list *list, bool any_ok)
{
    list->count = 0;
    uint16_t count = buf_get_u16(r);
    if (r->error == 0 && count > TRONE_CHANNEL_MEMBERS_MAX) {
        r->error = TRONE_EBADMSG;
    }
    for (uint32_t i = 0; i < count && r->error == 0; i++) {
        buf_get_str(r, list->names[i], TRONE_NAME_MAX);
        if (r->error != 0) {
            break;
        }
        bool any = strcmp(list->names[i], BRK_NAME_ANY) == 0;
        bool valid = any ? any_ok : brk_name_valid(list->names[i]);
        if (!valid || brk_name_list_contains(list, list->names[i])) {
            r->error = TRONE_EBADMSG;
            break;
        }
        list->count = i + 1;
    }
}

int brk_channel_iter_next(struct brk_channel_iter *it, struct brk_channel_info *info)
{
    memset(info, 0, sizeof(*info));
    struct buf_reader *r = &it->reader;
    if (r->error != 0) {
        return TRONE_EBADMSG;
    }
    if (it->index == it->count) {
        uint8_t more = buf_get_u8(r);
        if (r->error != 0 || more > 1 || buf_reader_finish(r) != 0) {
            r->error = TRONE_EBADMSG;
            return TRONE_EBADMSG;
        }
        it->more = more == 1;
        return 0;
    }
    buf_get_str(r, info->tag, TRONE_TAG_MAX);
    if (r->error == 0 && !brk_tag_valid(info->tag)) {
        r->error = TRONE_EBADMSG;
    }
    (void)brk_class_decode(r, &info->cls);
    brk_info_list_get(r, &info->publishers, true);
    brk_info_list_get(r, &info->subscribers, true);
    brk_info_list_get(r, &info->subscribed, false);
    if (r->error != 0) {
        r->error = TRONE_EBADMSG;
        memset(info, 0, sizeof(*info));
        return TRONE_EBADMSG;
    }
    it->index++;
    return 1;
}

static void brk_put_text(struct buf *out, const char *text)
{
    buf_put_bytes(out, text, strlen(text));
}

static void brk_format_list(struct buf *out, const char *label, const struct brk_name_list *list)
{
    brk_put_text(out, label);
    if (list->count == 0) {
        brk_put_text(out, " -");
    }
    for (uint32_t i = 0; i < list->count; i++) {
        brk_put_text(out, " ");
        brk_put_text(out, list->names[i]);
    }
    brk_put_text(out, "\n");
}

void brk_channel_info_format(const struct brk_channel_info *info, struct buf *out)
{
    char cls[BRK_CLASS_TEXT_MAX];
    int n = brk_class_format(&info->cls, cls, sizeof(cls));
    TRONE_ASSERT(n > 0);
    brk_put_text(out, "channel ");
    brk_put_text(out, info->tag);
    brk_put_text(out, "\n  class        ");
    brk_put_text(out, cls);
    brk_put_text(out, "\n");
    brk_format_list(out, "  publishers  ", &info->publishers);
    brk_format_list(out, "  subscribers ", &info->subscribers);
    brk_format_list(out, "  subscribed  ", &info->subscribed);
}

/* Tags and names are [A-Za-z0-9._-] or "*", so no JSON escaping is ever needed; the
 * assertion keeps that true if the character set grows. */
static void brk_json_string(struct buf *out, const char *text)
{
    TRONE_ASSERT(strpbrk(text, "\"\\") == NULL);
    brk_put_text(out, "\"");
    brk_put_text(out, text);
    brk_put_text(out, "\"");
}

static void brk_json_list(struct buf *out, const char *key, const struct brk_name_list *list)
{
    brk_put_text(out, ",\"");
    brk_put_text(out, key);
    brk_put_text(out, "\":[");
    for (uint32_t i = 0; i < list->count; i++) {
        if (i > 0) {
            brk_put_text(out, ",");
        }
        brk_json_string(out, list->names[i]);
    }
    brk_put_text(out, "]");
}

void brk_channel_info_json(const struct brk_channel_info *info, struct buf *out)
{
    char cls[BRK_CLASS_TEXT_MAX];
    int n = brk_class_format(&info->cls, cls, sizeof(cls));
    TRONE_ASSERT(n > 0);
    /* The longest class text plus the fixed keys and the longest names (retention items
     * made the class text long enough to overflow a 160-byte buffer: fuzz_brk_op). */
    char fields[BRK_CLASS_TEXT_MAX + 160];
    n = snprintf(fields, sizeof(fields),
                 ",\"class\":\"%s\",\"fault\":\"%s\",\"order\":\"%s\",\"method\":\"%s\","
                 "\"urgency\":%u,\"durable\":%s",
                 cls, brk_fault_name(info->cls.fault), brk_order_name(info->cls.order),
                 brk_method_name(info->cls.method), (unsigned)info->cls.urgency,
                 info->cls.durable ? "true" : "false");
    TRONE_ASSERT(n > 0 && (size_t)n < sizeof(fields));
    brk_put_text(out, "{\"tag\":");
    brk_json_string(out, info->tag);
    brk_put_text(out, fields);
    brk_json_list(out, "publishers", &info->publishers);
    brk_json_list(out, "subscribers", &info->subscribers);
    brk_json_list(out, "subscribed", &info->subscribed);
    brk_put_text(out, "}");
}

/* ---- CHANNEL_KEYS bodies ---- */

static void brk_keys_list_put(struct buf *out, const uint8_t (*keys)[TRONE_KEY_LEN],
                              uint32_t count)
{
    buf_put_u16(out, (uint16_t)count);
    for (uint32_t i = 0; i < count; i++) {
        if (i > 0) {
            TRONE_ASSERT(memcmp(keys[i - 1], keys[i], TRONE_KEY_LEN) < 0);
        }
        buf_put_bytes(out, keys[i], TRONE_KEY_LEN);
    }
}

void brk_channel_keys_put(struct buf *out, const struct brk_channel_keys *keys)
{
    TRONE_ASSERT(keys->publisher_count <= BRK_KEYS_PUBLISHERS_MAX);
    TRONE_ASSERT(keys->recipient_count <= BRK_KEYS_RECIPIENTS_MAX);
    buf_put_u8(out, keys->publishers_any ? 1 : 0);
    brk_keys_list_put(out, keys->publishers, keys->publisher_count);
    brk_keys_list_put(out, keys->recipients, keys->recipient_count);
}

/* Reads a strictly increasing key list of at most max keys into keys; returns the count. */
static uint32_t brk_keys_list_get(struct buf_reader *r, uint8_t (*keys)[TRONE_KEY_LEN],
                                  uint32_t max)
{
    uint16_t count = buf_get_u16(r);
    if (r->error != 0 || count > max) {
        r->error = TRONE_EBADMSG;
        return 0;
    }
    for (uint32_t i = 0; i < count && r->error == 0; i++) {
        buf_get_bytes(r, keys[i], TRONE_KEY_LEN);
        if (r->error == 0 && i > 0 && memcmp(keys[i - 1], keys[i], TRONE_KEY_LEN) >= 0) {
            r->error = TRONE_EBADMSG;
        }
    }
    return count;
}

int brk_channel_keys_decode(const uint8_t *body, size_t body_size, struct brk_channel_keys *keys)
{
    memset(keys, 0, sizeof(*keys));
    struct buf_reader r;
    buf_reader_init(&r, body, body_size);
    uint8_t any = buf_get_u8(&r);
    if (r.error == 0 && any > 1) {
        r.error = TRONE_EBADMSG;
    }
    uint32_t publishers = brk_keys_list_get(&r, keys->publishers, BRK_KEYS_PUBLISHERS_MAX);
    uint32_t recipients = r.error == 0
                              ? brk_keys_list_get(&r, keys->recipients, BRK_KEYS_RECIPIENTS_MAX)
                              : 0;
    if (r.error != 0 || buf_reader_finish(&r) != 0) {
        memset(keys, 0, sizeof(*keys));
        return TRONE_EBADMSG;
    }
    keys->publishers_any = any == 1;
    keys->publisher_count = publishers;
    keys->recipient_count = recipients;
    return 0;
}
