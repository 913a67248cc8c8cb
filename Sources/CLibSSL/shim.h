#ifndef MAGICBELL_CLIBSSL_SHIM_H
#define MAGICBELL_CLIBSSL_SHIM_H
// The slice of OpenSSL 3's libssl the HTTPS client uses. The functions
// below wrap macros (SSL_set_tlsext_host_name and friends are SSL_ctrl
// calls), which Swift cannot import.
#include <openssl/ssl.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>

// Linux calls the client waits with, which Swift's Glibc module leaves out:
// an eventfd wakes a poll when a call is cancelled or a name lookup ends.
#include <sys/eventfd.h>
#include <netdb.h>

static inline int mbf_ssl_set_sni(SSL *ssl, const char *name) {
    return (int)SSL_set_tlsext_host_name(ssl, name);
}

static inline int mbf_ssl_ctx_set_min_tls12(SSL_CTX *ctx) {
    return (int)SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
}

static inline void mbf_ssl_ctx_configure(SSL_CTX *ctx) {
    // A partial SSL_write reports what it wrote, and the buffer may move
    // between retries: the client retries from a Swift array's new address.
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    // One exchange per connection: a renegotiation has no use here, only risk.
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION);
}
#endif
