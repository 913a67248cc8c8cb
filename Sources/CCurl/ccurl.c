// Loads libcurl on first use: see include/ccurl.h for why.
#include "ccurl.h"

#include <dlfcn.h>
#include <locale.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>

// The functions this project calls, looked up once. Their types are the
// header's, so a wrong name or prototype fails to compile, not at run time.
static struct {
    CURLcode (*global_init)(long);
    curl_version_info_data *(*version_info)(CURLversion);
    CURL *(*easy_init)(void);
    void (*easy_cleanup)(CURL *);
    CURLcode (*easy_setopt)(CURL *, CURLoption, ...);
    CURLcode (*easy_getinfo)(CURL *, CURLINFO, ...);
    const char *(*easy_strerror)(CURLcode);
    struct curl_slist *(*slist_append)(struct curl_slist *, const char *);
    void (*slist_free_all)(struct curl_slist *);
    CURLM *(*multi_init)(void);
    CURLMcode (*multi_add_handle)(CURLM *, CURL *);
    CURLMcode (*multi_remove_handle)(CURLM *, CURL *);
    CURLMcode (*multi_perform)(CURLM *, int *);
    CURLMcode (*multi_poll)(CURLM *, struct curl_waitfd *, unsigned int, int, int *);
    CURLMsg *(*multi_info_read)(CURLM *, int *);
    CURLMcode (*multi_cleanup)(CURLM *);
    CURLSH *(*share_init)(void);
    CURLSHcode (*share_setopt)(CURLSH *, CURLSHoption, ...);
    CURLSHcode (*share_cleanup)(CURLSH *);
} curl;

static pthread_once_t load_once = PTHREAD_ONCE_INIT;
static const char *load_error = "libcurl was not loaded";
static int loaded;
static unsigned int version_num;
static const char *version_text = "";
// libcurl turns an internationalized host name into punycode with libidn2's
// idn2_lookup_ul, which reads the name in the locale's charset: in the
// process's C locale a UTF-8 name is "bad/illegal". Transfers run with a
// UTF-8 LC_CTYPE on their own thread (uselocale), the process's stays C.
static locale_t utf8_ctype;

#define LOOK_UP(field, symbol)                                   \
    do {                                                         \
        *(void **)(&curl.field) = dlsym(library, #symbol);       \
        if (!curl.field) {                                       \
            load_error = "libcurl.so.4 lacks " #symbol;          \
            return;                                              \
        }                                                        \
    } while (0)

static void load(void) {
    // RTLD_LOCAL: its symbols stay out of the process's namespace. Never
    // closed: libcurl and OpenSSL keep global state for the process's life.
    void *library = dlopen("libcurl.so.4", RTLD_NOW | RTLD_LOCAL);
    if (!library) {
        load_error = "cannot load libcurl.so.4 (Debian: apt install libcurl4)";
        return;
    }
    LOOK_UP(global_init, curl_global_init);
    LOOK_UP(version_info, curl_version_info);
    LOOK_UP(easy_init, curl_easy_init);
    LOOK_UP(easy_cleanup, curl_easy_cleanup);
    LOOK_UP(easy_setopt, curl_easy_setopt);
    LOOK_UP(easy_getinfo, curl_easy_getinfo);
    LOOK_UP(easy_strerror, curl_easy_strerror);
    LOOK_UP(slist_append, curl_slist_append);
    LOOK_UP(slist_free_all, curl_slist_free_all);
    LOOK_UP(multi_init, curl_multi_init);
    LOOK_UP(multi_add_handle, curl_multi_add_handle);
    LOOK_UP(multi_remove_handle, curl_multi_remove_handle);
    LOOK_UP(multi_perform, curl_multi_perform);
    LOOK_UP(multi_poll, curl_multi_poll);
    LOOK_UP(multi_info_read, curl_multi_info_read);
    LOOK_UP(multi_cleanup, curl_multi_cleanup);
    LOOK_UP(share_init, curl_share_init);
    LOOK_UP(share_setopt, curl_share_setopt);
    LOOK_UP(share_cleanup, curl_share_cleanup);
    curl_version_info_data *info = curl.version_info(CURLVERSION_NOW);
    // CURLOPT_PREREQFUNCTION (7.80.0) tells when a request is sent, which a
    // cancellation must not cross; debian/control depends on that version.
    if (!info || info->version_num < 0x075000) {
        load_error = "libcurl 7.80.0 or later is needed";
        return;
    }
    utf8_ctype = newlocale(LC_CTYPE_MASK, "C.UTF-8", (locale_t)0);
    version_num = info->version_num;
    version_text = info->version;
    // CURLOPT_NOSIGNAL leaves SIGPIPE to the process: a write to a closed
    // connection (libcurl before 7.87 writes TLS with plain write()) must be
    // an error, never the end of a CGI process. serve ignores it from its
    // start already; a disposition someone chose is kept.
    struct sigaction current;
    if (sigaction(SIGPIPE, NULL, &current) == 0 && current.sa_handler == SIG_DFL) signal(SIGPIPE, SIG_IGN);
    // Once, before any handle, as libcurl asks (not thread-safe before 7.84).
    if (curl.global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        load_error = "curl_global_init failed";
        return;
    }
    load_error = NULL;
    __atomic_store_n(&loaded, 1, __ATOMIC_RELEASE);
}

const char *ccurl_load(void) {
    pthread_once(&load_once, load);
    return load_error;
}

int ccurl_is_loaded(void) { return __atomic_load_n(&loaded, __ATOMIC_ACQUIRE); }
unsigned int ccurl_version_num(void) { return version_num; }
const char *ccurl_version(void) { return version_text; }

CURL *ccurl_easy_init(void) { return curl.easy_init(); }
void ccurl_easy_cleanup(CURL *easy) { curl.easy_cleanup(easy); }

CURLcode ccurl_easy_setopt_long(CURL *easy, CURLoption option, long value) {
    return curl.easy_setopt(easy, option, value);
}

CURLcode ccurl_easy_setopt_string(CURL *easy, CURLoption option, const char *value) {
    return curl.easy_setopt(easy, option, value);
}

CURLcode ccurl_easy_setopt_pointer(CURL *easy, CURLoption option, void *value) {
    return curl.easy_setopt(easy, option, value);
}

CURLcode ccurl_easy_setopt_slist(CURL *easy, CURLoption option, struct curl_slist *value) {
    return curl.easy_setopt(easy, option, value);
}

CURLcode ccurl_easy_setopt_share(CURL *easy, CURLSH *share) {
    return curl.easy_setopt(easy, CURLOPT_SHARE, share);
}

CURLcode ccurl_easy_setopt_write_function(CURL *easy, CURLoption option, curl_write_callback function) {
    return curl.easy_setopt(easy, option, function);
}

CURLcode ccurl_easy_setopt_prereq_function(CURL *easy, curl_prereq_callback function) {
    return curl.easy_setopt(easy, CURLOPT_PREREQFUNCTION, function);
}

CURLcode ccurl_easy_http_only(CURL *easy) {
    if (version_num >= 0x075500) {
        CURLcode code = curl.easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
        return code != CURLE_OK ? code : curl.easy_setopt(easy, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    }
    // The options 7.85 deprecated, by number, so that the header's
    // deprecation does not warn where they are the only ones there are.
    CURLcode code = curl.easy_setopt(easy, (CURLoption)(CURLOPTTYPE_LONG + 181), (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
    return code != CURLE_OK ? code : curl.easy_setopt(easy, (CURLoption)(CURLOPTTYPE_LONG + 182), (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
}

CURLcode ccurl_easy_quick_exit(CURL *easy) {
    // CURLOPT_QUICK_EXIT (7.87.0), by number where the header lacks it: a
    // resolver thread still looking up a name at the deadline or a
    // cancellation is detached, not joined, so the call ends on time.
    if (version_num < 0x075700) return CURLE_OK;
    return curl.easy_setopt(easy, (CURLoption)(CURLOPTTYPE_LONG + 322), 1L);
}

CURLcode ccurl_easy_getinfo_long(CURL *easy, CURLINFO info, long *value) {
    return curl.easy_getinfo(easy, info, value);
}

const char *ccurl_easy_strerror(CURLcode code) { return curl.easy_strerror(code); }

struct curl_slist *ccurl_slist_append(struct curl_slist *list, const char *string) {
    return curl.slist_append(list, string);
}

void ccurl_slist_free_all(struct curl_slist *list) { curl.slist_free_all(list); }

CURLM *ccurl_multi_init(void) { return curl.multi_init(); }
CURLMcode ccurl_multi_add_handle(CURLM *multi, CURL *easy) { return curl.multi_add_handle(multi, easy); }
CURLMcode ccurl_multi_remove_handle(CURLM *multi, CURL *easy) { return curl.multi_remove_handle(multi, easy); }
CURLMcode ccurl_multi_perform(CURLM *multi, int *running) {
    locale_t previous = utf8_ctype ? uselocale(utf8_ctype) : (locale_t)0;
    CURLMcode code = curl.multi_perform(multi, running);
    if (previous) uselocale(previous);
    return code;
}

CURLMcode ccurl_multi_poll(CURLM *multi, struct curl_waitfd *extra, unsigned int count, int timeout_ms, int *numfds) {
    return curl.multi_poll(multi, extra, count, timeout_ms, numfds);
}

int ccurl_multi_done(CURLM *multi, CURL *easy, CURLcode *result) {
    int left = 0;
    CURLMsg *message;
    while ((message = curl.multi_info_read(multi, &left))) {
        if (message->msg == CURLMSG_DONE && message->easy_handle == easy) {
            *result = message->data.result;
            return 1;
        }
    }
    return 0;
}

void ccurl_multi_cleanup(CURLM *multi) { curl.multi_cleanup(multi); }

// One multi handle per thread, kept: its connection cache is the thread's
// kept connections. libcurl does not support sharing a connection cache
// between concurrent threads (CURLSHOPT_SHARE(3), CURL_LOCK_DATA_CONNECT),
// so each worker keeps its own connections, and the share handle holds what
// may be shared: DNS answers and TLS sessions.
static pthread_key_t thread_multi_key;
static pthread_once_t thread_multi_once = PTHREAD_ONCE_INIT;

static void thread_multi_destroy(void *multi) {
    if (multi) curl.multi_cleanup(multi);
}

static void thread_multi_key_make(void) { pthread_key_create(&thread_multi_key, thread_multi_destroy); }

CURLM *ccurl_thread_multi(void) {
    pthread_once(&thread_multi_once, thread_multi_key_make);
    CURLM *multi = pthread_getspecific(thread_multi_key);
    if (!multi) {
        multi = curl.multi_init();
        if (multi && pthread_setspecific(thread_multi_key, multi) != 0) {
            curl.multi_cleanup(multi);
            multi = NULL;
        }
    }
    return multi;
}

// A share handle with one mutex per kind of shared data, as libcurl's
// share interface asks.
struct ccurl_share {
    CURLSH *handle;
    pthread_mutex_t locks[CURL_LOCK_DATA_LAST];
};

static void share_lock(CURL *easy, curl_lock_data data, curl_lock_access access, void *context) {
    (void)easy;
    (void)access;
    struct ccurl_share *share = context;
    if (data >= 0 && data < CURL_LOCK_DATA_LAST) pthread_mutex_lock(&share->locks[data]);
}

static void share_unlock(CURL *easy, curl_lock_data data, void *context) {
    (void)easy;
    struct ccurl_share *share = context;
    if (data >= 0 && data < CURL_LOCK_DATA_LAST) pthread_mutex_unlock(&share->locks[data]);
}

struct ccurl_share *ccurl_share_new(void) {
    struct ccurl_share *share = malloc(sizeof *share);
    if (!share) return NULL;
    for (int i = 0; i < CURL_LOCK_DATA_LAST; i++) pthread_mutex_init(&share->locks[i], NULL);
    share->handle = curl.share_init();
    // DNS answers and TLS sessions, for every thread: a call on a thread
    // with no kept connection still skips the lookup and resumes the TLS
    // session. (Connections stay per thread: ccurl_thread_multi.)
    if (!share->handle ||
        curl.share_setopt(share->handle, CURLSHOPT_USERDATA, share) != CURLSHE_OK ||
        curl.share_setopt(share->handle, CURLSHOPT_LOCKFUNC, share_lock) != CURLSHE_OK ||
        curl.share_setopt(share->handle, CURLSHOPT_UNLOCKFUNC, share_unlock) != CURLSHE_OK ||
        curl.share_setopt(share->handle, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS) != CURLSHE_OK ||
        curl.share_setopt(share->handle, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION) != CURLSHE_OK) {
        ccurl_share_free(share);
        return NULL;
    }
    return share;
}

CURLSH *ccurl_share_handle(struct ccurl_share *share) { return share->handle; }

void ccurl_share_free(struct ccurl_share *share) {
    if (!share) return;
    // A share still used by a handle cannot go (CURLSHE_IN_USE): then it
    // and its locks stay, rather than be freed under that handle.
    if (share->handle && curl.share_cleanup(share->handle) != CURLSHE_OK) return;
    for (int i = 0; i < CURL_LOCK_DATA_LAST; i++) pthread_mutex_destroy(&share->locks[i]);
    free(share);
}
