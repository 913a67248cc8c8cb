#include "hmac_reference.h"
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>

int hmac_reference_loop(const unsigned char *key, size_t key_len, const unsigned char *message, size_t length,
                        long count, unsigned char *out) {
    EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    if (mac == NULL) return 0;
    EVP_MAC_CTX *ctx = EVP_MAC_CTX_new(mac);
    EVP_MAC_free(mac);
    if (ctx == NULL) return 0;
    char digest[] = "SHA256";
    OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0), OSSL_PARAM_construct_end()};
    int ok = EVP_MAC_init(ctx, key, key_len, params) == 1;
    for (long i = 0; ok && i < count; i++) {
        size_t out_len = 0;
        ok = EVP_MAC_init(ctx, NULL, 0, NULL) == 1 && EVP_MAC_update(ctx, message, length) == 1 &&
             EVP_MAC_final(ctx, out, &out_len, 32) == 1 && out_len == 32;
    }
    EVP_MAC_CTX_free(ctx);
    return ok;
}
