/* mime.h: Content-Type of a document by its file name extension. */
#ifndef HTTPD_MIME_H
#define HTTPD_MIME_H

/**
 * The Content-Type for `path` from its extension (case-insensitive): html/htm, css, js, txt,
 * json, svg, png, jpg/jpeg, gif, ico; anything else (including .bin and no extension) is
 * "application/octet-stream". Returns a static string.
 */
const char *mime_type(const char *path);

#endif
