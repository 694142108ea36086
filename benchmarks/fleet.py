"""Fleet benchmarks for the shared token cache (issue 12), called by benchmarks/run.py.

N worker processes (forked from a forkserver that preloaded n3xt_creds, so a worker
is ready in milliseconds) each build their own Authenticator, wait at a common start
signal and ask for a token. The emulator answers token requests after ``latency``.
For each backend — ``none`` (every process on its own, the baseline), ``file`` (4
directories = 4 simulated hosts, workers spread evenly) and ``redis`` (one
redis-server) — we count the token requests the emulator saw and the time from the
start signal to each worker's first token (p50/p99/max).

Then, with 16 workers on redis: three token lifetimes under load, a revocation (every
worker's API call gets a 401), and Redis killed mid-run.

Run alone: ``python benchmarks/fleet.py [--sizes 16,64,256] [--latency 0.2]``.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import multiprocessing
import os
import statistics
import sys
import time
from typing import Any

import httpx

from n3xt_creds import Authenticator, Credentials, FileTokenCache, RedisTokenCache, Secret
from n3xt_creds.testing import Emulator
from n3xt_creds.testing._redis import RedisServer

HOSTS = 4


class _Fixed:
    def __init__(self, client_id: str, secret: str) -> None:
        self.credentials = Credentials(client_id, Secret(secret))

    def get_credentials(self) -> Credentials:
        return self.credentials


def _auth(job: dict[str, Any], index: int) -> Authenticator:
    cache: object = None
    if job["backend"] == "file":
        cache = FileTokenCache(os.path.join(job["directory"], f"host-{index % HOSTS}"))
    elif job["backend"] == "redis":
        cache = RedisTokenCache(job["redis_url"], timeout=job.get("redis_timeout", 0.05))
    return Authenticator(
        _Fixed(job["client_id"], job["secret"]),
        token_url=job["token_url"],
        api_hosts=["127.0.0.1"],
        refresh_margin=job.get("refresh_margin", 300.0),
        timeout=5.0,
        shared_cache=cache,
    )


def _worker(job: dict[str, Any], index: int, ready: Any, start: Any, phase: Any, out: Any) -> None:
    """One process of the fleet; reports a dict on ``out``."""
    # Each process warns once per store condition (a starved redis-server at N = 256):
    # the table counts those fallbacks, 256 copies of the warning would drown it.
    logging.getLogger("n3xt_creds").setLevel(logging.ERROR)
    auth = _auth(job, index)
    report: dict[str, Any] = {"errors": 0}
    ready.release()
    start.wait(120)
    try:
        auth.get_token()
        report["first_token_at"] = time.monotonic()
    except Exception:
        report["errors"] += 1
    scenario = job["scenario"]
    if scenario == "lifetimes":
        until = time.monotonic() + job["duration"]
        while time.monotonic() < until:
            try:
                auth.get_token()
            except Exception:
                report["errors"] += 1
            time.sleep(0.01)
    elif scenario in ("revoke", "redis_down"):
        phase.wait(120)  # the parent revokes the tokens / kills Redis
        phase.wait(120)
        with httpx.Client(auth=auth) as client:
            if scenario == "redis_down":
                auth.invalidate()  # the token's lifetime ends while Redis is down
            for _ in range(20):
                try:
                    if client.get(job["api_url"]).status_code != 200:
                        report["errors"] += 1
                except Exception:
                    report["errors"] += 1
    stats = auth.shared_cache_stats
    report["fallbacks"] = stats.fallbacks if stats else 0
    auth.close()
    out.put(report)


def run_fleet(
    context: Any,
    emulator: Emulator,
    job: dict[str, Any],
    workers: int,
    between: Any = None,
) -> dict[str, Any]:
    """Start ``workers`` processes on ``job``; return token requests, times and errors."""
    ready, start = context.Semaphore(0), context.Event()
    phase = context.Barrier(workers + 1)
    out = context.Queue()
    before = emulator.tokens_issued
    procs = [
        context.Process(target=_worker, args=(job, i, ready, start, phase, out))
        for i in range(workers)
    ]
    for proc in procs:
        proc.start()
    for _ in procs:
        if not ready.acquire(timeout=120):
            raise RuntimeError("workers did not start")
    time.sleep(0.2)  # let the last ones reach start.wait()
    started = time.monotonic()
    start.set()
    if job["scenario"] in ("revoke", "redis_down"):
        _wait_warm(emulator, before, job)
        phase.wait(120)
        between()
        phase.wait(120)
    reports = [out.get(timeout=180) for _ in procs]
    for proc in procs:
        proc.join(30)
    waits = sorted(r["first_token_at"] - started for r in reports if "first_token_at" in r)
    return {
        "workers": workers,
        "token_requests": emulator.tokens_issued - before,
        "errors": sum(r["errors"] for r in reports),
        "fallbacks": sum(r["fallbacks"] for r in reports),
        "p50_ms": statistics.median(waits) * 1000,
        "p99_ms": waits[min(len(waits) - 1, round(0.99 * (len(waits) - 1)))] * 1000,
        "max_ms": waits[-1] * 1000,
        "elapsed": time.monotonic() - started,
    }


def _wait_warm(emulator: Emulator, before: int, job: dict[str, Any]) -> None:
    deadline = time.monotonic() + 60
    while emulator.tokens_issued == before and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(1.0)  # every worker has adopted the token (the parent meets them at the barrier)


def bench_fleet(sizes: list[int], latency: float, quick: bool = False) -> dict[str, Any]:
    """Every table row of the fleet benchmark (see the module docstring)."""
    import tempfile

    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["n3xt_creds", "httpx", "redis", "cryptography", __name__])
    cold: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    hot: dict[str, float] = {}
    with (
        Emulator(latency=latency) as emulator,
        RedisServer() as redis_server,
        tempfile.TemporaryDirectory(prefix="n3xt-fleet-") as tmp,
    ):
        creds = emulator.add_client()
        base = {
            "token_url": emulator.token_url(),
            "api_url": emulator.api_url(),
            "client_id": creds.client_id,
            "secret": creds.client_secret.get_secret_value(),
            "redis_url": redis_server.url,
            "scenario": "cold",
        }
        import redis

        flush = redis.Redis.from_url(redis_server.url)
        for size in sizes:
            # Past 64 processes on 2 cores the redis-server itself is starved of CPU: the
            # 50 ms default timeout fires. A row with a 500 ms timeout shows the sharing.
            variants = [("none", 0.05), ("file", 0.05), ("redis", 0.05)]
            if size > 64:
                variants.append(("redis", 0.5))
            for backend, redis_timeout in variants:
                flush.flushall()
                directory = os.path.join(tmp, f"{backend}-{size}")
                job = {
                    **base,
                    "backend": backend,
                    "directory": directory,
                    "redis_timeout": redis_timeout,
                }
                try:
                    row = run_fleet(context, emulator, job, size)
                except (OSError, RuntimeError) as error:  # the machine's limit
                    row = {"workers": size, "stopped": f"{type(error).__name__}: {error}"}
                cold.append({"backend": backend, "redis_timeout": redis_timeout, **row})
        flush.close()
        hot = bench_hot_path(emulator, redis_server, tmp, 3 if quick else 9)
        if not quick:
            events = _bench_events(context, emulator, redis_server, base)
    return {"cold": cold, "events": events, "hot": hot, "latency": latency}


def bench_hot_path(
    emulator: Emulator, server: RedisServer, tmp: str, rounds: int
) -> dict[str, float]:
    """get_token() with a cached token, ns per call, best of interleaved rounds: without a
    shared cache (the baseline) and with each backend (the hot path never touches it)."""
    creds = emulator.add_client()
    job = {
        "token_url": emulator.token_url(),
        "client_id": creds.client_id,
        "secret": creds.client_secret.get_secret_value(),
        "redis_url": server.url,
        "directory": os.path.join(tmp, "hot"),
    }
    auths = {name: _auth({**job, "backend": name}, 0) for name in ("none", "file", "redis")}
    for auth in auths.values():
        auth.get_token()
    best = dict.fromkeys(auths, float("inf"))
    calls = 20000
    for _ in range(rounds):
        for name, auth in auths.items():
            get = auth.get_token
            started = time.perf_counter()
            for _ in range(calls):
                get()
            best[name] = min(best[name], (time.perf_counter() - started) / calls * 1e9)
    for auth in auths.values():
        auth.close()
    return best


def _bench_events(
    context: Any, emulator: Emulator, server: RedisServer, base: dict[str, Any]
) -> list[dict[str, Any]]:
    import redis

    def flush() -> None:  # every scenario starts cold: no entry from the one before
        client = redis.Redis.from_url(server.url)
        client.flushall()
        client.close()

    rows = []
    lifetime = 3
    flush()
    emulator.expires_in = lifetime
    job = {
        **base,
        "backend": "redis",
        "scenario": "lifetimes",
        "duration": 3 * lifetime,
        "refresh_margin": 0.3,  # stale at 2.7 s of 3 s
    }
    row = run_fleet(context, emulator, job, 16)
    row["what"] = f"3 token lifetimes ({lifetime} s tokens) under load"
    row["target"] = "1 per lifetime: 3 (+1 when the last refresh falls inside the run)"
    rows.append(row)
    emulator.expires_in = 3600
    flush()
    job = {
        **base,
        "backend": "redis",
        "scenario": "revoke",
    }
    row = run_fleet(context, emulator, job, 16, emulator.revoke_tokens)
    row["what"] = "revocation: every worker's API call gets a 401"
    row["target"] = "1 + 1 per fleet"
    rows.append(row)
    flush()
    job = {**base, "backend": "redis", "scenario": "redis_down"}
    row = run_fleet(context, emulator, job, 16, server.stop)
    row["what"] = "Redis killed mid-run, then every token's lifetime ends"
    row["target"] = "0 failed calls; 1 + at most 1 per process"
    rows.append(row)
    with contextlib.suppress(Exception):
        server.start()
    return rows


def _backend_label(row: dict[str, Any]) -> str:
    if row["backend"] == "file":
        return f"file ({HOSTS} hosts)"
    if row["backend"] == "redis":
        return f"redis (timeout {row['redis_timeout'] * 1000:.0f} ms)"
    return str(row["backend"])


def fleet_tables(result: dict[str, Any], table: Any) -> str:
    """The fleet results as markdown tables (``table`` is run.py's table helper)."""
    latency_ms = result["latency"] * 1000
    rows = []
    for row in result["cold"]:
        if "stopped" in row:
            rows.append(
                (str(row["workers"]), row["backend"], "stopped: " + row["stopped"], "", "", "", "")
            )
            continue
        target = {"none": str(row["workers"]), "file": str(HOSTS), "redis": "1"}[row["backend"]]
        rows.append(
            (
                str(row["workers"]),
                _backend_label(row),
                f"{row['token_requests']} (target {target})",
                f"{row['p50_ms']:.0f}",
                f"{row['p99_ms']:.0f} (target ≤ {latency_ms + 150:.0f})",
                f"{row['max_ms']:.0f}",
                str(row["errors"]),
            )
        )
    text = table(
        f"7. Fleet cold start: N processes start together, token latency {latency_ms:.0f} ms "
        "(none = per-process baseline of the same run)",
        ("N", "shared cache", "token requests", "p50 first token ms", "p99 ms", "max ms", "failed"),
        rows,
    )
    if result["events"]:
        text += "\n" + table(
            "8. Fleet events, 16 processes on redis",
            ("event", "token requests", "target", "failed calls", "fallback refreshes"),
            [
                (
                    r["what"],
                    str(r["token_requests"]),
                    r["target"],
                    str(r["errors"]),
                    str(r["fallbacks"]),
                )
                for r in result["events"]
            ],
        )
    hot = result["hot"]
    text += "\n" + table(
        "8b. get_token() with a cached token (ns per call, best of interleaved rounds): "
        "the hot path never touches the shared cache",
        ("no shared cache (baseline)", "file", "redis", "redis / baseline"),
        [
            (
                f"{hot['none']:.0f}",
                f"{hot['file']:.0f}",
                f"{hot['redis']:.0f}",
                f"{hot['redis'] / hot['none']:.2f}x",
            )
        ],
    )
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="16,64,256")
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from run import _table

    result = bench_fleet([int(s) for s in args.sizes.split(",")], args.latency, args.quick)
    print(fleet_tables(result, _table))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
