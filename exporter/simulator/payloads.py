"""What simulated tasks carry in `input`, `data` and `result`: plain JSON and tagged references.

Every kind of tagged value the official SDK reads from watched data appears, in the shape its
guards (`requence/wire.py`) accept: `RequenceFile`, `RequenceStream`, `ClaimCheck` (built in
`files`) and `RequenceCallback` in both lifetimes. Callbacks appear only in node data and
results, never in a task input, where the SDK refuses them.
"""

from __future__ import annotations

import random
from typing import Any, Final

from exporter.simulator.files import TAG, claim_check_ref, file_ref, stream_ref
from exporter.simulator.templates import random_uuid

__all__ = ["node_payload", "task_input", "task_result"]

# Per template: the extension of its input document and its size range in bytes.
_INPUTS: Final = {
    "invoice-processing": (("pdf",), 40_000, 3_000_000),
    "document-ocr": (("pdf", "tiff"), 80_000, 20_000_000),
    "customer-onboarding": (("jpg", "png"), 200_000, 8_000_000),
    "image-resize": (("jpg", "png"), 30_000, 12_000_000),
}
_DURABLE: Final = ("approve-invoice", "request-review", "resend-document")


def task_input(rng: random.Random, name: str) -> dict[str, Any]:
    """The input a task was started with: a reference, a priority and usually a document."""
    payload: dict[str, Any] = {
        "reference": f"{name[:3].upper()}-{rng.randint(10000, 99999)}",
        "priority": rng.choice(("low", "normal", "high")),
    }
    spec = _INPUTS.get(name)
    if spec is not None:
        exts, low, high = spec
        ext = rng.choice(exts)
        payload["document"] = file_ref(rng, ext, low, high, name=f"input.{ext}")
    return payload


def task_result(rng: random.Random, name: str) -> dict[str, Any]:
    """What a task that ended returns; a report or an image task returns files."""
    result: dict[str, Any] = {"status": "ok", "count": rng.randint(1, 100)}
    if name == "nightly-report":
        result["report"] = file_ref(rng, "pdf", 200_000, 15_000_000, name="report.pdf")
    elif name == "image-resize":
        result["images"] = [file_ref(rng, "jpg", 5_000, 900_000) for _ in range(3)]
    return result


def _callback(rng: random.Random, node_id: str, output: str | None, path: list[str | int]) -> Any:
    if rng.random() < 0.6:
        return {
            TAG: "RequenceCallback",
            "lifetime": "connection",
            "sourceId": f"conn-{rng.getrandbits(32):08x}",
            "callbackId": random_uuid(rng),
            "outputName": output,
            "propertyPath": path,
        }
    return {
        TAG: "RequenceCallback",
        "lifetime": "durable",
        "name": rng.choice(_DURABLE),
        "nodeId": node_id,
        "bound": {"attempt": rng.randint(1, 3)},
        "outputName": output,
        "propertyPath": path,
    }


def node_payload(
    rng: random.Random,
    alias: str | None,
    node_id: str,
    output: str | None,
    bulky: float = 0.0,
) -> dict[str, Any]:
    """A nodeUpdate `data` payload; `bulky` is the chance it holds a claim-checked export."""
    if bulky and rng.random() < bulky:
        return {"rows": claim_check_ref(rng), "source": alias, "complete": rng.random() < 0.5}
    roll = rng.random()
    if roll < 0.12:
        ext = rng.choice(("pdf", "png", "jpg", "csv", "xlsx", "txt"))
        return {"file": file_ref(rng, ext, 200, 5_000_000), "pages": rng.randint(1, 40)}
    if roll < 0.17:
        return {"live": stream_ref(rng, rng.choice(("csv", "ndjson", "mp3"))), "step": alias}
    if roll < 0.22:
        return {"decision": {"approve": _callback(rng, node_id, output, ["decision", "approve"])}}
    if roll < 0.55:
        return {"progress": round(rng.random(), 2), "step": alias}
    if roll < 0.9:
        return {"items": rng.randint(1, 500), "ok": rng.random() < 0.95}
    return {"lines": [{"sku": f"SKU-{rng.randint(1000, 9999)}", "qty": i} for i in range(20)]}
