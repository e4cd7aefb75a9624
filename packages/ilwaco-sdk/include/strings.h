/* strings.h: BSD names; see string.h. */
#ifndef ILWACO_STRINGS_H
#define ILWACO_STRINGS_H
#include <stddef.h>
int strcasecmp(const char *a, const char *b);
int strncasecmp(const char *a, const char *b, size_t n);
#endif
