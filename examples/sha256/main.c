/*
 * Compute-bound example with a known answer: SHA-256 of N KiB of a deterministic byte
 * pattern (byte i = (i * 31 + (i >> 10)) mod 256), N = argv[1] (default 512: about 46
 * million instructions, i.e. about 1 s on an emulator running ~50 MIPS; ~90,000
 * instructions per KiB). Check on the host with:
 *   node -e 'const n=512*1024,b=Buffer.alloc(n);for(let i=0;i<n;i++)b[i]=(i*31+(i>>10))&255;process.stdout.write(b)' | sha256sum
 */
#include "sha256.h"
#include <stdio.h>
#include <stdlib.h>

static void print_digest(const char *label, const uint8_t d[32]) {
    printf("%s", label);
    for (int i = 0; i < 32; i++) printf("%02x", d[i]);
    printf("\n");
}

int main(int argc, char **argv) {
    uint8_t digest[32];
    struct sha256 s;

    /* FIPS 180-4 test vector: a wrong compiler or emulator shows up here first. */
    sha256_init(&s);
    sha256_update(&s, "abc", 3);
    sha256_final(&s, digest);
    print_digest("sha256(\"abc\") = ", digest);

    long kib = argc > 1 ? strtol(argv[1], NULL, 10) : 512;
    if (kib < 0) kib = 0;
    static uint8_t chunk[1024];
    uint32_t i = 0;
    sha256_init(&s);
    for (long k = 0; k < kib; k++) {
        for (int j = 0; j < 1024; j++, i++) chunk[j] = (uint8_t)(i * 31 + (i >> 10));
        sha256_update(&s, chunk, sizeof chunk);
    }
    sha256_final(&s, digest);
    printf("sha256(%ld KiB pattern) = ", kib);
    print_digest("", digest);
    return 0;
}
