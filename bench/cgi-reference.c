/* The floor for a CGI token request: a C program that mints the same User
 * JWT as magicbell-fcgi in CGI mode (HS256 over user_email,
 * user_external_id, api_key, iat, exp, with OpenSSL) and answers with the
 * same JSON. It checks nothing and escapes nothing (the bench identity is
 * plain ASCII): it measures what a process start plus a token costs.
 *
 * Its HMAC is the project's own C (Sources/CLibCrypto/shim.h).
 *
 *   cc -O2 -I Sources/CLibCrypto -o cgi-reference bench/cgi-reference.c -lcrypto
 */
#include "shim.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static size_t b64url(const unsigned char *in, size_t n, char *out) {
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

static void json_string(char *out, const char *value) {
    if (value && *value) sprintf(out, "\"%s\"", value); else strcpy(out, "null");
}

int main(void) {
    const char *key = getenv("MAGICBELL_SECRET_KEY"), *api = getenv("MAGICBELL_API_KEY");
    const char *id = getenv("MAGICBELL_USER_EXTERNAL_ID"), *email = getenv("MAGICBELL_USER_EMAIL");
    if (!key || !api || (!id && !email)) { fputs("Status: 500\r\n\r\n", stdout); return 0; }
    long ttl = 3600, iat = (long)time(NULL);
    char e[1100], x[1100], claims[2600], token[4096], body[4400];
    json_string(e, email);
    json_string(x, id);
    int cn = snprintf(claims, sizeof claims, "{\"user_email\":%s,\"user_external_id\":%s,\"api_key\":\"%s\",\"iat\":%ld,\"exp\":%ld}",
                      e, x, api, iat, iat + ttl);
    static const char header[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
    size_t n = b64url((const unsigned char *)header, sizeof header - 1, token);
    token[n++] = '.';
    n += b64url((const unsigned char *)claims, (size_t)cn, token + n);
    // The same HMAC code as magicbell-fcgi's (its CLibCrypto shim), so that
    // the two differ only in what is around it.
    unsigned char mac[32];
    size_t maclen = sizeof mac;
    mbf_hmac *hmac = mbf_hmac_sha256_new((const unsigned char *)key, strlen(key));
    if (!hmac || !mbf_hmac_sha256(hmac, (const unsigned char *)token, n, mac)) { fputs("Status: 500\r\n\r\n", stdout); return 0; }
    mbf_hmac_sha256_free(hmac);
    token[n++] = '.';
    n += b64url(mac, maclen, token + n);
    token[n] = 0;
    int bn = snprintf(body, sizeof body, "{\"token\":\"%s\",\"expires_at\":%ld,\"expires_in\":%ld}", token, iat + ttl, ttl);
    printf("Status: 200 OK\r\nContent-Type: application/json\r\nCache-Control: no-store\r\nContent-Length: %d\r\n\r\n%s", bn, body);
    return 0;
}
