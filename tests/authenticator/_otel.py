"""The real OpenTelemetry SDK, in memory, for the telemetry tests: read back what was exported."""

from __future__ import annotations

from collections import Counter
from typing import Any

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

Key = tuple[str, frozenset[tuple[str, Any]]]


class Sdk:
    """A MeterProvider and a TracerProvider of our own (not the global ones), read in memory."""

    def __init__(self) -> None:
        self.reader = InMemoryMetricReader()
        self.meter_provider = MeterProvider(metric_readers=[self.reader])
        self.exporter = InMemorySpanExporter()
        self.tracer_provider = TracerProvider()
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.exporter))

    @property
    def providers(self) -> dict[str, Any]:
        return {"meter_provider": self.meter_provider, "tracer_provider": self.tracer_provider}

    def points(self) -> dict[Key, Any]:
        """Every data point now: (metric, attributes) -> value (a histogram's count)."""
        found: dict[Key, Any] = {}
        data = self.reader.get_metrics_data()
        if data is None:
            return found
        for resource_metrics in data.resource_metrics:
            for scope_metrics in resource_metrics.scope_metrics:
                for metric in scope_metrics.metrics:
                    for point in metric.data.data_points:
                        value = getattr(point, "value", None)
                        if value is None:
                            value = point.count
                        found[(metric.name, frozenset(point.attributes.items()))] = value
        return found

    def value(self, name: str, **attributes: Any) -> Any:
        """The point of ``name`` whose attributes include ``attributes`` (summed over the rest)."""
        wanted = {key.replace("__", "."): value for key, value in attributes.items()}
        total = 0
        for (metric, attrs), value in self.points().items():
            if metric == name and wanted.items() <= dict(attrs).items():
                total += value
        return total

    def spans(self) -> tuple[ReadableSpan, ...]:
        return self.exporter.get_finished_spans()

    def span_names(self) -> Counter[str]:
        return Counter(span.name for span in self.spans())

    def shutdown(self) -> None:
        self.meter_provider.shutdown()
        self.tracer_provider.shutdown()


def exported_strings(sdk: Sdk) -> list[str]:
    """Every string an exporter would send: span names, attributes, events, statuses,
    metric names and point attributes."""
    out: list[str] = []
    for span in sdk.spans():
        out.append(span.name)
        out += [f"{k}={v}" for k, v in (span.attributes or {}).items()]
        out.append(str(span.status.description))
        for event in span.events:
            out.append(event.name)
            out += [f"{k}={v}" for k, v in (event.attributes or {}).items()]
    for (name, attrs), value in sdk.points().items():
        out.append(name)
        out += [f"{k}={v}" for k, v in attrs]
        out.append(str(value))
    return out
