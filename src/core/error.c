/* Error messages and names: both come from ASYNC_ERRNO_MAP. */
#include <string.h>

#include <async.h>

const char *async_strerror(int err)
{
    switch (err) {
#define ASYNC__ERR_MSG(name, value, msg) case value: return msg;
        ASYNC_ERRNO_MAP(ASYNC__ERR_MSG)
#undef ASYNC__ERR_MSG
    case 0:
        return "success";
    default:
        break;
    }
    if (err < 0 && err > -4000)
        return strerror(-err);
    return "unknown error";
}

const char *async_err_name(int err)
{
    switch (err) {
#define ASYNC__ERR_NAME(name, value, msg) case value: return #name;
        ASYNC_ERRNO_MAP(ASYNC__ERR_NAME)
#undef ASYNC__ERR_NAME
    case 0:
        return "OK";
    default:
        return "UNKNOWN";
    }
}

const char *async_version_string(void)
{
    return ASYNC_VERSION_STRING;
}

unsigned async_version(void)
{
    return ASYNC_VERSION_HEX;
}
