#ifndef MAGICBELL_CLIBCRYPTO_SHIM_H
#define MAGICBELL_CLIBCRYPTO_SHIM_H
// The slice of OpenSSL 3's libcrypto this project uses: keyed HMAC-SHA256
// through the EVP_MAC API, and a constant-time compare.
#include <stddef.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/core_names.h>
#include <openssl/params.h>

// A keyed HMAC-SHA256 context. The key schedule (ipad/opad blocks) is done
// once here; every later mbf_hmac_sha256 call only re-initialises from it.
// Returns NULL on failure. Free with EVP_MAC_CTX_free.
static inline EVP_MAC_CTX *mbf_hmac_sha256_new(const unsigned char *key, size_t key_len) {
    EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    if (mac == NULL) return NULL;
    EVP_MAC_CTX *ctx = EVP_MAC_CTX_new(mac);
    EVP_MAC_free(mac); // the context holds its own reference
    if (ctx == NULL) return NULL;
    char digest[] = "SHA256";
    OSSL_PARAM params[2];
    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0);
    params[1] = OSSL_PARAM_construct_end();
    if (EVP_MAC_init(ctx, key, key_len, params) != 1) {
        EVP_MAC_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

// HMAC-SHA256 of a message with the key already set in ctx. out must hold
// 32 bytes. Returns 1 on success.
static inline int mbf_hmac_sha256(EVP_MAC_CTX *ctx, const unsigned char *message, size_t length,
                                  unsigned char *out) {
    size_t out_len = 0;
    // A NULL key re-initialises with the key set at creation.
    if (EVP_MAC_init(ctx, NULL, 0, NULL) != 1) return 0;
    if (length > 0 && EVP_MAC_update(ctx, message, length) != 1) return 0;
    if (EVP_MAC_final(ctx, out, &out_len, 32) != 1) return 0;
    return out_len == 32;
}

static inline int mbf_memcmp_consttime(const void *a, const void *b, size_t len) {
    return CRYPTO_memcmp(a, b, len);
}
#endif
