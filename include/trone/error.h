/* error.h: TRONE's error codes. 0 is success, a negative value a TRONE_E* code.
 * One X-macro list generates the enum, trone_strerror() and trone_err_name(). */
#ifndef TRONE_ERROR_H
#define TRONE_ERROR_H

#define TRONE_ERRORS(X)                                                     \
    X(TRONE_ENOMEM, -1, "out of memory")                                    \
    X(TRONE_ETOOBIG, -2, "message exceeds size limit")                      \
    X(TRONE_EBADMSG, -3, "malformed message")                               \
    X(TRONE_EAUTH, -4, "authentication failed")                             \
    X(TRONE_EINVAL, -5, "invalid argument")                                 \
    X(TRONE_ENOENT, -6, "not found")                                        \
    X(TRONE_EEXIST, -7, "already exists")                                   \
    X(TRONE_EPERM, -8, "not authorized")                                    \
    X(TRONE_EBUSY, -9, "resource busy, try again")                          \
    X(TRONE_EIO, -10, "input/output error")                                 \
    X(TRONE_ETIMEDOUT, -11, "timed out")                                    \
    X(TRONE_ECONFIG, -12, "invalid configuration")                          \
    X(TRONE_EREPLAY, -13, "replayed or out-of-order message")               \
    X(TRONE_ESTALE, -14, "stale request")                                   \
    X(TRONE_ECLOSED, -15, "connection closed")                              \
    X(TRONE_EPROTO, -16, "protocol violation")                              \
    X(TRONE_EFULL, -17, "no space left")                                    \
    X(TRONE_ECORRUPT, -18, "corrupt data")                                  \
    X(TRONE_EUNAVAIL, -19, "not enough replicas reachable")

enum trone_error {
#define TRONE_ERROR_ENUM(name, value, text) name = value,
    TRONE_ERRORS(TRONE_ERROR_ENUM)
#undef TRONE_ERROR_ENUM
};

#if defined(__GNUC__)
#define TRONE_MUST_CHECK __attribute__((warn_unused_result))
#else
#define TRONE_MUST_CHECK
#endif

/* The message for an error code; "unknown error" for a code outside the list. Never NULL. */
const char *trone_strerror(int code);
/* The symbolic name ("TRONE_EAUTH"); "TRONE_EUNKNOWN" outside the list. Never NULL. */
const char *trone_err_name(int code);

#endif
