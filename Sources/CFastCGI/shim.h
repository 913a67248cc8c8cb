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
#endif
