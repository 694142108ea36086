"""docs/observability.md: its examples run as written (each in its own interpreter: they set
the process-wide OpenTelemetry providers), and every query of its dashboard names metrics
and labels that a scrape of a real app through the OTel Prometheus exporter has."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from n3xt_creds._core.otel import METRICS

DOCS = Path(__file__).resolve().parents[2] / "docs" / "observability.md"
RUNNABLE = re.compile(r"<!-- runnable -->\n```python\n(.*?)```", re.DOTALL)
EXPECTED = [
    "n3xt_creds_token_requests_total{",
    '"event": "refresh_succeeded", "trigger": "cold"',
    "n3xt_refreshes_total{",
]


def run(code: str) -> str:
    """Run ``code`` in a fresh interpreter; what it printed (stdout, then stderr)."""
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout + done.stderr


def examples() -> list[str]:
    return RUNNABLE.findall(DOCS.read_text())


def test_the_page_has_its_examples() -> None:
    assert len(examples()) == len(EXPECTED)


@pytest.mark.parametrize(("number", "expected"), list(enumerate(EXPECTED)))
def test_runnable_example(number: int, expected: str) -> None:
    printed = run(examples()[number])
    assert expected in printed, printed


# Every outcome the dashboard asks about, in one app scraped through the exporter.
SCENARIOS = """
import os
import tempfile

import httpx
from opentelemetry import metrics
from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.sdk.metrics import MeterProvider
from prometheus_client import REGISTRY, generate_latest

import n3xt_creds
from n3xt_creds.testing import Emulator, Fault, ManualClock

metrics.set_meter_provider(MeterProvider(metric_readers=[PrometheusMetricReader()]))


class Source:
    def __init__(self, creds):
        self.creds, self.down = creds, False

    def get_credentials(self):
        if self.down:
            raise n3xt_creds.SourceError("store down (on purpose)", source="test")
        return self.creds


fast = n3xt_creds.RetryPolicy(max_attempts=3, base_delay=0.001, max_delay=0.002)
with Emulator() as emulator:
    creds, rejected = emulator.add_client(), emulator.add_client()
    emulator.rotate_client(rejected.client_id)
    source, clock = Source(creds), ManualClock()
    url = emulator.token_url()
    with n3xt_creds.Authenticator(source, token_url=url, clock=clock, retry=fast) as auth, \
            n3xt_creds.Authenticator(Source(rejected), token_url=url, retry=fast) as other, \
            httpx.Client(auth=auth) as client:
        emulator.inject_fault(Fault.UNAVAILABLE)
        client.get(emulator.api_url())                     # a 503, retried
        emulator.revoke_tokens()
        client.get(emulator.api_url())                     # an API 401, replayed
        source.down = True
        clock.advance(3600)
        auth.get_token()                                   # the last good credentials
        for _ in range(2):                                 # rejected, then remembered
            try:
                other.get_token()
            except n3xt_creds.InvalidClientError:
                pass
        private = tempfile.mkdtemp()                       # a host-wide cache: L2 hits
        fleet = [
            n3xt_creds.Authenticator(
                Source(creds), token_url=url, shared_cache=n3xt_creds.FileTokenCache(private)
            )
            for _ in range(2)
        ]
        os.mkdir(os.path.join(private, "open"), 0o755)     # and one it must not trust
        os.chmod(os.path.join(private, "open"), 0o755)
        fleet.append(
            n3xt_creds.Authenticator(
                Source(creds),
                token_url=url,
                shared_cache=n3xt_creds.FileTokenCache(os.path.join(private, "open")),
            )
        )
        for member in fleet:
            member.get_token()
        print(generate_latest(REGISTRY).decode())
"""


def dashboard_queries() -> list[str]:
    table = DOCS.read_text().split("## The dashboard", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"`([^`]*\(n3xt_creds_[^`]*)`", table)


def test_every_dashboard_query_names_scraped_metrics_and_labels() -> None:
    queries = dashboard_queries()
    assert len(queries) >= 7
    scrape = run(SCENARIOS)
    series: dict[str, set[str]] = {}
    for line in scrape.splitlines():
        found = re.match(r"(n3xt_creds_\w+)\{(.*)\} ", line)
        if found:
            labels = set(re.findall(r'(\w+)="', found.group(2)))
            series.setdefault(found.group(1), set()).update(labels)
    for query in queries:
        names = re.findall(r"n3xt_creds_\w+", query)
        labels = {
            label.strip()
            for group in re.findall(r"by \(([^)]*)\)", query)
            for label in group.split(",")
        } - {"le"}
        for name in names:
            assert name in series, f"{name} (in {query}) is not in the scrape"
            assert labels <= series[name], f"{query}: {labels - series[name]} missing on {name}"
    # And each dashboard metric is one of ours, by the exporter's naming rules.
    ours = {
        name.replace(".", "_")
        + ("_seconds" if unit == "s" else "")
        + ("_total" if kind in ("counter", "observable_counter") else "")
        for name, (kind, unit, _) in METRICS.items()
    }
    for query in queries:
        for name in re.findall(r"n3xt_creds_\w+", query):
            assert name.removesuffix("_bucket") in ours, name
