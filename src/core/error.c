/* error.c: messages and names for the TRONE_ERRORS list. */
#include "trone/error.h"

const char *trone_strerror(int code)
{
    switch (code) {
    case 0:
        return "success";
#define TRONE_ERROR_TEXT(name, value, text) \
    case value:                             \
        return text;
        TRONE_ERRORS(TRONE_ERROR_TEXT)
#undef TRONE_ERROR_TEXT
    default:
        return "unknown error";
    }
}

const char *trone_err_name(int code)
{
    switch (code) {
    case 0:
        return "OK";
#define TRONE_ERROR_NAME(name, value, text) \
    case value:                             \
        return #name;
        TRONE_ERRORS(TRONE_ERROR_NAME)
#undef TRONE_ERROR_NAME
    default:
        return "TRONE_EUNKNOWN";
    }
}
