/* errmsg.h: filling the caller's one-line error buffer (the errmsg/errmsg_size pairs that
 * loaders and clients take), so every module does it the same way. */
#ifndef TRONE_ERRMSG_H
#define TRONE_ERRMSG_H

#include <stddef.h>

/* Formats into errmsg (truncated to errmsg_size); does nothing if errmsg is NULL or the size
 * is 0, so callers may pass no buffer. */
void errmsg_set(char *errmsg, size_t errmsg_size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
