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

// The name check on the server's certificate, with libcurl's rules (its
// OpenSSL backend checks names itself, in ossl_verifyhost, and that is the
// client that will carry these calls): the subject's CN is consulted only
// when the certificate has no DNS and no IP subjectAltName (RFC 6125
// §6.4.4), and `*` matches only as the whole leftmost label, never as part
// of one (`f*.example.com`, §6.4.3 and curl's hostcheck.c). OpenSSL's own
// default falls back to the CN whenever no SAN of the type being checked
// is present (a certificate whose SANs hold only an IP passed for the name
// in its CN), and matches partial wildcards. X509_CHECK_FLAG_NEVER_CHECK_SUBJECT
// on every certificate would be stricter than libcurl, which still accepts
// a CN-only certificate: a change of client must not change which
// certificates pass. (An IP literal is never checked against the CN by
// OpenSSL; libcurl would compare a CN-only certificate's CN with it.)
static inline int mbf_has_dns_or_ip_san(X509 *certificate) {
    GENERAL_NAMES *names = X509_get_ext_d2i(certificate, NID_subject_alt_name, NULL, NULL);
    int found = 0;
    for (int i = 0; names != NULL && i < sk_GENERAL_NAME_num(names) && !found; i++) {
        int type = sk_GENERAL_NAME_value(names, i)->type;
        found = type == GEN_DNS || type == GEN_IPADD;
    }
    GENERAL_NAMES_free(names);
    return found;
}

// Runs in place of X509_verify_cert, on a store context whose parameters
// are a copy of the session's (the host set with SSL_set1_host): the host
// flags are chosen for this certificate, then the chain and name are
// checked as usual, so a mismatch is X509_V_ERR_HOSTNAME_MISMATCH.
static int mbf_verify_certificate(X509_STORE_CTX *store, void *unused) {
    (void)unused;
    X509 *leaf = X509_STORE_CTX_get0_cert(store);
    unsigned int flags = X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS;
    if (leaf == NULL || mbf_has_dns_or_ip_san(leaf)) flags |= X509_CHECK_FLAG_NEVER_CHECK_SUBJECT;
    X509_VERIFY_PARAM_set_hostflags(X509_STORE_CTX_get0_param(store), flags);
    return X509_verify_cert(store);
}

static inline void mbf_ssl_ctx_check_names_as_libcurl(SSL_CTX *ctx) {
    SSL_CTX_set_cert_verify_callback(ctx, mbf_verify_certificate, NULL);
}
#endif
