/* raw_worker: a no-op (echo) or sha256 worker over plain libzmq.
 *
 *   raw_worker a          shape (a): binds PULL (jobs) and PUSH (results) on free loopback ports
 *   raw_worker b SINK     shape (b): binds PULL (jobs), connects PUSH to the sink's results endpoint
 *
 * Prints "ready jobs=ENDPOINT [results=ENDPOINT]" and serves until killed. */
#include "common.h"

int main(int argc, char **argv) {
    if (argc < 2 || (argv[1][0] == 'b' && argc < 3)) {
        fprintf(stderr, "usage: raw_worker a | raw_worker b SINK_RESULTS_ENDPOINT\n");
        return 2;
    }
    void *ctx = zmq_ctx_new();
    void *jobs = make_socket(ctx, ZMQ_PULL);
    void *results = make_socket(ctx, ZMQ_PUSH);
    char jobs_ep[256], results_ep[256] = "";
    bind_any(jobs, jobs_ep, sizeof jobs_ep);
    if (argv[1][0] == 'a') {
        bind_any(results, results_ep, sizeof results_ep);
        printf("ready jobs=%s results=%s\n", jobs_ep, results_ep);
    } else {
        if (zmq_connect(results, argv[2]) != 0) die("connect sink");
        printf("ready jobs=%s\n", jobs_ep);
    }
    fflush(stdout);

    for (;;) {
        zmq_msg_t header, body;
        zmq_msg_init(&header);
        zmq_msg_init(&body);
        if (zmq_msg_recv(&header, jobs, 0) < 0) die("recv header");
        if (!zmq_msg_more(&header) || zmq_msg_recv(&body, jobs, 0) < 0) die("recv payload");
        const unsigned char *h = zmq_msg_data(&header);
        if (zmq_msg_size(&header) >= HEADER_SIZE && h[8] == 's') {
            char hex[64];
            sha256_hex(zmq_msg_data(&body), zmq_msg_size(&body), hex);
            zmq_msg_close(&body);
            zmq_msg_init_size(&body, 64);
            memcpy(zmq_msg_data(&body), hex, 64);
        }
        /* echo: the payload goes back as it came, without a copy */
        if (zmq_msg_send(&header, results, ZMQ_SNDMORE) < 0) die("send header");
        if (zmq_msg_send(&body, results, 0) < 0) die("send body");
    }
}
