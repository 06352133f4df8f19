/* brk_class.h: the CLASS of an event channel (DESIGN.md section 1 and 2): fault model, ordering,
 * urgency, persistence and protection method. Parsing from and formatting to the operator's
 * comma list, and a fixed-size wire encoding. Pure functions: no I/O, no allocation. */
#ifndef TRONE_BRK_CLASS_H
#define TRONE_BRK_CLASS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "trone/error.h"

enum brk_fault { BRK_FAULT_CFT = 0, BRK_FAULT_BFT = 1 };
enum brk_order { BRK_ORDER_FIFO = 0, BRK_ORDER_TOTAL = 1 };
enum brk_method { BRK_METHOD_SI = 0, BRK_METHOD_HA = 1, BRK_METHOD_PKS = 2, BRK_METHOD_PKE = 3 };

/* Urgency 0 is the least urgent, BRK_URGENCY_MAX the most. */
#define BRK_URGENCY_MAX 7u
/* Bytes of a class on the wire: fault, order, method, urgency, durable (one byte each: 0 not
 * durable, 1 durable without retention limits, 2 durable with limits, then u64 retention age
 * in ms and u64 retention bytes, not both 0). WIRE_SIZE without limits, WIRE_MAX with. */
#define BRK_CLASS_WIRE_SIZE 5u
#define BRK_CLASS_WIRE_MAX (BRK_CLASS_WIRE_SIZE + 16u)
/* Longest canonical text, "bft,total,pks,urgency=7,durable,retain=<20 digits>ms,
 * retain-bytes=<20 digits>", plus its NUL, rounded up. */
#define BRK_CLASS_TEXT_MAX 112u
/* Largest retention accepted: about 31.7 years, 1 PiB. */
#define BRK_CLASS_RETAIN_MS_MAX (UINT64_C(1000) * 86400u * 366u * 100u)
#define BRK_CLASS_RETAIN_BYTES_MAX (UINT64_C(1) << 50)

struct brk_class {
    enum brk_fault fault;
    enum brk_order order;
    enum brk_method method;
    uint8_t urgency; /* 0..BRK_URGENCY_MAX */
    bool durable;
    /* Durable channels' retention (0: no limit, the default): events older than retain_ms
     * (by their publisher time) or beyond retain_bytes of payload are deleted, oldest first,
     * by each replica in small steps (docs/PROTOCOL.md section 11). Only with durable. */
    uint64_t retain_ms;
    uint64_t retain_bytes;
};

/* The defaults: cft, fifo, si, urgency=0, not durable. Cannot fail. */
void brk_class_default(struct brk_class *c);
/* True if every field holds a known value. */
bool brk_class_valid(const struct brk_class *c);
/* True if a and b are the same class (both must be valid). */
bool brk_class_equal(const struct brk_class *a, const struct brk_class *b);

/* Parses a comma list such as "bft,total,pks,urgency=7,durable". Items: cft|bft, fifo|total,
 * si|ha|pks|pke, urgency=0..7, durable, and with durable only: retain=N followed by s, m, h
 * or d (retention by age) and retain-bytes=N, optionally followed by K, M or G (powers of
 * 1024; retention by size); 0 or leaving them out means no limit. Spaces around items are ignored; an empty text gives
 * the defaults, and anything left out keeps its default. A repeated, conflicting, empty or
 * unknown item gives TRONE_EINVAL and, if errmsg is not NULL, a one-line message naming the bad
 * item (truncated to errmsg_size). On error *c is set to the defaults. */
TRONE_MUST_CHECK int brk_class_parse(struct brk_class *c, const char *text, char *errmsg,
                                     size_t errmsg_size);
/* Writes the canonical text, every field in the order
 * fault,order,method,urgency[,durable[,retain=..][,retain-bytes=..]], e.g.
 * "cft,fifo,si,urgency=0" or "cft,fifo,si,urgency=0,durable,retain=7d,retain-bytes=256M"; brk_class_parse reads it back to an equal class.
 * out_size >= BRK_CLASS_TEXT_MAX always suffices. Returns the length, or TRONE_ETOOBIG if
 * out is too small (out then holds an empty string), TRONE_EINVAL for an invalid class. */
int brk_class_format(const struct brk_class *c, char *out, size_t out_size);
/* Names of the single fields ("bft", "total", "pks"); "?" for an unknown value. */
const char *brk_fault_name(enum brk_fault fault);
const char *brk_order_name(enum brk_order order);
const char *brk_method_name(enum brk_method method);

/* Appends the BRK_CLASS_WIRE_SIZE (BRK_CLASS_WIRE_MAX with retention limits) bytes of a
 * valid class (asserted). */
void brk_class_encode(const struct brk_class *c, struct buf *out);
/* The encoded size of a valid class. */
size_t brk_class_wire_size(const struct brk_class *c);
/* Reads BRK_CLASS_WIRE_SIZE bytes (and the limits that may follow). An unknown value or short input sets the reader's error to
 * TRONE_EBADMSG and returns it (*c then holds the defaults); 0 on success. */
int brk_class_decode(struct buf_reader *r, struct brk_class *c);

#endif
