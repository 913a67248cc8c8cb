#ifndef MAGICBELL_CFASTCGI_SHIM_H
#define MAGICBELL_CFASTCGI_SHIM_H
// libfcgi's reentrant API only (FCGX_*). fcgi_stdio.h is deliberately not
// imported: its FCGI_Accept rewrites `environ`, which is not thread-safe.
#include <fcgiapp.h>
// The spec's own header: record types, flags and statuses (FCGI enum).
#include <fastcgi.h>

// The Linux calls the worker pool waits with; Swift's Glibc module leaves them out.
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <signal.h>
#include <sys/socket.h>
#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/resource.h>

// accept4 is a GNU extension the Glibc module does not declare; an event loop
// accepts connections itself, close-on-exec and non-blocking.
int accept4(int sockfd, struct sockaddr *addr, socklen_t *addrlen, int flags);
static inline int mbf_accept_nonblocking(int fd) { return accept4(fd, 0, 0, SOCK_CLOEXEC | SOCK_NONBLOCK); }

#include <netinet/in.h>
#include <netinet/tcp.h>
static inline void mbf_set_tcp_nodelay(int fd) { int on = 1; (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on); }

// pthread_setname_np is GNU: the workers' names, as top(1) and gdb show them.
#include <pthread.h>
int pthread_setname_np(pthread_t thread, const char *name);
static inline int mbf_set_thread_name(const char *name) { return pthread_setname_np(pthread_self(), name); }
int pthread_getname_np(pthread_t thread, char *name, size_t length);
static inline int mbf_thread_name(char *name, size_t length) { return pthread_getname_np(pthread_self(), name, length); }

// No core file, and no ptrace by same-uid processes: a crash must never
// write the secret key to disk. prctl is variadic, which Swift cannot call.
static inline int mbf_forbid_core_dumps(void) {
    struct rlimit none = {0, 0};
    int a = setrlimit(RLIMIT_CORE, &none);
    int b = prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
    return a == 0 && b == 0 ? 0 : -1;
}

// The descriptor limit, soft and hard; and raising the soft one to `wanted`
// (at most the hard one). Returns the soft limit in force.
static inline long mbf_nofile_limit(void) {
    struct rlimit limit;
    return getrlimit(RLIMIT_NOFILE, &limit) == 0 ? (long)limit.rlim_cur : 1024;
}
static inline long mbf_raise_nofile_limit(long wanted) {
    struct rlimit limit;
    if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return 1024;
    if ((long)limit.rlim_cur < wanted) {
        limit.rlim_cur = (rlim_t)wanted < limit.rlim_max ? (rlim_t)wanted : limit.rlim_max;
        setrlimit(RLIMIT_NOFILE, &limit);
        getrlimit(RLIMIT_NOFILE, &limit);
    }
    return (long)limit.rlim_cur;
}

// The uid of a unix-socket peer (SO_PEERCRED; struct ucred needs _GNU_SOURCE).
struct mbf_ucred { int pid; unsigned uid; unsigned gid; };
static inline int mbf_peer_uid(int fd, unsigned *uid) {
    struct mbf_ucred credentials;
    socklen_t length = sizeof(credentials);
    if (getsockopt(fd, SOL_SOCKET, 17 /* SO_PEERCRED */, &credentials, &length) != 0) return -1;
    *uid = credentials.uid;
    return 0;
}
#endif
