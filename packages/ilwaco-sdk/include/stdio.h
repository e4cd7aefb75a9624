/* stdio.h: console I/O (paper 3.3: "basic console I/O via printf and scanf").
 *
 * There are no files: stdin, stdout and stderr are the Denali console. stdout is line
 * buffered (flushed at '\n', when the 1 KiB buffer fills, before reading stdin, and on exit);
 * stderr is unbuffered. getchar() blocks the calling thread only: other threads run, and the
 * VM idles until a console interrupt when none can.
 *
 * printf supports flags "-+ #0", width and precision (including '*'), length modifiers hh h l
 * ll z j t L, conversions d i u x X o c s p n % and f F e E g G (no %a). Floating point:
 * digits are those of the exact binary value, correctly rounded with ties to even (as glibc),
 * for up to 17 significant digits; digits past the 17th print as 0, precision is capped at
 * 500, and subnormal numbers may be off in the last digit.
 * test/native/printf-fuzz.c checks this against glibc. long double (L) is printed with
 * double precision (and converting it uses x87 instructions).
 */
#ifndef ILWACO_STDIO_H
#define ILWACO_STDIO_H
#include <stdarg.h>
#include <stddef.h>
#ifdef __cplusplus
extern "C" {
#endif
#define EOF (-1)
#ifndef NULL
#define NULL ((void *)0)
#endif
#define BUFSIZ 1024

/** Opaque console stream. */
typedef struct ilwaco_file FILE;
extern FILE *const stdin;
extern FILE *const stdout;
extern FILE *const stderr;

int printf(const char *restrict fmt, ...) __attribute__((format(printf, 1, 2)));
int vprintf(const char *restrict fmt, va_list ap);
int fprintf(FILE *restrict f, const char *restrict fmt, ...) __attribute__((format(printf, 2, 3)));
int vfprintf(FILE *restrict f, const char *restrict fmt, va_list ap);
int sprintf(char *restrict buf, const char *restrict fmt, ...) __attribute__((format(printf, 2, 3)));
int vsprintf(char *restrict buf, const char *restrict fmt, va_list ap);
/** Writes at most size-1 chars plus NUL; returns the length the full output would have. */
int snprintf(char *restrict buf, size_t size, const char *restrict fmt, ...) __attribute__((format(printf, 3, 4)));
int vsnprintf(char *restrict buf, size_t size, const char *restrict fmt, va_list ap);
/** scanf subset: %d %i %u %x %o %s %c %[...] %n %% with widths, hh/h/l/ll/z; returns fields assigned. */
int sscanf(const char *restrict s, const char *restrict fmt, ...);
int vsscanf(const char *restrict s, const char *restrict fmt, va_list ap);
/** scanf on stdin reads one line (blocking the thread) and parses it like sscanf. */
int scanf(const char *restrict fmt, ...);

int puts(const char *s);
int fputs(const char *restrict s, FILE *restrict f);
int putchar(int c);
int fputc(int c, FILE *f);
int putc(int c, FILE *f);
size_t fwrite(const void *restrict p, size_t size, size_t n, FILE *restrict f);
int fflush(FILE *f);
/** Next console byte or EOF; blocks the calling thread until input arrives. */
int getchar(void);
int fgetc(FILE *f);
int getc(FILE *f);
/** Push back one byte onto stdin. */
int ungetc(int c, FILE *f);
/** Read a line (up to n-1 bytes, keeping the '\n'); NULL at EOF with nothing read. */
char *fgets(char *restrict s, int n, FILE *restrict f);
size_t fread(void *restrict p, size_t size, size_t n, FILE *restrict f);
int feof(FILE *f);
int ferror(FILE *f);
void perror(const char *s);
#ifdef __cplusplus
}
#endif
#endif
