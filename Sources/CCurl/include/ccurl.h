#ifndef CCURL_H
#define CCURL_H
// libcurl (Debian's libcurl4, OpenSSL flavour), loaded with dlopen on the
// first MagicBell call, so that a process that only mints tokens (a CGI
// token request, `mint`, `serve` with no admin call) never maps it or its
// thirty libraries. The headers (libcurl4-openssl-dev) give the types and
// constants; the library is not linked.
//
// Swift cannot call C variadic functions, so curl_easy_setopt and
// curl_easy_getinfo are wrapped once per argument type.
#include <curl/curl.h>
// eventfd, for Cancellation (Glibc does not bring sys/eventfd.h to Swift).
#include <sys/eventfd.h>

/// Loads libcurl.so.4 and runs curl_global_init, once per process, from any
/// thread. NULL when it is ready; otherwise why not (a static string).
const char *ccurl_load(void);
/// Whether this process has loaded libcurl (tests check that minting never does).
int ccurl_is_loaded(void);
/// The loaded library's version: its number (0xXXYYZZ), and as text.
unsigned int ccurl_version_num(void);
const char *ccurl_version(void);

CURL *ccurl_easy_init(void);
void ccurl_easy_cleanup(CURL *easy);
CURLcode ccurl_easy_setopt_long(CURL *easy, CURLoption option, long value);
CURLcode ccurl_easy_setopt_string(CURL *easy, CURLoption option, const char *value);
CURLcode ccurl_easy_setopt_pointer(CURL *easy, CURLoption option, void *value);
CURLcode ccurl_easy_setopt_slist(CURL *easy, CURLoption option, struct curl_slist *value);
CURLcode ccurl_easy_setopt_share(CURL *easy, CURLSH *share);
/// CURLOPT_WRITEFUNCTION or CURLOPT_HEADERFUNCTION.
CURLcode ccurl_easy_setopt_write_function(CURL *easy, CURLoption option, curl_write_callback function);
CURLcode ccurl_easy_setopt_prereq_function(CURL *easy, curl_prereq_callback function);
/// http and https only, for the request and any redirect (never followed
/// anyway): CURLOPT_PROTOCOLS_STR from 7.85, CURLOPT_PROTOCOLS before.
CURLcode ccurl_easy_http_only(CURL *easy);
/// CURLOPT_QUICK_EXIT where the loaded libcurl has it (7.87+); else nothing.
CURLcode ccurl_easy_quick_exit(CURL *easy);
CURLcode ccurl_easy_getinfo_long(CURL *easy, CURLINFO info, long *value);
const char *ccurl_easy_strerror(CURLcode code);

struct curl_slist *ccurl_slist_append(struct curl_slist *list, const char *string);
void ccurl_slist_free_all(struct curl_slist *list);

CURLM *ccurl_multi_init(void);
CURLMcode ccurl_multi_add_handle(CURLM *multi, CURL *easy);
CURLMcode ccurl_multi_remove_handle(CURLM *multi, CURL *easy);
CURLMcode ccurl_multi_perform(CURLM *multi, int *running);
CURLMcode ccurl_multi_poll(CURLM *multi, struct curl_waitfd *extra, unsigned int count, int timeout_ms, int *numfds);
/// 1 and its result once `easy` is done, else 0.
int ccurl_multi_done(CURLM *multi, CURL *easy, CURLcode *result);
void ccurl_multi_cleanup(CURLM *multi);
/// This thread's multi handle, made at its first call and kept for the
/// thread's life (never cleaned up by the caller): its kept connections.
CURLM *ccurl_thread_multi(void);

/// A share handle for DNS answers and TLS sessions, with its own lock per
/// kind of data, usable from every worker thread at once.
/// NULL if libcurl cannot make one.
struct ccurl_share;
struct ccurl_share *ccurl_share_new(void);
/// The CURLSH to give CURLOPT_SHARE.
CURLSH *ccurl_share_handle(struct ccurl_share *share);
/// Frees it once no easy handle uses it.
void ccurl_share_free(struct ccurl_share *share);

#endif
