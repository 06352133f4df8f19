/* brk_op.c: control operations: validation of tags and names, CLI builders, and the op wire
 * codec (format in brk_op.h). Decoding checks every length and bound before using a byte and
 * rejects trailing bytes (STYLE.md rule 12). No I/O. */
#include "broker/brk_op.h"

#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "core/assert.h"

/* The character set of tags and names: [A-Za-z0-9._-], compared as ASCII (no locale). */
static bool brk_char_valid(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '.' || c == '_' || c == '-';
}

/* True if s is 1..size_max bytes of the character set; looks at most size_max+1 bytes. */
static bool brk_text_valid(const char *s, size_t size_max)
{
    TRONE_ASSERT(s != NULL);
    size_t i = 0;
    for (; i <= size_max && s[i] != '\0'; i++) {
        if (!brk_char_valid(s[i])) {
            return false;
        }
    }
    return i >= 1 && i <= size_max;
}

bool brk_tag_valid(const char *tag) { return brk_text_valid(tag, TRONE_TAG_MAX); }

bool brk_name_valid(const char *name) { return brk_text_valid(name, TRONE_NAME_MAX); }

bool brk_member_valid(const char *member)
{
    return strcmp(member, BRK_NAME_ANY) == 0 || brk_name_valid(member);
}

const char *brk_op_kind_name(enum brk_op_kind kind)
{
    switch (kind) {
    case BRK_OP_REGISTER:
        return "register";
    case BRK_OP_CHANNEL_CREATE:
        return "channel-create";
    case BRK_OP_CHANNEL_ALTER:
        return "channel-alter";
    case BRK_OP_CHANNEL_DELETE:
        return "channel-delete";
    case BRK_OP_SUBSCRIBE:
        return "subscribe";
    case BRK_OP_UNSUBSCRIBE:
        return "unsubscribe";
    case BRK_OP_CHANNEL_LIST:
        return "channel-list";
    case BRK_OP_CHANNEL_SHOW:
        return "channel-show";
    case BRK_OP_ORDER:
        return "order";
    case BRK_OP_CHANNEL_KEYS:
        return "channel-keys";
    }
    return "?";
}

static bool brk_op_kind_valid(uint32_t kind)
{
    return kind >= BRK_OP_REGISTER && kind <= BRK_OP_CHANNEL_KEYS;
}

void brk_op_init(struct brk_op *op, enum brk_op_kind kind)
{
    TRONE_ASSERT(brk_op_kind_valid(kind));
    memset(op, 0, sizeof(*op));
    op->kind = kind;
    brk_class_default(&op->cls);
    op->has_class = kind == BRK_OP_CHANNEL_CREATE;
}

int brk_op_set_tag(struct brk_op *op, const char *tag)
{
    if (!brk_tag_valid(tag)) {
        return TRONE_EINVAL;
    }
    snprintf(op->tag, sizeof(op->tag), "%s", tag);
    return 0;
}

int brk_op_set_register(struct brk_op *op, const char *name, const uint8_t key[TRONE_KEY_LEN])
{
    if (!brk_name_valid(name)) {
        return TRONE_EINVAL;
    }
    snprintf(op->name, sizeof(op->name), "%s", name);
    memcpy(op->key, key, TRONE_KEY_LEN);
    return 0;
}

static bool brk_order_range_valid(uint64_t epoch, uint64_t first_seq, uint32_t count)
{
    return epoch >= 1 && first_seq >= 1 && count >= 1 && count <= BRK_ORDER_COUNT_MAX &&
           first_seq <= UINT64_MAX - count;
}

int brk_op_set_order(struct brk_op *op, const char *tag, uint64_t epoch, uint64_t first_seq,
                     uint32_t count, const uint8_t digest[TRONE_HASH_LEN])
{
    if (!brk_tag_valid(tag) || !brk_order_range_valid(epoch, first_seq, count)) {
        return TRONE_EINVAL;
    }
    snprintf(op->tag, sizeof(op->tag), "%s", tag);
    op->epoch = epoch;
    op->first_seq = first_seq;
    op->count = count;
    memcpy(op->digest, digest, TRONE_HASH_LEN);
    return 0;
}

void brk_order_event_hash(uint8_t out[TRONE_HASH_LEN], const uint8_t *event, size_t event_size)
{
    crypto_generichash_state st;
    crypto_generichash_init(&st, NULL, 0, TRONE_HASH_LEN);
    crypto_generichash_update(&st, (const uint8_t *)BRK_ORDER_EVENT_LABEL,
                              sizeof(BRK_ORDER_EVENT_LABEL) - 1);
    crypto_generichash_update(&st, event, event_size);
    crypto_generichash_final(&st, out, TRONE_HASH_LEN);
}

void brk_order_digest(uint8_t out[TRONE_HASH_LEN], const uint8_t (*hashes)[TRONE_HASH_LEN],
                      uint32_t count)
{
    uint8_t n[4];
    buf_store_u32(n, count);
    crypto_generichash_state st;
    crypto_generichash_init(&st, NULL, 0, TRONE_HASH_LEN);
    crypto_generichash_update(&st, (const uint8_t *)BRK_ORDER_DIGEST_LABEL,
                              sizeof(BRK_ORDER_DIGEST_LABEL) - 1);
    crypto_generichash_update(&st, n, sizeof(n));
    if (count > 0) {
        crypto_generichash_update(&st, &hashes[0][0], (size_t)count * TRONE_HASH_LEN);
    }
    crypto_generichash_final(&st, out, TRONE_HASH_LEN);
}

bool brk_name_list_contains(const struct brk_name_list *list, const char *member)
{
    TRONE_ASSERT(list->count <= TRONE_CHANNEL_MEMBERS_MAX);
    for (uint32_t i = 0; i < list->count; i++) {
        if (strcmp(list->names[i], member) == 0) {
            return true;
        }
    }
    return false;
}

int brk_name_list_add(struct brk_name_list *list, const char *member)
{
    TRONE_ASSERT(list->count <= TRONE_CHANNEL_MEMBERS_MAX);
    if (!brk_member_valid(member)) {
        return TRONE_EINVAL;
    }
    if (brk_name_list_contains(list, member)) {
        return TRONE_EEXIST;
    }
    if (list->count == TRONE_CHANNEL_MEMBERS_MAX) {
        return TRONE_EFULL;
    }
    snprintf(list->names[list->count], sizeof(list->names[0]), "%s", member);
    list->count++;
    return 0;
}

int brk_name_list_parse(struct brk_name_list *list, const char *text, char *errmsg,
                        size_t errmsg_size)
{
    if (errmsg != NULL && errmsg_size > 0) {
        errmsg[0] = '\0';
    }
    size_t pos = 0;
    size_t length = strlen(text);
    /* Each item consumes at least its comma, so length + 1 iterations bound the loop. */
    for (size_t n = 0; n <= length && pos < length; n++) {
        size_t end = pos;
        while (text[end] != '\0' && text[end] != ',') {
            end++;
        }
        char member[TRONE_NAME_MAX + 2];
        size_t size = end - pos;
        size_t copy = size < sizeof(member) - 1 ? size : sizeof(member) - 1;
        memcpy(member, text + pos, copy);
        member[copy] = '\0';
        int err = size <= TRONE_NAME_MAX ? brk_name_list_add(list, member) : TRONE_EINVAL;
        if (err != 0) {
            if (errmsg != NULL && errmsg_size > 0) {
                int shown = (int)(copy > 64 ? 64 : copy);
                if (err == TRONE_EFULL) {
                    snprintf(errmsg, errmsg_size, "too many names (at most %u) at '%.*s'",
                             TRONE_CHANNEL_MEMBERS_MAX, shown, member);
                } else {
                    snprintf(errmsg, errmsg_size, "%s name '%.*s'",
                             err == TRONE_EEXIST ? "repeated" : "invalid", shown, member);
                }
            }
            return err;
        }
        pos = text[end] == ',' ? end + 1 : end;
        if (text[end] == ',' && text[pos] == '\0') {
            if (errmsg != NULL && errmsg_size > 0) {
                snprintf(errmsg, errmsg_size, "invalid name '' (trailing comma)");
            }
            return TRONE_EINVAL;
        }
    }
    return 0;
}

/* A list is valid if it has at most TRONE_CHANNEL_MEMBERS_MAX distinct valid members. */
static bool brk_name_list_valid(const struct brk_name_list *list)
{
    if (list->count > TRONE_CHANNEL_MEMBERS_MAX) {
        return false;
    }
    for (uint32_t i = 0; i < list->count; i++) {
        if (!brk_member_valid(list->names[i])) {
            return false;
        }
        for (uint32_t j = 0; j < i; j++) {
            if (strcmp(list->names[i], list->names[j]) == 0) {
                return false;
            }
        }
    }
    return true;
}

static bool brk_op_valid(const struct brk_op *op)
{
    switch (op->kind) {
    case BRK_OP_REGISTER:
        return brk_name_valid(op->name);
    case BRK_OP_CHANNEL_CREATE:
        return brk_tag_valid(op->tag) && brk_class_valid(&op->cls) &&
               brk_name_list_valid(&op->publishers) && brk_name_list_valid(&op->subscribers);
    case BRK_OP_CHANNEL_ALTER:
        return brk_tag_valid(op->tag) && (!op->has_class || brk_class_valid(&op->cls)) &&
               brk_name_list_valid(&op->publishers) && brk_name_list_valid(&op->subscribers) &&
               brk_name_list_valid(&op->publishers_removed) &&
               brk_name_list_valid(&op->subscribers_removed);
    case BRK_OP_CHANNEL_LIST:
        return op->tag[0] == '\0' || brk_tag_valid(op->tag);
    case BRK_OP_CHANNEL_DELETE:
    case BRK_OP_SUBSCRIBE:
    case BRK_OP_UNSUBSCRIBE:
    case BRK_OP_CHANNEL_SHOW:
    case BRK_OP_CHANNEL_KEYS:
        return brk_tag_valid(op->tag);
    case BRK_OP_ORDER:
        return brk_tag_valid(op->tag) &&
               brk_order_range_valid(op->epoch, op->first_seq, op->count);
    }
    return false;
}

static void brk_name_list_put(struct buf *out, const struct brk_name_list *list)
{
    buf_put_u16(out, (uint16_t)list->count);
    for (uint32_t i = 0; i < list->count; i++) {
        buf_put_str(out, list->names[i]);
    }
}

static void brk_op_put_fields(const struct brk_op *op, struct buf *out)
{
    switch (op->kind) {
    case BRK_OP_REGISTER:
        buf_put_str(out, op->name);
        buf_put_bytes(out, op->key, TRONE_KEY_LEN);
        break;
    case BRK_OP_CHANNEL_CREATE:
        buf_put_str(out, op->tag);
        brk_class_encode(&op->cls, out);
        brk_name_list_put(out, &op->publishers);
        brk_name_list_put(out, &op->subscribers);
        break;
    case BRK_OP_CHANNEL_ALTER:
        buf_put_str(out, op->tag);
        buf_put_u8(out, op->has_class ? 1 : 0);
        if (op->has_class) {
            brk_class_encode(&op->cls, out);
        }
        brk_name_list_put(out, &op->publishers);
        brk_name_list_put(out, &op->publishers_removed);
        brk_name_list_put(out, &op->subscribers);
        brk_name_list_put(out, &op->subscribers_removed);
        break;
    case BRK_OP_CHANNEL_DELETE:
    case BRK_OP_SUBSCRIBE:
    case BRK_OP_UNSUBSCRIBE:
    case BRK_OP_CHANNEL_LIST:
    case BRK_OP_CHANNEL_SHOW:
    case BRK_OP_CHANNEL_KEYS:
        buf_put_str(out, op->tag);
        break;
    case BRK_OP_ORDER:
        buf_put_str(out, op->tag);
        buf_put_u64(out, op->epoch);
        buf_put_u64(out, op->first_seq);
        buf_put_u32(out, op->count);
        buf_put_bytes(out, op->digest, TRONE_HASH_LEN);
        break;
    }
}

int brk_op_encode(const struct brk_op *op, struct buf *out)
{
    TRONE_ASSERT(op != NULL);
    TRONE_ASSERT(out != NULL);
    if (out->error != 0) {
        return out->error;
    }
    if (!brk_op_valid(op)) {
        return TRONE_EINVAL;
    }
    size_t start = out->used;
    buf_put_u8(out, BRK_OP_VERSION);
    buf_put_u8(out, (uint8_t)op->kind);
    brk_op_put_fields(op, out);
    if (out->error != 0) {
        out->used = start;
        return out->error;
    }
    if (out->used - start > TRONE_OP_MAX) {
        out->used = start;
        return TRONE_ETOOBIG;
    }
    return 0;
}

/* Reads a list of distinct valid members; sets the reader's error on anything else. */
static void brk_name_list_get(struct buf_reader *r, struct brk_name_list *list)
{
    list->count = 0;
    uint16_t count = buf_get_u16(r);
    if (r->error != 0) {
        return;
    }
    if (count > TRONE_CHANNEL_MEMBERS_MAX) {
        r->error = TRONE_EBADMSG;
        return;
    }
    for (uint32_t i = 0; i < count && r->error == 0; i++) {
        char *name = list->names[i];
        buf_get_str(r, name, TRONE_NAME_MAX);
        if (r->error != 0) {
            return;
        }
        if (!brk_member_valid(name) || brk_name_list_contains(list, name)) {
            r->error = TRONE_EBADMSG;
            return;
        }
        list->count = i + 1;
    }
}

/* Reads a tag; an empty tag is accepted only if empty_ok. */
static void brk_tag_get(struct buf_reader *r, char tag[TRONE_TAG_MAX + 1], bool empty_ok)
{
    buf_get_str(r, tag, TRONE_TAG_MAX);
    if (r->error != 0) {
        return;
    }
    if (!(empty_ok && tag[0] == '\0') && !brk_tag_valid(tag)) {
        r->error = TRONE_EBADMSG;
    }
}

static void brk_op_get_fields(struct buf_reader *r, struct brk_op *op)
{
    switch (op->kind) {
    case BRK_OP_REGISTER:
        buf_get_str(r, op->name, TRONE_NAME_MAX);
        if (r->error == 0 && !brk_name_valid(op->name)) {
            r->error = TRONE_EBADMSG;
        }
        buf_get_bytes(r, op->key, TRONE_KEY_LEN);
        break;
    case BRK_OP_CHANNEL_CREATE:
        brk_tag_get(r, op->tag, false);
        op->has_class = true;
        (void)brk_class_decode(r, &op->cls);
        brk_name_list_get(r, &op->publishers);
        brk_name_list_get(r, &op->subscribers);
        break;
    case BRK_OP_CHANNEL_ALTER: {
        brk_tag_get(r, op->tag, false);
        uint8_t has_class = buf_get_u8(r);
        if (r->error == 0 && has_class > 1) {
            r->error = TRONE_EBADMSG;
        }
        op->has_class = has_class == 1;
        if (op->has_class) {
            (void)brk_class_decode(r, &op->cls);
        }
        brk_name_list_get(r, &op->publishers);
        brk_name_list_get(r, &op->publishers_removed);
        brk_name_list_get(r, &op->subscribers);
        brk_name_list_get(r, &op->subscribers_removed);
        break;
    }
    case BRK_OP_CHANNEL_LIST:
        brk_tag_get(r, op->tag, true);
        break;
    case BRK_OP_CHANNEL_DELETE:
    case BRK_OP_SUBSCRIBE:
    case BRK_OP_UNSUBSCRIBE:
    case BRK_OP_CHANNEL_SHOW:
    case BRK_OP_CHANNEL_KEYS:
        brk_tag_get(r, op->tag, false);
        break;
    case BRK_OP_ORDER:
        brk_tag_get(r, op->tag, false);
        op->epoch = buf_get_u64(r);
        op->first_seq = buf_get_u64(r);
        op->count = buf_get_u32(r);
        buf_get_bytes(r, op->digest, TRONE_HASH_LEN);
        if (r->error == 0 && !brk_order_range_valid(op->epoch, op->first_seq, op->count)) {
            r->error = TRONE_EBADMSG;
        }
        break;
    }
}

int brk_op_decode(const uint8_t *data, size_t size, struct brk_op *op)
{
    TRONE_ASSERT(op != NULL);
    memset(op, 0, sizeof(*op));
    if (size > TRONE_OP_MAX) {
        return TRONE_ETOOBIG;
    }
    struct buf_reader r;
    buf_reader_init(&r, data, size);
    uint8_t version = buf_get_u8(&r);
    uint8_t kind = buf_get_u8(&r);
    if (r.error != 0 || version != BRK_OP_VERSION || !brk_op_kind_valid(kind)) {
        memset(op, 0, sizeof(*op));
        return TRONE_EBADMSG;
    }
    op->kind = (enum brk_op_kind)kind;
    brk_class_default(&op->cls);
    brk_op_get_fields(&r, op);
    if (buf_reader_finish(&r) != 0) {
        memset(op, 0, sizeof(*op));
        return TRONE_EBADMSG;
    }
    TRONE_ASSERT(brk_op_valid(op));
    return 0;
}
