/* stdio.h on the Denali console: line-buffered stdout, unbuffered stderr, stdin read through
 * the non-blocking CONSOLE_READ hypercall, blocking only the calling thread. */
#include "internal.h"
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct ilwaco_file {
    int kind; /* 0 stdin, 1 stdout, 2 stderr */
    int eof, err;
};

static struct ilwaco_file files[3] = {{0, 0, 0}, {1, 0, 0}, {2, 0, 0}};
FILE *const stdin = &files[0];
FILE *const stdout = &files[1];
FILE *const stderr = &files[2];

static char out_buf[BUFSIZ];
static size_t out_len;

static void flush_out(void) {
    if (out_len) {
        ilwaco_console_write(out_buf, out_len);
        out_len = 0;
    }
}

void __ilwaco_stdio_flush_all(void) { flush_out(); }

int fflush(FILE *f) {
    (void)f;
    flush_out();
    return 0;
}

/* Write to a stream: stdout buffers up to the last newline; stderr goes straight out. */
static void stream_write(FILE *f, const char *s, size_t n) {
    if (f == stdin) {
        f->err = 1;
        return;
    }
    if (f == stderr) {
        flush_out(); /* keep the order of interleaved stdout and stderr output */
        ilwaco_console_write(s, n);
        return;
    }
    while (n > 0) {
        size_t room = BUFSIZ - out_len;
        size_t k = n < room ? n : room;
        memcpy(out_buf + out_len, s, k);
        out_len += k;
        s += k;
        n -= k;
        if (out_len == BUFSIZ) flush_out();
    }
}


/* After a formatted or string write to stdout: flush if it contains a newline (line buffering). */
static void line_flush(FILE *f, const char *s, size_t n) {
    if (f == stdout && memchr(s, '\n', n)) flush_out();
}

struct line_watch {
    FILE *f;
    int newline;
};

static void watch_emit(void *ctx, const char *s, size_t n) {
    struct line_watch *w = ctx;
    stream_write(w->f, s, n);
    if (!w->newline && memchr(s, '\n', n)) w->newline = 1;
}

int vfprintf(FILE *restrict f, const char *restrict fmt, va_list ap) {
    struct line_watch w = {f, 0};
    int n = __ilwaco_vformat(watch_emit, &w, fmt, ap);
    if (w.newline && f == stdout) flush_out();
    return n;
}

int fprintf(FILE *restrict f, const char *restrict fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vfprintf(f, fmt, ap);
    va_end(ap);
    return n;
}

int vprintf(const char *restrict fmt, va_list ap) { return vfprintf(stdout, fmt, ap); }

int printf(const char *restrict fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vfprintf(stdout, fmt, ap);
    va_end(ap);
    return n;
}

int fputs(const char *restrict s, FILE *restrict f) {
    size_t n = strlen(s);
    stream_write(f, s, n);
    line_flush(f, s, n);
    return 0;
}

int puts(const char *s) {
    stream_write(stdout, s, strlen(s));
    stream_write(stdout, "\n", 1);
    flush_out();
    return 0;
}

int fputc(int c, FILE *f) {
    char ch = (char)c;
    stream_write(f, &ch, 1);
    line_flush(f, &ch, 1);
    return (unsigned char)c;
}
int putc(int c, FILE *f) { return fputc(c, f); }
int putchar(int c) { return fputc(c, stdout); }

size_t fwrite(const void *restrict p, size_t size, size_t n, FILE *restrict f) {
    size_t total = size * n;
    stream_write(f, p, total);
    line_flush(f, p, total);
    return n;
}

void perror(const char *s) {
    if (s && *s) fprintf(stderr, "%s: %s\n", s, strerror(errno));
    else fprintf(stderr, "%s\n", strerror(errno));
}

/* ---- input ---- */

static unsigned char in_buf[256];
static size_t in_pos, in_len;
static int in_eof;
static int pushback = -1;

int fgetc(FILE *f) {
    if (f != stdin) {
        f->err = 1;
        return EOF;
    }
    if (pushback >= 0) {
        int c = pushback;
        pushback = -1;
        return c;
    }
    flush_out(); /* a prompt written to stdout must be visible before we wait */
    while (in_pos == in_len) {
        if (in_eof) {
            stdin->eof = 1;
            return EOF;
        }
        int eof = 0;
        size_t n = ilwaco_console_read(in_buf, sizeof in_buf, &eof);
        in_pos = 0;
        in_len = n;
        if (eof && n == 0) in_eof = 1;
        if (n == 0 && !eof) __ilwaco_wait_console();
    }
    return in_buf[in_pos++];
}
int getc(FILE *f) { return fgetc(f); }
int getchar(void) { return fgetc(stdin); }

int ungetc(int c, FILE *f) {
    if (f != stdin || c == EOF || pushback >= 0) return EOF;
    pushback = (unsigned char)c;
    stdin->eof = 0;
    return c;
}

char *fgets(char *restrict s, int n, FILE *restrict f) {
    int i = 0;
    if (n <= 0) return NULL;
    while (i < n - 1) {
        int c = fgetc(f);
        if (c == EOF) break;
        s[i++] = (char)c;
        if (c == '\n') break;
    }
    if (i == 0) return NULL;
    s[i] = 0;
    return s;
}

size_t fread(void *restrict p, size_t size, size_t n, FILE *restrict f) {
    unsigned char *d = p;
    size_t total = size * n, i = 0;
    for (; i < total; i++) {
        int c = fgetc(f);
        if (c == EOF) break;
        d[i] = (unsigned char)c;
    }
    return size ? i / size : 0;
}

int feof(FILE *f) { return f->eof; }
int ferror(FILE *f) { return f->err; }

/* ---- scanf subset ---- */

int vsscanf(const char *restrict s, const char *restrict fmt, va_list ap) {
    const char *p = s;
    int assigned = 0;
    while (*fmt) {
        if (isspace((unsigned char)*fmt)) {
            while (isspace((unsigned char)*p)) p++;
            fmt++;
            continue;
        }
        if (*fmt != '%' || fmt[1] == '%') {
            if (*fmt == '%') fmt++;
            if (*p != *fmt) break;
            p++;
            fmt++;
            continue;
        }
        fmt++;
        int skip = 0, width = 0, len = 0;
        if (*fmt == '*') {
            skip = 1;
            fmt++;
        }
        while (isdigit((unsigned char)*fmt)) width = width * 10 + (*fmt++ - '0');
        while (*fmt == 'h' || *fmt == 'l' || *fmt == 'z' || *fmt == 'j') {
            len = len == *fmt ? *fmt + 1 : *fmt; /* 'i' marks hh, 'm' marks ll */
            fmt++;
        }
        int conv = *fmt++;
        if (conv == 'n') {
            if (!skip) *va_arg(ap, int *) = (int)(p - s);
            continue;
        }
        if (conv != 'c' && conv != '[')
            while (isspace((unsigned char)*p)) p++;
        if (!*p) return assigned == 0 ? EOF : assigned;
        if (conv == 'd' || conv == 'i' || conv == 'u' || conv == 'x' || conv == 'X' || conv == 'o') {
            char tmp[64];
            size_t w = width > 0 && width < 63 ? (size_t)width : 63;
            size_t k = strnlen(p, w);
            memcpy(tmp, p, k);
            tmp[k] = 0;
            char *end;
            int base = conv == 'd' ? 10 : conv == 'i' ? 0 : conv == 'o' ? 8 : conv == 'u' ? 10 : 16;
            unsigned long long v;
            if (conv == 'd' || conv == 'i') v = (unsigned long long)strtoll(tmp, &end, base);
            else v = strtoull(tmp, &end, base);
            if (end == tmp) break;
            p += end - tmp;
            if (!skip) {
                if (len == 'm' || len == 'j') *va_arg(ap, long long *) = (long long)v;
                else if (len == 'l' || len == 'z') *va_arg(ap, long *) = (long)v;
                else if (len == 'h') *va_arg(ap, short *) = (short)v;
                else if (len == 'i') *va_arg(ap, char *) = (char)v;
                else *va_arg(ap, int *) = (int)v;
                assigned++;
            }
        } else if (conv == 's') {
            char *d = skip ? NULL : va_arg(ap, char *);
            int n = 0;
            while (*p && !isspace((unsigned char)*p) && (width == 0 || n < width)) {
                if (d) d[n] = *p;
                n++;
                p++;
            }
            if (d) {
                d[n] = 0;
                assigned++;
            }
        } else if (conv == 'c') {
            char *d = skip ? NULL : va_arg(ap, char *);
            int n = width ? width : 1;
            for (int i = 0; i < n; i++) {
                if (!*p) return assigned;
                if (d) d[i] = *p;
                p++;
            }
            if (d) assigned++;
        } else if (conv == '[') {
            int negate = 0;
            if (*fmt == '^') {
                negate = 1;
                fmt++;
            }
            const char *set = fmt;
            if (*fmt == ']') fmt++;
            while (*fmt && *fmt != ']') fmt++;
            size_t setlen = (size_t)(fmt - set);
            if (*fmt) fmt++;
            char *d = skip ? NULL : va_arg(ap, char *);
            int n = 0;
            while (*p && (width == 0 || n < width) && ((memchr(set, *p, setlen) != NULL) != negate)) {
                if (d) d[n] = *p;
                n++;
                p++;
            }
            if (n == 0) break;
            if (d) {
                d[n] = 0;
                assigned++;
            }
        } else {
            break;
        }
    }
    return assigned;
}

int sscanf(const char *restrict s, const char *restrict fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsscanf(s, fmt, ap);
    va_end(ap);
    return n;
}

int scanf(const char *restrict fmt, ...) {
    char line[256];
    if (!fgets(line, sizeof line, stdin)) return EOF;
    va_list ap;
    va_start(ap, fmt);
    int n = vsscanf(line, fmt, ap);
    va_end(ap);
    return n;
}
