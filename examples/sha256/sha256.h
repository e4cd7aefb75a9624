/* SHA-256 (FIPS 180-4), streaming interface. */
#ifndef SHA256_H
#define SHA256_H
#include <stddef.h>
#include <stdint.h>

struct sha256 {
    uint32_t h[8];
    uint64_t length; /* bytes hashed so far */
    uint8_t block[64];
    size_t used; /* bytes waiting in block */
};

void sha256_init(struct sha256 *s);
void sha256_update(struct sha256 *s, const void *data, size_t len);
/** Finish and write the 32-byte digest. */
void sha256_final(struct sha256 *s, uint8_t digest[32]);
#endif
