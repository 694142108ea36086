"""n3xt_creds benchmarks: `make bench` (or `python benchmarks/run.py`).

Every figure is measured in this run, side by side with its baseline, and printed as
a table. Nothing here talks to the network: the per-request overhead uses httpx's
MockTransport, everything else the bundled emulator on 127.0.0.1.

1. Per-request cost with a cached token: the auth flow alone, driven the way
   httpx.Client drives it, and whole requests through ``httpx.Client`` (MockTransport)
   over no auth; for a constant-header ``httpx.Auth`` (the floor), n3xt_creds,
   httpx-auth and authlib; and n3xt_creds again with the OpenTelemetry SDK recording
   (the hot path records nothing: the same cost).
2. Herds: 200 threads / 500 asyncio tasks / both at once asking for a cold or an
   expired token from an emulator answering in 200 ms: token requests made, and how
   long the slowest caller waited.
3. The stale window: request latency p99 while a background refresh is in flight,
   against the steady-state p99.
4. Event-loop blocking: the longest a ticker task was delayed during a cold async herd.
5. ``import n3xt_creds`` cost on top of ``import httpx``, in fresh interpreters.
6. The first async refresh of a process: how long it blocks the event loop, in fresh
   interpreters (benchmarks/first_async_refresh.py), against a warm refresh of the
   same interpreter.
7-8. The shared token cache (benchmarks/fleet.py): N worker processes cold-starting
   together per backend (none = the per-process baseline, file, redis), and fleet
   events (token lifetimes, a revocation, Redis killed) on redis.
9. Storms (benchmarks/storm.py, issue 10): what N3XT sees in bad weather — a wrong
   secret, an outage, an API refusing every token, a fleet going stale, a trickled
   answer, a token shorter-lived than its round trip — with static stability and,
   side by side, without it (private knobs), on a scaled clock.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Generator
from typing import Any

import httpx
from _common import StaticSource, longest_loop_block

import n3xt_creds
from n3xt_creds import Authenticator, Credentials, Secret
from n3xt_creds.testing import Emulator

API_URL = "https://api.alpha.n3xt.io/v1/ping"
TOKEN_URL = "https://authn.alpha.n3xt.io/v1/public/project-bench/oauth2/token"
TOKEN_BODY = {
    "status_code": 200,
    "expires_in": 3600,
    "request_id": "request-id-bench",
    "access_token": "bench-access-token",
    "token_type": "bearer",
}


class ConstantHeaderAuth(httpx.Auth):
    """The floor: the least an httpx.Auth can do to add a bearer header."""

    def __init__(self, token: str) -> None:
        self.header = f"Bearer {token}"

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = self.header
        yield request


def _api_transport() -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/oauth2/token"):
            return httpx.Response(200, json=TOKEN_BODY)
        return httpx.Response(200, content=b"{}")

    return httpx.MockTransport(handler)


def _flow_seconds(
    auth: httpx.Auth, request: httpx.Request, response: httpx.Response, n: int
) -> float:
    """Per-request cost of the auth flow alone, driven the way httpx.Client drives it."""
    start = time.perf_counter()
    for _ in range(n):
        flow = auth.sync_auth_flow(request)
        next(flow)
        try:  # not contextlib.suppress: keep the harness cost minimal and equal for all
            flow.send(response)
        except StopIteration:
            pass
    return (time.perf_counter() - start) / n


def _per_request_seconds(client: httpx.Client, n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        client.get(API_URL)
    return (time.perf_counter() - start) / n


def bench_overhead(n: int, rounds: int) -> list[tuple[str, float, float]]:
    """Best-of-rounds per-request time for each auth, interleaved to share noise."""
    transport = _api_transport()
    token_client = httpx.Client(transport=transport)
    auths: dict[str, httpx.Auth | None] = {"no auth (baseline)": None}
    auths["constant header (floor)"] = ConstantHeaderAuth("bench-access-token")
    ours = Authenticator(
        StaticSource(Credentials("bench-client", Secret("bench-secret"))),
        token_url=TOKEN_URL,
        http_client=token_client,
    )
    ours.get_token()
    auths["n3xt_creds"] = ours
    # The same with the OpenTelemetry SDK recording (spans and metrics in memory): the
    # hot path records nothing, so its cost must be the same as the row above.
    sdk = _otel_sdk()
    if sdk is not None:
        observed = Authenticator(
            StaticSource(Credentials("bench-client", Secret("bench-secret"))),
            token_url=TOKEN_URL,
            http_client=token_client,
            **sdk,
        )
        observed.get_token()
        auths["n3xt_creds + OTel SDK"] = observed
    try:
        import httpx_auth

        theirs = httpx_auth.OAuth2ClientCredentials(
            TOKEN_URL, client_id="bench-client", client_secret="bench-secret", client=token_client
        )
        auths["httpx-auth"] = theirs
    except ImportError:  # pragma: no cover - bench extra not installed
        pass
    try:
        with warnings.catch_warnings():  # authlib's own deprecation notice about its httpx module
            warnings.simplefilter("ignore")
            from authlib.integrations.httpx_client import OAuth2Auth

        auths["authlib"] = OAuth2Auth(
            {
                "access_token": "bench-access-token",
                "token_type": "bearer",
                "expires_at": time.time() + 3600,
            }
        )
    except ImportError:  # pragma: no cover
        pass
    clients = {name: httpx.Client(transport=transport, auth=auth) for name, auth in auths.items()}
    for client in clients.values():  # warm up (httpx-auth fetches its token here)
        _per_request_seconds(client, 200)
    request = httpx.Request("GET", API_URL)
    response = httpx.Response(200, request=request)
    flow_auths = {name: auth for name, auth in auths.items() if auth is not None}
    # Best-of (minimum) per auth: a request costs ~100 µs and this machine's noise is
    # tens of µs, so only the least-disturbed run of each shows a µs-sized difference.
    best_client = {name: float("inf") for name in clients}
    best_flow = {name: float("inf") for name in flow_auths}
    for _ in range(rounds):  # interleaved, so every auth sees the same machine noise
        for name, client in clients.items():
            best_client[name] = min(best_client[name], _per_request_seconds(client, n))
        for name, auth in flow_auths.items():
            best_flow[name] = min(best_flow[name], _flow_seconds(auth, request, response, n * 5))
    for client in clients.values():
        client.close()
    ours.close()
    if "n3xt_creds + OTel SDK" in auths:
        auths["n3xt_creds + OTel SDK"].close()  # type: ignore[union-attr]
    token_client.close()
    baseline = best_client.pop("no auth (baseline)")
    return [(name, best_flow[name], best_client[name] - baseline) for name in best_flow]


def _otel_sdk() -> dict[str, Any] | None:
    """Real SDK providers recording in memory (None without the bench extra's SDK)."""
    try:
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import InMemoryMetricReader
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    except ImportError:  # pragma: no cover - bench extra not installed
        return None
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(InMemorySpanExporter()))
    return {
        "meter_provider": MeterProvider(metric_readers=[InMemoryMetricReader()]),
        "tracer_provider": tracer_provider,
    }


def _herd_threads(auth: Authenticator, count: int) -> list[float]:
    barrier = threading.Barrier(count + 1)
    waits: list[float] = []
    lock = threading.Lock()

    def call() -> None:
        barrier.wait()
        start = time.perf_counter()
        auth.get_token()
        with lock:
            waits.append(time.perf_counter() - start)

    threads = [threading.Thread(target=call) for _ in range(count)]
    for thread in threads:
        thread.start()
    barrier.wait()
    for thread in threads:
        thread.join()
    return waits


async def _herd_tasks(auth: Authenticator, count: int) -> list[float]:
    start_gate = asyncio.Event()

    async def call() -> float:
        await start_gate.wait()
        start = time.perf_counter()
        await auth.aget_token()
        return time.perf_counter() - start

    tasks = [asyncio.create_task(call()) for _ in range(count)]
    await asyncio.sleep(0)
    start_gate.set()
    return list(await asyncio.gather(*tasks))


class Clock:
    """A monotonic clock the benchmark can jump forward to expire a token."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.monotonic() + self.offset


def bench_herds(emulator: Emulator, latency: float) -> list[dict[str, Any]]:
    rows = []
    for shape in ("200 threads", "500 tasks", "200 threads + 500 tasks"):
        for state in ("cold", "expired"):
            emulator.reset()
            creds = emulator.add_client()
            clock = Clock()
            auth = Authenticator(StaticSource(creds), token_url=emulator.token_url(), clock=clock)
            if state == "expired":
                auth.get_token()
                clock.offset += 3600 + 1
            emulator.latency = latency
            before = emulator.counters.token_requests_total
            waits: list[float] = []
            if shape == "200 threads":
                waits = _herd_threads(auth, 200)
            elif shape == "500 tasks":
                waits = asyncio.run(_herd_tasks(auth, 500))
            else:
                box: list[float] = []

                def run_loop(box: list[float] = box, auth: Authenticator = auth) -> None:
                    box.extend(asyncio.run(_herd_tasks(auth, 500)))

                loop_thread = threading.Thread(target=run_loop)
                loop_thread.start()
                waits = _herd_threads(auth, 200)
                loop_thread.join()
                waits += box
            counters = emulator.counters
            rows.append(
                {
                    "herd": f"{shape}, {state}",
                    "token_requests": counters.token_requests_total - before,
                    "max_in_flight": counters.max_in_flight,
                    "slowest_wait_ms": max(waits) * 1000,
                }
            )
            auth.close()
    return rows


def bench_stale_window(emulator: Emulator, latency: float, calls: int) -> dict[str, float]:
    emulator.reset()
    creds = emulator.add_client()
    clock = Clock()
    auth = Authenticator(StaticSource(creds), token_url=emulator.token_url(), clock=clock)
    url = emulator.api_url()

    def timed_calls(client: httpx.Client, count: int) -> list[float]:
        out = []
        for _ in range(count):
            start = time.perf_counter()
            client.get(url).raise_for_status()
            out.append(time.perf_counter() - start)
        return out

    with httpx.Client(auth=auth) as client:
        timed_calls(client, 50)
        steady = timed_calls(client, calls)
        emulator.latency = latency
        before = emulator.counters.token_requests_total
        clock.offset += 3600 - 200  # inside the stale window (refresh_margin 300 s)
        during: list[float] = []
        deadline = time.monotonic() + 10
        while emulator.counters.token_requests_total == before or len(during) < calls:
            during += timed_calls(client, 10)
            if time.monotonic() > deadline:
                break
    auth.close()

    def p99(values: list[float]) -> float:
        return statistics.quantiles(values, n=100)[98] * 1000

    return {"steady_p99_ms": p99(steady), "stale_p99_ms": p99(during), "calls_during": len(during)}


def bench_loop_blocking(emulator: Emulator, latency: float, callers: int) -> float:
    """Longest delay of a 1 ms ticker while ``callers`` tasks get a cold token."""
    emulator.reset()
    creds = emulator.add_client()
    emulator.latency = latency
    auth = Authenticator(StaticSource(creds), token_url=emulator.token_url())

    async def main() -> float:
        worst = await longest_loop_block(lambda: _herd_tasks(auth, callers), tick=0.001)
        await auth.aclose()
        return worst

    return asyncio.run(main())


def bench_import(runs: int) -> dict[str, Any]:
    """``import httpx`` alone, and ``import n3xt_creds`` on top of it, in fresh interpreters."""
    # Measure imports as users get them: from bytecode. This machine may set
    # PYTHONDONTWRITEBYTECODE, which would make every run compile our sources anew.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    subprocess.run([sys.executable, "-c", "import httpx, n3xt_creds"], env=env, check=True)
    code = (
        "import time; t0 = time.perf_counter(); import httpx; t1 = time.perf_counter(); "
        "import n3xt_creds; t2 = time.perf_counter(); print(t1 - t0, t2 - t1)"
    )
    httpx_s, ours_s = [], []
    for _ in range(runs):
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
        )
        first, second = out.stdout.split()
        httpx_s.append(float(first))
        ours_s.append(float(second))
    heavy = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, json, n3xt_creds; print(json.dumps(sorted({m.split('.')[0] for m in sys.modules} "
            "& {'boto3', 'botocore', 'hvac', 'dynaconf', 'requests', 'opentelemetry', 'redis', 'cryptography', 'asyncio'})))",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return {
        "httpx_ms": statistics.median(httpx_s) * 1000,
        "ours_ms": statistics.median(ours_s) * 1000,
        "heavy": json.loads(heavy.stdout),
    }


def bench_first_async_refresh(runs: int) -> dict[str, float]:
    """Median over fresh interpreters of the loop blocking of the first and a warm refresh."""
    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "first_async_refresh.py")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    first, warm = [], []
    for _ in range(runs):
        out = subprocess.run(
            [sys.executable, script], capture_output=True, text=True, check=True, env=env
        )
        result = json.loads(out.stdout.strip().splitlines()[-1])
        first.append(result["first_ms"])
        warm.append(result["warm_ms"])
    return {"first_ms": statistics.median(first), "warm_ms": statistics.median(warm)}


def _table(title: str, header: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows, strict=True)]

    def line(cells: tuple[str, ...]) -> str:
        return "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    sep = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([f"\n### {title}\n", line(header), sep, *(line(r) for r in rows)])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="fewer iterations (smoke run)")
    parser.add_argument(
        "--latency", type=float, default=0.2, help="emulator token latency, seconds"
    )
    parser.add_argument(
        "--fleet-sizes", default="16,64,256", help="worker processes per fleet cold start"
    )
    args = parser.parse_args(argv)
    n, rounds = (1000, 3) if args.quick else (4000, 15)

    print(
        f"n3xt_creds {n3xt_creds.__version__} benchmarks — Python {sys.version.split()[0]}, {os.cpu_count()} cores"
    )
    overhead = bench_overhead(n, rounds)
    floor_flow, floor_client = next(
        (f, c) for name, f, c in overhead if name.startswith("constant")
    )
    print(
        _table(
            f"1. Per-request cost with a cached token (best of {rounds} interleaved rounds; the "
            "through-client column is within this machine's noise of a few µs)",
            (
                "auth",
                "auth flow alone µs",
                "vs floor µs",
                "through httpx.Client µs (minus no-auth)",
                "vs floor µs",
            ),
            [
                (
                    name,
                    f"{flow * 1e6:.2f}",
                    f"{(flow - floor_flow) * 1e6:+.2f}",
                    f"{client * 1e6:.2f}",
                    f"{(client - floor_client) * 1e6:+.2f}",
                )
                for name, flow, client in overhead
            ],
        )
    )
    with Emulator() as emulator:
        herds = bench_herds(emulator, args.latency)
        print(
            _table(
                f"2. Herds against the emulator (token latency {args.latency * 1000:.0f} ms)",
                ("herd", "token requests", "max in flight", "slowest caller ms"),
                [
                    (
                        r["herd"],
                        str(r["token_requests"]),
                        str(r["max_in_flight"]),
                        f"{r['slowest_wait_ms']:.0f}",
                    )
                    for r in herds
                ],
            )
        )
        stale = bench_stale_window(emulator, max(args.latency, 0.5), 200 if args.quick else 1000)
        print(
            _table(
                "3. Stale window: requests while a background refresh is in flight (real HTTP)",
                ("steady p99 ms", "during refresh p99 ms", "ratio", "calls during refresh"),
                [
                    (
                        f"{stale['steady_p99_ms']:.2f}",
                        f"{stale['stale_p99_ms']:.2f}",
                        f"{stale['stale_p99_ms'] / stale['steady_p99_ms']:.2f}x",
                        str(stale["calls_during"]),
                    )
                ],
            )
        )
        blocked = [bench_loop_blocking(emulator, args.latency, callers) for callers in (1, 500)]
        print(
            _table(
                "4. Event loop: longest delay of a 1 ms ticker while tasks get a cold token",
                ("1 task (token work alone) ms", "500 tasks (incl. waking 500 waiters) ms"),
                [(f"{blocked[0]:.2f}", f"{blocked[1]:.2f}")],
            )
        )
    imports = bench_import(3 if args.quick else 7)
    print(
        _table(
            "5. Import cost (median of fresh interpreters, from bytecode)",
            (
                "import httpx ms",
                "then import n3xt_creds ms",
                "ratio to httpx",
                "heavy modules imported",
            ),
            [
                (
                    f"{imports['httpx_ms']:.1f}",
                    f"{imports['ours_ms']:.1f}",
                    f"{imports['ours_ms'] / imports['httpx_ms']:.2f}x",
                    ", ".join(imports["heavy"]) or "none",
                )
            ],
        )
    )
    first_async = bench_first_async_refresh(3 if args.quick else 9)
    print(
        _table(
            "6. First async refresh of a process: longest event-loop block (median of fresh "
            "interpreters; a 0.5 ms ticker)",
            ("first refresh ms", "warm refresh ms (baseline)", "ratio"),
            [
                (
                    f"{first_async['first_ms']:.2f}",
                    f"{first_async['warm_ms']:.2f}",
                    f"{first_async['first_ms'] / first_async['warm_ms']:.2f}x",
                )
            ],
        )
    )
    from fleet import bench_fleet, fleet_tables

    sizes = [int(size) for size in args.fleet_sizes.split(",")]
    print(fleet_tables(bench_fleet(sizes, args.latency, args.quick), _table))
    import storm  # benchmarks/storm.py, next to this script

    print(
        _table(
            f"9. Storms (issue 10): N3XT's view and the callers', before and with static "
            f"stability (injected clock x{storm.SPEED:g}: '30 s' pass in 3 s)",
            storm.HEADER,
            storm.run(quick=args.quick),
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
