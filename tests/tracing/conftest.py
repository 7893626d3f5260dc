"""The SDK's in-memory exporters as the global providers (see ``tests/_otel.py``)."""

from tests._otel import telemetry as telemetry
