#ifndef MAGICBELL_CFASTCGI_SHIM_H
#define MAGICBELL_CFASTCGI_SHIM_H
// libfcgi's reentrant API only (FCGX_*). fcgi_stdio.h is deliberately not
// imported: its FCGI_Accept rewrites `environ`, which is not thread-safe.
#include <fcgiapp.h>

// The Linux calls the worker pool waits with; Swift's Glibc module leaves them out.
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <signal.h>
#include <sys/socket.h>
#include <fcntl.h>

// accept4 is a GNU extension the Glibc module does not declare; the worker
// accepts connections itself, close-on-exec, and hands them to libfcgi.
int accept4(int sockfd, struct sockaddr *addr, socklen_t *addrlen, int flags);
static inline int mbf_accept_cloexec(int fd) { return accept4(fd, 0, 0, SOCK_CLOEXEC); }

// pipe2 and F_SETPIPE_SZ are GNU too: the worker's pipe that feeds libfcgi
// a checked header block (ConnectionWorker).
int pipe2(int pipefd[2], int flags);
static inline int mbf_pipe_cloexec_nonblock(int fds[2]) { return pipe2(fds, 02000000 /* O_CLOEXEC */ | 04000 /* O_NONBLOCK */); }
static inline int mbf_set_pipe_size(int fd, int size) { return fcntl(fd, 1031 /* F_SETPIPE_SZ */, size); }
#endif
