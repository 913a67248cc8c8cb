/* A C FastCGI responder on libfcgi, the way fcgi2's examples/threaded.c
 * serves: THREADS threads, each with its own FCGX_Request in an
 * FCGX_Accept_r loop. It answers every request with the same token as
 * magicbell-fcgi (bench/reference-token.h), with one keyed HMAC per thread,
 * and checks nothing: what libfcgi itself costs per request.
 *
 * libfcgi keeps a connection (FCGI_KEEP_CONN) on the thread that accepted
 * it until the web server closes it, so with nginx's keep-alive it needs
 * as many threads as nginx keeps connections (bench/nginx-bench starts it
 * with one thread per kept connection).
 *
 *   cc -O2 -I Sources/CLibCrypto -o fcgi-reference bench/fcgi-reference.c -lfcgi -lcrypto -lpthread
 *   MAGICBELL_SECRET_KEY=... MAGICBELL_API_KEY=... ./fcgi-reference SOCKET THREADS
 */
#include "reference-token.h"
#include <fcgiapp.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>

static int listen_fd;
static const char *key, *api;

static void *serve(void *unused) {
    (void)unused;
    FCGX_Request request;
    FCGX_InitRequest(&request, listen_fd, 0);
    mbf_hmac *hmac = mbf_hmac_sha256_new((const unsigned char *)key, strlen(key));
    char body[4400];
    while (hmac && FCGX_Accept_r(&request) == 0) {
        const char *id = FCGX_GetParam("MAGICBELL_USER_EXTERNAL_ID", request.envp);
        const char *email = FCGX_GetParam("MAGICBELL_USER_EMAIL", request.envp);
        int bn = reference_token(hmac, api, id, email, (long)time(NULL), 3600, body);
        if (bn < 0) FCGX_PutS("Status: 500\r\n\r\n", request.out);
        else FCGX_FPrintF(request.out, "Status: 200 OK\r\nContent-Type: application/json\r\nCache-Control: no-store\r\n"
                          "Content-Length: %d\r\n\r\n%s", bn, body);
        FCGX_Finish_r(&request);
    }
    return NULL;
}

int main(int argc, char **argv) {
    key = getenv("MAGICBELL_SECRET_KEY");
    api = getenv("MAGICBELL_API_KEY");
    if (argc != 3 || !key || !api) { fputs("usage: MAGICBELL_SECRET_KEY=... MAGICBELL_API_KEY=... fcgi-reference SOCKET THREADS\n", stderr); return 2; }
    int threads = atoi(argv[2]);
    if (FCGX_Init() != 0 || (listen_fd = FCGX_OpenSocket(argv[1], 1024)) < 0) { perror("fcgi-reference"); return 1; }
    chmod(argv[1], 0666);
    pthread_t ids[1024];
    for (int i = 0; i < threads && i < 1024; i++) pthread_create(&ids[i], NULL, serve, NULL);
    for (int i = 0; i < threads && i < 1024; i++) pthread_join(ids[i], NULL);
    return 0;
}
