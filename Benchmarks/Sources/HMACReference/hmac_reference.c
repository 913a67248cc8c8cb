#include "hmac_reference.h"
// The product's own HMAC code (a header of static inline functions), so
// that the floor is the same MAC the token path computes.
#include "../../../Sources/CLibCrypto/shim.h"

int hmac_reference_loop(const unsigned char *key, size_t key_len, const unsigned char *message, size_t length,
                        long count, unsigned char *out) {
    mbf_hmac *hmac = mbf_hmac_sha256_new(key, key_len);
    if (hmac == NULL) return 0;
    int ok = 1;
    for (long i = 0; ok && i < count; i++) ok = mbf_hmac_sha256(hmac, message, length, out);
    mbf_hmac_sha256_free(hmac);
    return ok;
}
