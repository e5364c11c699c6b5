"""The BentoML service: the fraudscan Starlette app mounted at ``/`` of a BentoML service.

BentoML supplies the process model (a circus arbiter with ``workers`` processes sharing one
socket), ``/livez``, ``/readyz`` (asks :meth:`FraudScan.__is_ready__`) and ``/metrics``;
everything else is the mounted app. The workspace comes from ``FRAUDSCAN_WORKSPACE`` (set by
``fraudscan serve W``); workers from ``FRAUDSCAN_WORKERS`` (default 2: the cross-claim state is
shared between them through SQLite, see :mod:`fraudscan.serving.state`).
"""

from __future__ import annotations

import os

import bentoml

from fraudscan.serving.app import create_app

app = create_app()

WORKERS = int(os.environ.get("FRAUDSCAN_WORKERS", "2"))


@bentoml.service(
    name="fraudscan",
    workers=WORKERS,
    traffic={"timeout": 60},
    logging={"access": {"enabled": os.environ.get("FRAUDSCAN_ACCESS_LOG") == "1"}},
    metrics={"enabled": os.environ.get("FRAUDSCAN_METRICS") == "1"},
    # no OpenTelemetry spans on the hot paths (the middleware costs CPU on every request)
    tracing={"sample_rate": 0.0, "excluded_urls": ["/v1/check", "/v1/settle", "/v1/admit",
                                                    "/v1/health", "/v1/ready"]},
)
@bentoml.asgi_app(app, path="/")
class FraudScan:
    """Pre-payment checks, inspector API and workbench (docs/service.md)."""

    def __is_ready__(self) -> bool:
        s = getattr(app.state, "service", None)
        return bool(s is not None and s.ready)
