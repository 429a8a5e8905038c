/*
 * CZMQ: the C boundary of TaskMesh. It wraps plain libzmq (libzmq3-dev), not the separate
 * "czmq" C library. Only the Swift module ZMQ imports it.
 *
 * Every helper here carries the czmq_ prefix so a call into C is visible at a glance.
 */
#ifndef TASKMESH_CZMQ_SHIM_H
#define TASKMESH_CZMQ_SHIM_H

#include <zmq.h>
#include <errno.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include <stdint.h>

/* Debian's zmq.h lists this option under ZMQ_BUILD_DRAFT_API, but libzmq 4.3.4 handles it
 * unconditionally (options.cpp). With it, a CURVE server whose ZAP handler is missing rejects
 * connections instead of accepting them. */
#ifndef ZMQ_ZAP_ENFORCE_DOMAIN
#define ZMQ_ZAP_ENFORCE_DOMAIN 93
#endif

/* libzmq's own errno values are expressions Swift cannot import; expose them as constants. */
static const int czmq_ETERM = ETERM;
static const int czmq_EFSM = EFSM;
static const int czmq_EMTHREAD = EMTHREAD;
static const int czmq_ENOCOMPATPROTO = ENOCOMPATPROTO;
static const int czmq_ZAP_ENFORCE_DOMAIN = ZMQ_ZAP_ENFORCE_DOMAIN;

/* An eventfd used to wake a thread blocked in zmq_poll; returns -1 and sets errno on failure. */
static inline int czmq_eventfd_open(void) { return eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC); }

static inline int czmq_eventfd_signal(int fd) {
    uint64_t one = 1;
    return (int)write(fd, &one, sizeof one);
}

static inline int czmq_eventfd_drain(int fd) {
    uint64_t value = 0;
    return (int)read(fd, &value, sizeof value);
}

static inline int czmq_fd_close(int fd) { return close(fd); }

#endif
