/* Helpers shared by the raw libzmq benchmark programs (raw_worker, raw_sink, raw_client).
 *
 * Wire format of these programs, for both shapes:
 *   job    = [header][payload]      header = 8-byte job number, 1-byte op ('e' echo, 's' sha256),
 *                                            16-byte client id (the DEALER routing id in shape b)
 *   result = [header][body]          the header comes back unchanged; body = the payload (echo)
 *                                    or the payload's lowercase hex SHA-256 digest (64 bytes)
 */
#ifndef BENCH_COMMON_H
#define BENCH_COMMON_H

#include <errno.h>
#include <openssl/evp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

#define HEADER_SIZE 25
#define CLIENT_ID_OFFSET 9
#define CLIENT_ID_SIZE 16
#define HWM 10000 /* the same high-water mark TaskMesh's topologies use by default */

static inline void die(const char *what) {
    fprintf(stderr, "%s: %s\n", what, zmq_strerror(zmq_errno()));
    exit(1);
}

static inline uint64_t now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

/* A socket with the benchmark's high-water marks and no linger. */
static void *make_socket(void *ctx, int type) {
    void *s = zmq_socket(ctx, type);
    if (!s) die("zmq_socket");
    int hwm = HWM, linger = 0;
    zmq_setsockopt(s, ZMQ_SNDHWM, &hwm, sizeof hwm);
    zmq_setsockopt(s, ZMQ_RCVHWM, &hwm, sizeof hwm);
    zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof linger);
    return s;
}

/* Binds to a free loopback port and writes the endpoint it got into `out`. */
static inline void bind_any(void *s, char *out, size_t size) {
    if (zmq_bind(s, "tcp://127.0.0.1:*") != 0) die("zmq_bind");
    if (zmq_getsockopt(s, ZMQ_LAST_ENDPOINT, out, &size) != 0) die("ZMQ_LAST_ENDPOINT");
}

/* Connects `s` to every endpoint of a comma-separated list. */
static inline void connect_all(void *s, const char *list) {
    char copy[4096];
    snprintf(copy, sizeof copy, "%s", list);
    for (char *ep = strtok(copy, ","); ep; ep = strtok(NULL, ","))
        if (zmq_connect(s, ep) != 0) die(ep);
}

/* The lowercase hex SHA-256 digest of data, 64 characters (no terminator) into hex. */
static inline void sha256_hex(const void *data, size_t size, char hex[64]) {
    unsigned char digest[32];
    unsigned int length = 0;
    EVP_Digest(data, size, digest, &length, EVP_sha256(), NULL);
    for (int i = 0; i < 32; i++) {
        static const char digits[] = "0123456789abcdef";
        hex[2 * i] = digits[digest[i] >> 4];
        hex[2 * i + 1] = digits[digest[i] & 15];
    }
}

/* VmRSS of a process in KiB, or -1. */
static inline long rss_kib(long pid) {
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%ld/status", pid);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    long kib = -1;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, "VmRSS:", 6) == 0) { kib = atol(line + 6); break; }
    fclose(f);
    return kib;
}

#endif
