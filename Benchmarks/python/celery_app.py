"""The Celery app of the benchmarks: Redis as broker and result backend, two tasks.

The Redis URL comes from BENCH_REDIS_URL (the runner starts redis-server on a free port).
Payloads are str (Celery's default JSON serializer carries no bytes)."""

import hashlib
import os

from celery import Celery

url = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379")
app = Celery("bench", broker=f"{url}/0", backend=f"{url}/1")
app.conf.update(
    task_default_queue="bench",
    worker_disable_rate_limits=True,
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
    result_expires=600,
)


@app.task(name="echo")
def echo(payload):
    return payload


@app.task(name="sha256")
def sha256(payload):
    return hashlib.sha256(payload.encode("latin-1")).hexdigest()
