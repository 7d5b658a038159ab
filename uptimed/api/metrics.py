"""``/metrics``: the Prometheus text exposition of :mod:`uptimed.metrics`, without auth."""

from __future__ import annotations

from fastapi import APIRouter, Response

from uptimed import metrics
from uptimed.api.errors import MALFORMED

router = APIRouter(tags=["health"], responses=MALFORMED)


@router.get(
    "/metrics",
    response_class=Response,
    responses={
        200: {
            "description": "Prometheus text format 0.0.4",
            "content": {metrics.CONTENT_TYPE.split(";")[0]: {"schema": {"type": "string"}}},
        }
    },
    summary="Prometheus metrics",
)
async def prometheus() -> Response:
    return Response(metrics.render(), media_type=metrics.CONTENT_TYPE)
