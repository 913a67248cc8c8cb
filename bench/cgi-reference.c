/* The floor for a CGI token request: a C program that mints the same User
 * JWT as magicbell-fcgi in CGI mode and answers with the same JSON
 * (bench/reference-token.h): it measures what a process start plus a token
 * costs.
 *
 *   cc -O2 -I Sources/CLibCrypto -o cgi-reference bench/cgi-reference.c -lcrypto
 */
#include "reference-token.h"
#include <stdlib.h>
#include <time.h>

int main(void) {
    const char *key = getenv("MAGICBELL_SECRET_KEY"), *api = getenv("MAGICBELL_API_KEY");
    const char *id = getenv("MAGICBELL_USER_EXTERNAL_ID"), *email = getenv("MAGICBELL_USER_EMAIL");
    if (!key || !api || (!id && !email)) { fputs("Status: 500\r\n\r\n", stdout); return 0; }
    mbf_hmac *hmac = mbf_hmac_sha256_new((const unsigned char *)key, strlen(key));
    char body[4400];
    int bn = hmac ? reference_token(hmac, api, id, email, (long)time(NULL), 3600, body) : -1;
    if (bn < 0) { fputs("Status: 500\r\n\r\n", stdout); return 0; }
    mbf_hmac_sha256_free(hmac);
    printf("Status: 200 OK\r\nContent-Type: application/json\r\nCache-Control: no-store\r\nContent-Length: %d\r\n\r\n%s", bn, body);
    return 0;
}
