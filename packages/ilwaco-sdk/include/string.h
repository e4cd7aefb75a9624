/* string.h: Ilwaco libc subset (paper 3.3 "string manipulation"). Sizes in bytes. */
#ifndef ILWACO_STRING_H
#define ILWACO_STRING_H
#include <stddef.h>
#ifdef __cplusplus
extern "C" {
#endif
void *memcpy(void *restrict dst, const void *restrict src, size_t n);
void *memmove(void *dst, const void *src, size_t n);
void *memset(void *dst, int c, size_t n);
int memcmp(const void *a, const void *b, size_t n);
void *memchr(const void *s, int c, size_t n);
void *memrchr(const void *s, int c, size_t n);
void *memmem(const void *hay, size_t hlen, const void *needle, size_t nlen);
size_t strlen(const char *s);
size_t strnlen(const char *s, size_t max);
char *strcpy(char *restrict dst, const char *restrict src);
char *strncpy(char *restrict dst, const char *restrict src, size_t n);
char *stpcpy(char *restrict dst, const char *restrict src);
/** Copy at most size-1 bytes and NUL-terminate (size > 0); returns strlen(src). */
size_t strlcpy(char *restrict dst, const char *restrict src, size_t size);
/** Append to a NUL-terminated dst of total capacity size; returns the length it tried to create. */
size_t strlcat(char *restrict dst, const char *restrict src, size_t size);
char *strcat(char *restrict dst, const char *restrict src);
char *strncat(char *restrict dst, const char *restrict src, size_t n);
int strcmp(const char *a, const char *b);
int strncmp(const char *a, const char *b, size_t n);
int strcasecmp(const char *a, const char *b);
int strncasecmp(const char *a, const char *b, size_t n);
/** strcmp: Ilwaco has only the "C" locale. */
int strcoll(const char *a, const char *b);
char *strchr(const char *s, int c);
char *strrchr(const char *s, int c);
char *strstr(const char *hay, const char *needle);
char *strpbrk(const char *s, const char *accept);
size_t strspn(const char *s, const char *accept);
size_t strcspn(const char *s, const char *reject);
/** Reentrant tokenizer: *save holds the position between calls. */
char *strtok_r(char *restrict s, const char *restrict delim, char **restrict save);
/** Not reentrant across threads that yield between calls; prefer strtok_r. */
char *strtok(char *restrict s, const char *restrict delim);
/** malloc'd copy, NULL when out of memory. */
char *strdup(const char *s);
char *strndup(const char *s, size_t n);
/** Static English message for an errno value. */
char *strerror(int errnum);
#ifdef __cplusplus
}
#endif
#endif
