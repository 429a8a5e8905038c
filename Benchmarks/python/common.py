"""Helpers shared by the Python benchmark clients: options, payloads, RSS, percentiles, report."""

import argparse
import json
import os
import random
import resource


def client_options(description):
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--kind", choices=["tput", "lat"], default="tput")
    p.add_argument("--op", choices=["echo", "sha256"], default="echo")
    p.add_argument("--size", type=int, default=16)
    p.add_argument("--count", type=int, default=10000)
    p.add_argument("--window", type=int, default=10000)
    p.add_argument("--warmup", type=int, default=1000)
    p.add_argument("--checkpoint", type=int, default=0)
    p.add_argument("--watch", default="", help="name=pid,... whose VmRSS to report")
    return p


def rss_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def sample_rss(watch):
    sample = {"client": rss_kib(os.getpid())}
    for item in filter(None, watch.split(",")):
        name, pid = item.split("=")
        sample[name] = rss_kib(int(pid))
    return sample


def usage():
    """(CPU seconds, context switches) of this process so far, all threads."""
    u = resource.getrusage(resource.RUSAGE_SELF)
    return u.ru_utime + u.ru_stime, u.ru_nvcsw + u.ru_nivcsw


def random_payload(size):
    return random.randbytes(size)


def percentile(sorted_values, p):
    """Nearest-rank percentile of an ascending list."""
    if not sorted_values:
        return 0.0
    rank = max(1, -(-int(p * len(sorted_values) * 1000) // 100000))  # ceil(p/100 * n) in integers
    return sorted_values[min(rank, len(sorted_values)) - 1]


def latency_fields(samples_ns):
    s = sorted(samples_ns)
    return {
        "p50_us": percentile(s, 50) / 1000,
        "p99_us": percentile(s, 99) / 1000,
        "p999_us": percentile(s, 99.9) / 1000,
        "max_us": (s[-1] if s else 0) / 1000,
    }


def report(opts, ok, wrong, seconds, rss, extra=None, usage_before=None, usage_after=None):
    """Prints the run's JSON line; usage_before/after (from usage()) bound the measured phase."""
    out = {
        "kind": opts.kind, "count": opts.count, "ok": ok, "wrong": wrong,
        "failed": opts.count - ok - wrong, "seconds": seconds,
        "jobs_per_s": opts.count / seconds if seconds > 0 else 0.0, "rss_kib": rss,
    }
    if usage_before and usage_after:
        out["cpu_s"] = usage_after[0] - usage_before[0]
        out["switches"] = usage_after[1] - usage_before[1]
    out.update(extra or {})
    print(json.dumps(out, sort_keys=True), flush=True)
