#ifndef MAGICBELL_CLIBCRYPTO_SHIM_H
#define MAGICBELL_CLIBCRYPTO_SHIM_H
// The slice of OpenSSL 3's libcrypto this project uses: keyed HMAC-SHA256
// (RFC 2104) and a constant-time compare.
//
// HMAC is built on libcrypto's SHA-256 primitive (SHA256_Init and friends)
// where the library still has it, and on EVP_MAC where it does not. The
// reason is process start, which a CGI request pays every time: the first
// EVP fetch makes OpenSSL 3 load its provider and index every algorithm
// name, about 1.7 ms on the 2-core machine bench/cgi-bench ran on, more
// than the rest of a CGI token request. The primitive needs none of it.
// It is deprecated in OpenSSL 3.0 (in favour of EVP), not removed; a build
// without the deprecated API (no-deprecated, or an application built with
// -DOPENSSL_NO_DEPRECATED: then OPENSSL_NO_DEPRECATED_3_0) takes the EVP path,
// and both are checked against RFC 4231's vectors (MagicBellJWTTests).
#define OPENSSL_SUPPRESS_DEPRECATED 1
#include <stddef.h>
#include <string.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/core_names.h>
#include <openssl/params.h>
#include <openssl/sha.h>

typedef struct mbf_hmac {
#ifndef OPENSSL_NO_DEPRECATED_3_0
    // The states after the key's ipad and opad blocks (RFC 2104 §2): the
    // key schedule is done once; each MAC copies them and goes on.
    SHA256_CTX inner, outer;
#else
    EVP_MAC_CTX *ctx;
#endif
} mbf_hmac;

// A keyed HMAC-SHA256. Returns NULL on failure. Free with mbf_hmac_sha256_free,
// which wipes the key's states.
static inline mbf_hmac *mbf_hmac_sha256_new(const unsigned char *key, size_t key_len) {
    mbf_hmac *h = OPENSSL_zalloc(sizeof(mbf_hmac));
    if (h == NULL) return NULL;
#ifndef OPENSSL_NO_DEPRECATED_3_0
    unsigned char block[SHA256_CBLOCK] = {0}, pad[SHA256_CBLOCK];
    if (key_len > SHA256_CBLOCK) {
        SHA256(key, key_len, block); // RFC 2104 §2: a key longer than a block is hashed first
    } else if (key_len > 0) {
        memcpy(block, key, key_len);
    }
    // One call per statement: the order in which C evaluates the operands
    // of `&` is unspecified, and Update before Init would key nothing.
    int ok = 1;
    for (int i = 0; i < SHA256_CBLOCK; i++) pad[i] = block[i] ^ 0x36;
    ok &= SHA256_Init(&h->inner);
    ok &= SHA256_Update(&h->inner, pad, SHA256_CBLOCK);
    for (int i = 0; i < SHA256_CBLOCK; i++) pad[i] = block[i] ^ 0x5c;
    ok &= SHA256_Init(&h->outer);
    ok &= SHA256_Update(&h->outer, pad, SHA256_CBLOCK);
    OPENSSL_cleanse(block, sizeof block);
    OPENSSL_cleanse(pad, sizeof pad);
    if (ok != 1) {
        OPENSSL_clear_free(h, sizeof(mbf_hmac));
        return NULL;
    }
#else
    EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    if (mac != NULL) h->ctx = EVP_MAC_CTX_new(mac);
    EVP_MAC_free(mac); // the context holds its own reference
    char digest[] = "SHA256";
    OSSL_PARAM params[2];
    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0);
    params[1] = OSSL_PARAM_construct_end();
    if (h->ctx == NULL || EVP_MAC_init(h->ctx, key, key_len, params) != 1) {
        EVP_MAC_CTX_free(h->ctx);
        OPENSSL_free(h);
        return NULL;
    }
#endif
    return h;
}

static inline void mbf_hmac_sha256_free(mbf_hmac *h) {
    if (h == NULL) return;
#ifdef OPENSSL_NO_DEPRECATED_3_0
    EVP_MAC_CTX_free(h->ctx);
#endif
    OPENSSL_clear_free(h, sizeof(mbf_hmac));
}

// HMAC-SHA256 of a message with the key already set. out must hold
// 32 bytes. Returns 1 on success.
static inline int mbf_hmac_sha256(mbf_hmac *h, const unsigned char *message, size_t length,
                                  unsigned char *out) {
#ifndef OPENSSL_NO_DEPRECATED_3_0
    SHA256_CTX ctx = h->inner;
    unsigned char inner[SHA256_DIGEST_LENGTH];
    int ok = SHA256_Update(&ctx, message, length);
    ok &= SHA256_Final(inner, &ctx);
    ctx = h->outer;
    ok &= SHA256_Update(&ctx, inner, sizeof inner);
    ok &= SHA256_Final(out, &ctx);
    OPENSSL_cleanse(&ctx, sizeof ctx);
    OPENSSL_cleanse(inner, sizeof inner);
    return ok == 1;
#else
    size_t out_len = 0;
    // A NULL key re-initialises with the key set at creation.
    if (EVP_MAC_init(h->ctx, NULL, 0, NULL) != 1) return 0;
    if (length > 0 && EVP_MAC_update(h->ctx, message, length) != 1) return 0;
    if (EVP_MAC_final(h->ctx, out, &out_len, 32) != 1) return 0;
    return out_len == 32;
#endif
}

static inline int mbf_memcmp_consttime(const void *a, const void *b, size_t len) {
    return CRYPTO_memcmp(a, b, len);
}
#endif
