/* raw_sink: the result router of shape (b), TaskMesh's direct-mode shape over plain libzmq.
 *
 * Binds PULL (results from workers) and ROUTER (clients' DEALERs) on free loopback ports, prints
 * "ready results=ENDPOINT clients=ENDPOINT", and forwards each result [header][body] to the client
 * whose routing id is in the header, without copying. A one-frame message from a client (hello)
 * is answered at once, so a client knows the sink can route to it. Serves until killed. */
#include "common.h"

int main(void) {
    void *ctx = zmq_ctx_new();
    void *results = make_socket(ctx, ZMQ_PULL);
    void *clients = make_socket(ctx, ZMQ_ROUTER);
    int mandatory = 1;
    zmq_setsockopt(clients, ZMQ_ROUTER_MANDATORY, &mandatory, sizeof mandatory);
    char results_ep[256], clients_ep[256];
    bind_any(results, results_ep, sizeof results_ep);
    bind_any(clients, clients_ep, sizeof clients_ep);
    printf("ready results=%s clients=%s\n", results_ep, clients_ep);
    fflush(stdout);

    zmq_pollitem_t items[] = {{results, 0, ZMQ_POLLIN, 0}, {clients, 0, ZMQ_POLLIN, 0}};
    for (;;) {
        if (zmq_poll(items, 2, -1) < 0) die("poll");
        if (items[1].revents & ZMQ_POLLIN) { /* hello: [id][hello] comes back as it is */
            zmq_msg_t id, hello;
            zmq_msg_init(&id);
            zmq_msg_init(&hello);
            zmq_msg_recv(&id, clients, 0);
            zmq_msg_recv(&hello, clients, 0);
            zmq_msg_send(&id, clients, ZMQ_SNDMORE);
            zmq_msg_send(&hello, clients, 0);
        }
        /* results: a batch per wake, so the hello socket is never starved */
        for (int n = 0; n < 1024 && (items[0].revents & ZMQ_POLLIN); n++) {
            zmq_msg_t header, body, id;
            zmq_msg_init(&header);
            zmq_msg_init(&body);
            if (zmq_msg_recv(&header, results, ZMQ_DONTWAIT) < 0) break;
            if (zmq_msg_recv(&body, results, 0) < 0) die("recv body");
            if (zmq_msg_size(&header) < HEADER_SIZE) { zmq_msg_close(&header); zmq_msg_close(&body); continue; }
            zmq_msg_init_size(&id, CLIENT_ID_SIZE);
            memcpy(zmq_msg_data(&id), (char *)zmq_msg_data(&header) + CLIENT_ID_OFFSET, CLIENT_ID_SIZE);
            if (zmq_msg_send(&id, clients, ZMQ_SNDMORE) < 0) { /* unknown client: drop */
                zmq_msg_close(&id); zmq_msg_close(&header); zmq_msg_close(&body);
                continue;
            }
            zmq_msg_send(&header, clients, ZMQ_SNDMORE);
            zmq_msg_send(&body, clients, 0);
        }
    }
}
