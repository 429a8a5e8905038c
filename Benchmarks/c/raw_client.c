/* raw_client: the client of the raw libzmq baselines. One run, one JSON line on stdout.
 *
 *   raw_client --shape a|b --kind tput|lat --op echo|sha256 --size BYTES --count N
 *              [--window W] [--warmup N] [--checkpoint N] [--watch name=pid,...]
 *              --jobs EP[,EP] --results EP[,EP]
 *
 * Shape (a): PUSH to the workers' PULLs, results from the workers' PUSHes into one PULL.
 * Shape (b): PUSH to the workers' PULLs, results through the sink: a DEALER (routing id = client
 *            id) connected to the sink's ROUTER.
 * tput: N jobs with at most W in flight, one thread sending and receiving without blocking;
 *       jobs per second from the first send to the last result.
 * lat:  one job at a time; p50/p99/p99.9 of the round trips.
 * Every result is checked against the expected body. RSS of this process and the watched pids
 * is read after `checkpoint` results and at the end. */
#include <math.h>
#include <sys/resource.h>
#include <unistd.h>
#include "common.h"

static struct {
    char shape;
    const char *kind, *op, *jobs, *results, *watch;
    long size, count, window, warmup, checkpoint;
} o = {'a', "tput", "echo", "", "", "", 16, 10000, 10000, 1000, 0};

static void *push, *pull;
static unsigned char header[HEADER_SIZE];
static char *payload, digest[64];
static const char *expected; /* the payload (echo) or its hex digest */
static size_t expected_size;
static long ok, wrong;
static char rss_checkpoint[1024] = "", rss_end[1024] = "";

static void sample_rss(char *out, size_t size) {
    int n = snprintf(out, size, "{\"client\": %ld", rss_kib(getpid()));
    char copy[1024];
    snprintf(copy, sizeof copy, "%s", o.watch);
    for (char *item = strtok(copy, ","); item; item = strtok(NULL, ",")) {
        char *eq = strchr(item, '=');
        if (!eq) continue;
        *eq = 0;
        n += snprintf(out + n, size - n, ", \"%s\": %ld", item, rss_kib(atol(eq + 1)));
    }
    snprintf(out + n, size - n, "}");
}

/* Sends job `seq`; returns 0 when the socket cannot take it now (only with ZMQ_DONTWAIT). */
static int send_job(uint64_t seq, int flags) {
    memcpy(header, &seq, 8);
    if (zmq_send(push, header, HEADER_SIZE, ZMQ_SNDMORE | flags) < 0) {
        if (zmq_errno() == EAGAIN) return 0;
        die("send header");
    }
    if (zmq_send(push, payload, o.size, flags) < 0) die("send payload");
    return 1;
}

/* Receives one result and checks it; returns 0 when none is there (only with ZMQ_DONTWAIT). */
static int receive_result(int flags, uint64_t *seq) {
    zmq_msg_t h, body;
    zmq_msg_init(&h);
    if (zmq_msg_recv(&h, pull, flags) < 0) {
        if (zmq_errno() == EAGAIN && (flags & ZMQ_DONTWAIT)) return 0;
        die("receive result (timed out?)");
    }
    zmq_msg_init(&body);
    if (zmq_msg_recv(&body, pull, 0) < 0) die("receive body");
    if (zmq_msg_size(&h) == HEADER_SIZE) memcpy(seq, zmq_msg_data(&h), 8);
    if (zmq_msg_size(&body) == expected_size && memcmp(zmq_msg_data(&body), expected, expected_size) == 0) ok++;
    else wrong++;
    zmq_msg_close(&h);
    zmq_msg_close(&body);
    return 1;
}

/* `count` jobs, at most `window` in flight. */
static void pipelined(long count, long checkpoint) {
    long sent = 0, done = 0;
    uint64_t seq, last_progress = now_ns();
    zmq_pollitem_t items[2] = {{pull, 0, ZMQ_POLLIN, 0}, {push, 0, ZMQ_POLLOUT, 0}};
    while (done < count) {
        int progress = 0;
        while (sent < count && sent - done < o.window && send_job(sent, ZMQ_DONTWAIT)) { sent++; progress = 1; }
        while (done < sent && receive_result(ZMQ_DONTWAIT, &seq)) {
            done++;
            progress = 1;
            if (done == checkpoint) sample_rss(rss_checkpoint, sizeof rss_checkpoint);
        }
        if (progress) { last_progress = now_ns(); continue; }
        if (now_ns() - last_progress > 30000000000ull) { fprintf(stderr, "no progress for 30 s\n"); exit(1); }
        items[1].events = (sent < count && sent - done < o.window) ? ZMQ_POLLOUT : 0;
        if (zmq_poll(items, 2, 100) < 0) die("poll");
    }
}

/* CPU seconds and context switches of this process so far, all threads. */
static void usage(double *cpu, long *switches) {
    struct rusage u;
    getrusage(RUSAGE_SELF, &u);
    *cpu = u.ru_utime.tv_sec + u.ru_utime.tv_usec / 1e6 + u.ru_stime.tv_sec + u.ru_stime.tv_usec / 1e6;
    *switches = u.ru_nvcsw + u.ru_nivcsw;
}

static int by_value(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static double percentile_us(const uint64_t *sorted, long n, double p) {
    long rank = (long)ceil(p / 100.0 * n);
    if (rank < 1) rank = 1;
    return sorted[rank - 1] / 1000.0;
}

int main(int argc, char **argv) {
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *k = argv[i], *v = argv[i + 1];
        if (!strcmp(k, "--shape")) o.shape = v[0];
        else if (!strcmp(k, "--kind")) o.kind = v;
        else if (!strcmp(k, "--op")) o.op = v;
        else if (!strcmp(k, "--size")) o.size = atol(v);
        else if (!strcmp(k, "--count")) o.count = atol(v);
        else if (!strcmp(k, "--window")) o.window = atol(v);
        else if (!strcmp(k, "--warmup")) o.warmup = atol(v);
        else if (!strcmp(k, "--checkpoint")) o.checkpoint = atol(v);
        else if (!strcmp(k, "--watch")) o.watch = v;
        else if (!strcmp(k, "--jobs")) o.jobs = v;
        else if (!strcmp(k, "--results")) o.results = v;
        else { fprintf(stderr, "unknown argument %s\n", k); return 2; }
    }
    int sha = !strcmp(o.op, "sha256");

    /* the payload (random bytes, the same for every job) and the expected result */
    payload = malloc(o.size ? o.size : 1);
    srand((unsigned)now_ns());
    for (long i = 0; i < o.size; i++) payload[i] = (char)rand();
    if (sha) { sha256_hex(payload, o.size, digest); expected = digest; expected_size = 64; }
    else { expected = payload; expected_size = o.size; }
    header[8] = sha ? 's' : 'e';
    for (int i = 0; i < CLIENT_ID_SIZE; i++) header[CLIENT_ID_OFFSET + i] = (unsigned char)rand();

    void *ctx = zmq_ctx_new();
    push = make_socket(ctx, ZMQ_PUSH);
    int timeout = 30000;
    if (o.shape == 'a') {
        pull = make_socket(ctx, ZMQ_PULL);
    } else {
        pull = make_socket(ctx, ZMQ_DEALER);
        zmq_setsockopt(pull, ZMQ_ROUTING_ID, header + CLIENT_ID_OFFSET, CLIENT_ID_SIZE);
    }
    zmq_setsockopt(pull, ZMQ_RCVTIMEO, &timeout, sizeof timeout);
    connect_all(pull, o.results);
    if (o.shape == 'b') { /* hello: the sink answers once it can route to us */
        if (zmq_send(pull, "hello", 5, 0) < 0) die("send hello");
        char reply[8];
        if (zmq_recv(pull, reply, sizeof reply, 0) < 0) die("no hello reply from the sink");
    }
    connect_all(push, o.jobs);

    long measured = o.count, switches0, switches1;
    double seconds = 0, cpu0, cpu1;
    char latency[256] = "";
    if (!strcmp(o.kind, "tput")) {
        long saved_ok = ok;
        pipelined(o.warmup, 0);
        ok = saved_ok; wrong = 0;
        usage(&cpu0, &switches0);
        uint64_t start = now_ns();
        pipelined(o.count, o.checkpoint);
        seconds = (now_ns() - start) / 1e9;
        usage(&cpu1, &switches1);
    } else {
        uint64_t seq;
        for (long i = 0; i < o.warmup; i++) { send_job(i, 0); receive_result(0, &seq); }
        ok = 0; wrong = 0;
        uint64_t *samples = malloc(sizeof *samples * (o.count ? o.count : 1));
        usage(&cpu0, &switches0);
        uint64_t start = now_ns();
        for (long i = 0; i < o.count; i++) {
            uint64_t t0 = now_ns();
            send_job(i, 0);
            receive_result(0, &seq);
            samples[i] = now_ns() - t0;
            if (seq != (uint64_t)i) wrong++;
            if (i + 1 == o.checkpoint) sample_rss(rss_checkpoint, sizeof rss_checkpoint);
        }
        seconds = (now_ns() - start) / 1e9;
        usage(&cpu1, &switches1);
        qsort(samples, o.count, sizeof *samples, by_value);
        snprintf(latency, sizeof latency, "\"p50_us\": %.1f, \"p99_us\": %.1f, \"p999_us\": %.1f, \"max_us\": %.1f, ",
                 percentile_us(samples, o.count, 50), percentile_us(samples, o.count, 99),
                 percentile_us(samples, o.count, 99.9), samples[o.count - 1] / 1000.0);
    }
    sample_rss(rss_end, sizeof rss_end);
    printf("{\"kind\": \"%s\", \"count\": %ld, \"ok\": %ld, \"wrong\": %ld, \"failed\": %ld, \"seconds\": %.6f, "
           "\"jobs_per_s\": %.1f, \"cpu_s\": %.4f, \"switches\": %ld, %s\"rss_kib\": {%s%s%s\"end\": %s}}\n",
           o.kind, measured, ok, wrong, measured - ok - wrong, seconds, measured / seconds, cpu1 - cpu0,
           switches1 - switches0, latency,
           rss_checkpoint[0] ? "\"checkpoint\": " : "", rss_checkpoint, rss_checkpoint[0] ? ", " : "", rss_end);
    return 0;
}
