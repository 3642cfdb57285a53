"""`zskd serve`: a student (or any classifier zskd loads) behind HTTP, answering Hugging Face's text-classification
JSON, so that a zskd student can be the `--teacher-url` of another run.

    zskd serve --model runs/sst2-ood                        # http://127.0.0.1:8080, docs at /docs
    zskd serve --model runs/sst2-ood --onnx --int8 --port 9000 --host 0.0.0.0
    curl -s localhost:8080/predict -d '{"inputs": ["a gripping , funny film"]}' -H 'Content-Type: application/json'

`POST /predict` takes `{"inputs": [text or {"text", "text_pair"}, ...], "parameters": {...}}` and answers, per
input, every label's `{"label", "score"}`, most likely first: probabilities, or with `"function_to_apply": "none"`
the raw logits (what `--endpoint-raw-scores` asks for). `GET /health` says the service is up and what it
serves; `/openapi.json` describes both. A body over `max_body_bytes` or a batch over `max_batch` inputs gets 413,
a malformed body 422, each with a one-line reason; uvicorn stops gracefully on SIGTERM (finishing what is in
flight).
"""

from dataclasses import dataclass  # no `from __future__ import annotations`: FastAPI reads the local models' types

from zskd.config import option
from zskd.data import DataError
from zskd.resources import ResourceError


@dataclass
class ServeConfig:
    model: str = option("", "student directory (or a transformers classifier directory) to serve")
    host: str = option("127.0.0.1", "address to listen on (0.0.0.0: every interface)")
    port: int = option(8080, "port to listen on")
    onnx: bool = option(False, "run the student's exported graph with ONNX Runtime")
    int8: bool = option(False, "with --onnx: the int8 graph")
    max_batch: int = option(256, "most inputs in one request (more: 413)")
    max_body_bytes: int = option(1_000_000, "largest request body (more: 413)")


def build_app(model, config: ServeConfig):
    """The FastAPI application serving `model` (anything with `logits(inputs)` and `label_names`)."""
    from fastapi import FastAPI, Request
    from fastapi.responses import JSONResponse
    from pydantic import BaseModel, Field

    class Pair(BaseModel):
        text: str
        text_pair: str

    class PredictRequest(BaseModel):
        inputs: list[str | Pair] = Field(description="texts, or {text, text_pair} sentence pairs")
        parameters: dict = Field(default_factory=dict, description="top_k is ignored (every label is scored); "
                                                                   "function_to_apply \"none\" answers raw logits "
                                                                   "instead of probabilities, as transformers' "
                                                                   "pipeline does")

    class LabelScore(BaseModel):
        label: str
        score: float

    app = FastAPI(title="zskd student", description=f"Text classification by {config.model}", version="1")

    @app.middleware("http")
    async def limit_body(request: Request, call_next):
        declared = request.headers.get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > config.max_body_bytes):
            return JSONResponse({"detail": f"request body over {config.max_body_bytes} bytes"}, status_code=413)
        return await call_next(request)

    @app.get("/health")
    def health() -> dict:
        return {"status": "ok", "model": config.model, "labels": list(model.label_names)}

    @app.post("/predict", response_model=list[list[LabelScore]])
    def predict(request: PredictRequest):
        if len(request.inputs) > config.max_batch:
            return JSONResponse({"detail": f"{len(request.inputs)} inputs: at most {config.max_batch} a request"},
                                status_code=413)
        inputs = [(x.text, x.text_pair) if isinstance(x, Pair) else x for x in request.inputs]
        if not inputs:
            return []
        from zskd.students.base import predictions

        logits = model.logits(inputs)
        if request.parameters.get("function_to_apply") == "none":
            scores = [dict(zip(model.label_names, map(float, row))) for row in logits]
        else:
            scores = [answer["probabilities"] for answer in predictions(logits, list(model.label_names))]
        return [sorted(({"label": name, "score": score} for name, score in row.items()),
                       key=lambda item: -item["score"]) for row in scores]

    return app


def serve(config: ServeConfig) -> None:
    """Serve until stopped (Ctrl-C or SIGTERM)."""
    try:
        import fastapi  # noqa: F401
        import uvicorn
    except ImportError as error:
        raise ResourceError(f"zskd serve needs fastapi and uvicorn ({error.name} is missing): "
                            "pip install 'zskd[serve]'") from None
    if not config.model:
        raise DataError("give --model DIR, the student to serve")
    for name in ("max_batch", "max_body_bytes"):
        if getattr(config, name) < 1:
            raise DataError(f"--{name.replace('_', '-')} {getattr(config, name)} must be at least 1")
    from zskd.students import load_classifier

    app = build_app(load_classifier(config.model, config.onnx, config.int8), config)
    uvicorn.run(app, host=config.host, port=config.port, log_level="warning", timeout_graceful_shutdown=30)
