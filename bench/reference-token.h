/* The token the reference programs answer with: the same User JWT as
 * magicbell-fcgi (HS256 over user_email, user_external_id, api_key, iat,
 * exp) and the same JSON around it. It checks nothing and escapes nothing
 * (the bench identity is plain ASCII): the references measure what is
 * around a token, not the token. The HMAC is the project's own C
 * (Sources/CLibCrypto/shim.h), so the programs differ only in the rest. */
#include "shim.h"
#include <stdio.h>
#include <string.h>

static size_t reference_b64url(const unsigned char *in, size_t n, char *out) {
    static const char t[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t o = 0, i = 0;
    for (; i + 2 < n; i += 3) {
        unsigned v = in[i] << 16 | in[i + 1] << 8 | in[i + 2];
        out[o++] = t[v >> 18]; out[o++] = t[v >> 12 & 63]; out[o++] = t[v >> 6 & 63]; out[o++] = t[v & 63];
    }
    if (n - i == 1) {
        unsigned v = in[i] << 16;
        out[o++] = t[v >> 18]; out[o++] = t[v >> 12 & 63];
    } else if (n - i == 2) {
        unsigned v = in[i] << 16 | in[i + 1] << 8;
        out[o++] = t[v >> 18]; out[o++] = t[v >> 12 & 63]; out[o++] = t[v >> 6 & 63];
    }
    return o;
}

static void reference_json_string(char *out, const char *value) {
    if (value && *value) sprintf(out, "\"%s\"", value); else strcpy(out, "null");
}

/* Writes {"token","expires_at","expires_in"} into body (4400 bytes);
 * returns its length, or -1. `hmac` is keyed with the secret. */
static int reference_token(mbf_hmac *hmac, const char *api, const char *id, const char *email, long iat, long ttl, char *body) {
    char e[1100], x[1100], claims[2600], token[4096];
    reference_json_string(e, email);
    reference_json_string(x, id);
    int cn = snprintf(claims, sizeof claims, "{\"user_email\":%s,\"user_external_id\":%s,\"api_key\":\"%s\",\"iat\":%ld,\"exp\":%ld}",
                      e, x, api, iat, iat + ttl);
    if (cn < 0 || cn >= (int)sizeof claims) return -1;
    static const char header[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
    size_t n = reference_b64url((const unsigned char *)header, sizeof header - 1, token);
    token[n++] = '.';
    n += reference_b64url((const unsigned char *)claims, (size_t)cn, token + n);
    unsigned char mac[32];
    if (!mbf_hmac_sha256(hmac, (const unsigned char *)token, n, mac)) return -1;
    token[n++] = '.';
    n += reference_b64url(mac, sizeof mac, token + n);
    token[n] = 0;
    return snprintf(body, 4400, "{\"token\":\"%s\",\"expires_at\":%ld,\"expires_in\":%ld}", token, iat + ttl, ttl);
}
