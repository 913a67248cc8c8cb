#ifndef HMAC_REFERENCE_H
#define HMAC_REFERENCE_H
#include <stddef.h>

// Computes HMAC-SHA256 of `message` `count` times with one keyed EVP_MAC
// context (the same reuse the token path does), writing the last MAC to
// `out` (32 bytes). Returns 1 on success. The loop is in C, so the figure is
// OpenSSL's alone.
int hmac_reference_loop(const unsigned char *key, size_t key_len, const unsigned char *message, size_t length,
                        long count, unsigned char *out);
#endif
