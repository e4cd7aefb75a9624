/* Content-Type by extension (mime.h). */
#include "mime.h"
#include <string.h>
#include <strings.h>

static const struct {
    const char *ext;
    const char *type;
} TYPES[] = {
    {"html", "text/html; charset=utf-8"},
    {"htm", "text/html; charset=utf-8"},
    {"css", "text/css; charset=utf-8"},
    {"js", "text/javascript; charset=utf-8"},
    {"txt", "text/plain; charset=utf-8"},
    {"json", "application/json"},
    {"svg", "image/svg+xml"},
    {"png", "image/png"},
    {"jpg", "image/jpeg"},
    {"jpeg", "image/jpeg"},
    {"gif", "image/gif"},
    {"ico", "image/x-icon"},
    {"bin", "application/octet-stream"},
};

const char *mime_type(const char *path) {
    /* The last '.' of the last segment, not its first byte (".profile" has no extension): one
     * pass over the path, then a short look at the extension. */
    const char *dot = strrchr(path, '.');
    if (dot && dot != path && dot[-1] != '/' && !strchr(dot + 1, '/')) {
        for (size_t i = 0; i < sizeof TYPES / sizeof TYPES[0]; i++) {
            if (strcasecmp(dot + 1, TYPES[i].ext) == 0) return TYPES[i].type;
        }
    }
    return "application/octet-stream";
}
