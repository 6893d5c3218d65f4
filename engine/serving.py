"""``ensemble serve``: an HTTP prediction service over one model directory.

FastAPI on uvicorn. FastAPI, because the OpenAPI schema and the ``/docs`` page
come from the same pydantic models that describe the requests, with no code of
ours; it is Starlette underneath, so the app costs nothing extra per request
and mounts inside any ASGI service. Request bodies are parsed by hand, not by
pydantic, so that every bad request gets one line that says what to do.

The model is loaded once, through :func:`engine.load` (hashes verified, no
pickle, nothing the directory names is run). Requests go through a
:class:`engine.batching.MicroBatcher`: concurrent requests are predicted
together, one batch at a time, in a worker thread.

Examples
--------
>>> from engine.serving import create_app                          # doctest: +SKIP
>>> app = create_app("models/disaster-tweets")                     # doctest: +SKIP
>>> my_service.mount("/tweets", app)                               # doctest: +SKIP
"""


# No `from __future__ import annotations`: FastAPI reads the route functions' annotations
# (Request) at run time.
import asyncio
import contextlib
import json
import math
import os
import shutil
import socket
import tempfile
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.version import __version__

if TYPE_CHECKING:  # numpy and pandas load with the first request, not with `ensemble --help`
    import numpy as np
    import pandas as pd
from engine.environment import restoring
from engine.errors import EnsembleError
from engine.importing import require_extra
from engine.io.outputs import csv_safe
from engine.text_safety import clean, markdown_code

ENVIRONMENT = "ENSEMBLE_SERVE"  # the settings uvicorn's worker processes start from
JSON_TYPES = {str: "a string", int: "a number", float: "a number", bool: "a boolean",
              list: "an array", dict: "an object", type(None): "null"}
EXAMPLE = '{"texts": ["The parcel arrived two days late"]}'
LONE_SURROGATE = ("holds a lone surrogate (an escape like \\ud800 without its pair), which is "
                  "not Unicode text; send valid UTF-8")


@dataclass(frozen=True)
class Limits:
    """What one request may ask and how requests are batched.

    Parameters
    ----------
    max_rows : int, default=2048
        Texts or rows in one ``POST /predict``.
    max_body_bytes : int, default=4 MiB
        Size of one ``POST /predict`` body.
    max_upload_bytes : int, default=256 MiB
        Size of one ``POST /predict.csv`` upload (kept on disk, not in memory).
    batch_rows : int, default=1024
        A micro-batch stops growing at this many rows.
    batch_wait_ms : float, default=5
        How long the first request of a batch waits for others.
    csv_chunk_rows : int, default=5000
        Rows of an uploaded CSV predicted at a time.
    threads : int or None, default=None
        Threads a batch's numeric work may use (BLAS, TensorFlow, batches of
        texts the bundled sentence encoder encodes at once). None: each worker
        process's share of the cores, at least 1 (``--workers 2`` on 8 cores:
        4 each, where every worker used to take all 8).
    """

    max_rows: int = 2048
    max_body_bytes: int = 4 * 2**20
    max_upload_bytes: int = 256 * 2**20
    batch_rows: int = 1024
    batch_wait_ms: float = 5.0
    csv_chunk_rows: int = 5000
    threads: int | None = None

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if name == "threads" and value is None:
                continue
            number = isinstance(value, (int, float)) and not isinstance(value, bool)
            if not number or value < 0 or (value == 0 and name != "batch_wait_ms"):
                raise EnsembleError(f"serving limit {name} must be a positive number, "
                                    f"got {value!r}")


class RequestError(EnsembleError):
    """A request the service refuses: an HTTP status and one line saying what to do."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _json_type(value: Any) -> str:
    return JSON_TYPES.get(type(value), type(value).__name__)


def _megabytes(n: int) -> str:
    return f"{n / 2**20:g} MB"


def _finite(value: Any) -> Any:
    """JSON-safe copy: NaN and infinities (an undefined ROC AUC) become null."""
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


class Service:
    """One loaded model and what the HTTP routes need from it.

    Parameters
    ----------
    model : Ensemble
        Fitted, as :func:`engine.load` returns it.
    name : str
        Shown by ``GET /model`` and ``GET /health``.
    limits : Limits
    """

    def __init__(self, model: Any, name: str, limits: Limits) -> None:
        from engine.batching import MicroBatcher

        self.model = model
        self.name = name
        self.limits = limits if limits.threads else replace(limits, threads=serving_threads())
        self.classes = model.classes_.tolist()
        self.columns = input_columns(model)
        self.passthrough = list(getattr(model.combiner_, "passthrough", None) or [])
        self.id_column = model.manifest_.get("data", {}).get("id")
        self.started = time.time()
        self.batcher = MicroBatcher(self._predict, max_rows=limits.batch_rows,
                                    max_wait=limits.batch_wait_ms / 1000)

    # -- prediction (in the batcher's worker thread) ---------------------------------

    def _predict(self, key: str, parts: list[Any]) -> list[tuple["np.ndarray", "np.ndarray"]]:
        """Predict several requests' inputs in one call; one (labels, proba) per part."""
        import numpy as np
        import pandas as pd

        from engine.parallel import using_threads

        if key == "texts":
            X: Any = [text for part in parts for text in part]
        else:
            X = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]
        with using_threads(self.limits.threads):
            labels, proba = self.model.predict_with_proba(X)
        bounds = np.cumsum([0, *(len(part) for part in parts)])
        return [(labels[a:b], proba[a:b]) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]

    async def predict(self, payload: Any) -> dict[str, Any]:
        """The ``POST /predict`` answer for a parsed JSON body."""
        key, part = self.parse(payload)
        try:
            labels, proba = await self.batcher.submit(key, part, len(part))
        except EnsembleError as exc:  # e.g. a text the model refuses
            raise RequestError(422, str(exc)) from None
        return {"classes": self.classes, "labels": labels.tolist(),
                "probabilities": proba.tolist()}

    # -- validation ----------------------------------------------------------------

    def parse(self, payload: Any) -> tuple[str, Any]:
        """``("texts", list)`` or ``("rows", DataFrame)`` from a JSON body, or a RequestError."""
        shape = (f'send {{"texts": ["..."]}} or {{"rows": [{{"{self.columns[0]}": "..."}}]}}, '
                 f'e.g. {EXAMPLE}')
        if not isinstance(payload, dict):
            raise RequestError(422, f"the body is {_json_type(payload)}, not a JSON object; "
                                    f"{shape}")
        given = [k for k in ("texts", "rows") if k in payload]
        if len(given) != 1:
            found = ", ".join(map(repr, payload)) or "no fields"
            raise RequestError(422, f"the body needs exactly one of 'texts' or 'rows' (found "
                                    f"{found}); {shape}")
        key = given[0]
        items = payload[key]
        if not isinstance(items, list):
            raise RequestError(422, f"'{key}' is {_json_type(items)}, not an array; {shape}")
        if not items:
            raise RequestError(422, f"'{key}' is empty; send at least one "
                                    f"{'text' if key == 'texts' else 'row'}")
        if len(items) > self.limits.max_rows:
            raise RequestError(413, f"{len(items)} {key} in one request, over the limit of "
                                    f"{self.limits.max_rows}; split them into several requests "
                                    f"(or POST a CSV file to /predict.csv)")
        if key == "texts":
            return key, self._texts(items)
        return key, self._rows(items)

    def _texts(self, texts: list[Any]) -> list[str]:
        for i, text in enumerate(texts):
            if not isinstance(text, str):
                raise RequestError(422, f"texts[{i}] is {_json_type(text)}, not a string; send "
                                        f"every text as a JSON string")
        from engine.data import not_unicode

        for i in not_unicode(texts)[:1]:
            raise RequestError(422, f"texts[{i}] {LONE_SURROGATE}")
        if self.passthrough:
            raise RequestError(422, f"this model's combiner also reads the numeric columns "
                                    f"{self.passthrough}; send rows: "
                                    f'{{"rows": [{{"{self.columns[0]}": "...", '
                                    f'"{self.passthrough[0]}": 0}}]}}')
        return texts

    def _rows(self, rows: list[Any]) -> "pd.DataFrame":
        import pandas as pd

        from engine.data import not_unicode

        fill = self.model.fill_na
        for i, row in enumerate(rows):
            if not isinstance(row, dict):
                raise RequestError(422, f"rows[{i}] is {_json_type(row)}, not an object; send "
                                        f'rows like {{"{self.columns[0]}": "..."}}')
            for column in self.columns:
                value = row.get(column)
                if value is None and fill is None:
                    raise RequestError(422, f"rows[{i}] has no '{column}'; this model reads "
                                            f"{', '.join(self.columns)}: give each row every "
                                            f"one as a string")
                if value is not None and not isinstance(value, str):
                    raise RequestError(422, f"rows[{i}]['{column}'] is {_json_type(value)}, "
                                            f"not a string; send it as a JSON string")
            for column in self.passthrough:
                value = row.get(column)
                if isinstance(value, bool) or not isinstance(value, (int, float)):
                    raise RequestError(422, f"rows[{i}]['{column}'] is {_json_type(value)}; "
                                            f"the combiner reads it as a number: send one")
                if isinstance(value, int) and abs(value) >= 2**1024:  # past float's range
                    raise RequestError(422, f"rows[{i}]['{column}'] is a number too large "
                                            f"for a float; send a finite number")
        cells = [(i, column) for i, row in enumerate(rows) for column in self.columns
                 if isinstance(row.get(column), str)]
        for k in not_unicode([rows[i][column] for i, column in cells])[:1]:
            raise RequestError(422, f"rows[{cells[k][0]}]['{cells[k][1]}'] {LONE_SURROGATE}")
        return pd.DataFrame.from_records(rows, columns=[*self.columns, *self.passthrough])

    # -- CSV ------------------------------------------------------------------------

    async def predict_csv(self, upload: Path, output: Path) -> int:
        """Predict the CSV file ``upload`` chunk by chunk into ``output``; returns its rows.

        Each chunk goes through the batcher, so JSON requests are answered
        between the chunks of a large file instead of waiting for all of it.
        """
        from engine.data import read_chunks, require_columns
        from engine.streaming import prediction_frame

        chunks = read_chunks(upload, self.limits.csv_chunk_rows)
        rows = 0
        with open(output, "w", newline="", encoding="utf-8") as handle:
            while True:
                try:
                    chunk = await asyncio.to_thread(next, chunks, None)
                    if chunk is None:
                        break
                    if chunk.empty:  # a header-only file reads as one empty chunk
                        continue
                    require_columns(chunk, [*self.columns, *self.passthrough], "the CSV")
                    frame = chunk[[*self.columns, *self.passthrough]].reset_index(drop=True)
                    labels, proba = await self.batcher.submit("rows", frame, len(frame))
                except EnsembleError as exc:
                    raise RequestError(422, f"{exc}" if rows == 0 else
                                            f"after {rows} rows: {exc}") from None
                out = prediction_frame(labels, proba, self.model.classes_)
                if self.id_column and self.id_column in chunk.columns:
                    out.insert(0, self.id_column, chunk[self.id_column].to_numpy())
                await asyncio.to_thread(csv_safe(out).to_csv, handle, index=False,
                                        header=rows == 0)
                rows += len(out)
        if rows == 0:
            raise RequestError(422, "the CSV has a header but no rows; send at least one row")
        return rows

    # -- description ----------------------------------------------------------------

    def summary(self) -> dict[str, Any]:
        """The ``GET /model`` answer: what the manifest says, plus this server's limits."""
        manifest = self.model.manifest_
        return _finite({
            "name": self.name,
            "classes": self.classes,
            "class_names": self.model.class_labels(),
            "inputs": self.columns,
            "passthrough": self.passthrough,
            **({"id_column": self.id_column} if self.id_column else {}),
            "members": [{k: m.get(k) for k in ("name", "plugin", "package", "version", "config")}
                        for m in manifest["members"]],
            "combiner": {k: manifest["combiner"].get(k) for k in ("name", "config")},
            "threshold": manifest.get("threshold"),
            "engine_version": manifest.get("engine_version"),
            "served_by": f"ensemble-engine {__version__}",
            "created_at": manifest.get("created_at"),
            "training": manifest.get("training"),
            "scores": manifest.get("scores"),
            "limits": asdict(self.limits),
        })

    def health(self) -> dict[str, Any]:
        return {"status": "ok", "model": self.name,
                "uptime_s": round(time.time() - self.started, 1), "batches": self.batcher.stats}


def serving_threads(workers: int = 1) -> int:
    """The default :attr:`Limits.threads`: a worker process's share of the cores, at least 1."""
    return max(1, (os.cpu_count() or 1) // workers)


def input_columns(model: Any) -> list[str]:
    """The text columns the model's members read, each once, in first-use order."""
    columns: list[str] = []
    for name in model.members_:
        spec = (model.member_text or {}).get(name, model.text)
        for column in [spec] if isinstance(spec, str) else spec:
            if column not in columns:
                columns.append(column)
    return columns


# -- the ASGI app ---------------------------------------------------------------------

def _content_type(request: Any) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


async def _read_body(request: Any, limit: int, sink: Any = None) -> bytes:
    """The body, refused past ``limit`` bytes; with ``sink`` it is written there instead."""
    declared = request.headers.get("content-length", "")
    too_big = RequestError(413, f"the request body is over the {_megabytes(limit)} limit; send "
                                f"less per request or raise the server's limit")
    if declared.isdigit() and int(declared) > limit:
        raise too_big
    size, parts = 0, []
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_big
        if sink is None:
            parts.append(chunk)
        else:
            await asyncio.to_thread(sink.write, chunk)
    return b"".join(parts)


def parse_body(body: bytes) -> Any:
    """The JSON ``body``, or a 400 whose one line says why (never a server error).

    Valid JSON can still be unparseable here: nesting past Python's recursion
    limit, or an integer longer than its digit limit (4,300).
    """
    try:
        return json.loads(body)
    except UnicodeDecodeError:
        raise RequestError(400, "the body is not UTF-8 text; send UTF-8 JSON") from None
    except json.JSONDecodeError as exc:
        raise RequestError(400, f"the body is not valid JSON ({exc.msg} at line "
                                f"{exc.lineno} column {exc.colno}); send e.g. "
                                f"{EXAMPLE}") from None
    except RecursionError:
        raise RequestError(400, f"the body nests arrays or objects too deeply to read; send "
                                f"texts or rows as flat JSON, e.g. {EXAMPLE}") from None
    except ValueError as exc:  # an integer past the digit limit
        raise RequestError(400, f"the body holds a value that cannot be read "
                                f"({str(exc).split(';')[0][:120]}); send e.g. {EXAMPLE}"
                           ) from None


def _schemas() -> dict[str, Any]:
    """Pydantic models for the OpenAPI page (requests are validated by hand)."""
    from pydantic import BaseModel, Field

    class PredictRequest(BaseModel):
        """Send exactly one of texts or rows."""

        texts: list[str] | None = Field(
            None, description="Texts to classify; each member reads the text alone.",
            examples=[["The parcel arrived two days late", "Great service, thank you"]])
        rows: list[dict[str, Any]] | None = Field(
            None, description="Rows with every column the model reads (see GET /model "
                              "'inputs'), for members trained on several columns.",
            examples=[[{"title": "Late delivery", "text": "The parcel arrived two days late"}]])

    class PredictResponse(BaseModel):
        classes: list[Any] = Field(description="The model's classes; probabilities follow "
                                               "this order.")
        labels: list[Any] = Field(description="The predicted class of each text.")
        probabilities: list[list[float]] = Field(
            description="One row per text, one column per class, in 'classes' order.")

    class Problem(BaseModel):
        detail: str = Field(description="What went wrong and what to do, in one line.")

    return {"request": PredictRequest, "response": PredictResponse, "problem": Problem}


def create_app(model_dir: str | Path, *, trusted: tuple[str, ...] | list[str] = (),
               limits: Limits | None = None) -> Any:
    """The prediction service for one model directory, as a FastAPI (ASGI) app.

    The model is loaded and verified here, once: a model directory that fails
    verification raises before any app exists.

    Parameters
    ----------
    model_dir : str or Path
        A model directory written by ``Ensemble.save`` or ``ensemble fit``.
    trusted : list of str, default=()
        Extra types the model's skops files may hold (``engine.load``'s ``trusted``).
    limits : Limits or None
        Request limits and batching; the defaults when None.

    Returns
    -------
    fastapi.FastAPI
        Routes ``POST /predict``, ``POST /predict.csv``, ``GET /health``,
        ``GET /model``, and the OpenAPI page at ``/docs``.

    Raises
    ------
    ModelDirectoryError
        When the model directory is missing, changed or unsafe.
    MissingExtraError
        When FastAPI is not installed (``pip install 'ensemble-engine[serve]'``).

    Examples
    --------
    >>> import uvicorn                                                   # doctest: +SKIP
    >>> uvicorn.run(create_app("models/disaster-tweets"), port=8000)     # doctest: +SKIP
    """
    require_extra("serve", "fastapi")
    from fastapi import FastAPI, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import FileResponse, JSONResponse
    from starlette.background import BackgroundTask
    from starlette.exceptions import HTTPException

    from engine.ensemble import load_ensemble

    model = load_ensemble(model_dir, trusted)
    path = Path(model_dir).resolve()
    service = Service(model, path.name, limits or Limits())
    schemas = _schemas()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        await service.batcher.start()
        try:
            yield
        finally:
            await service.batcher.stop()

    errors = {code: {"model": schemas["problem"]} for code in (400, 413, 415, 422)}
    app = FastAPI(
        title=f"ensemble-engine: {path.name}", version=__version__, lifespan=lifespan,
        # Labels and columns come from the model directory: code spans, never Markdown.
        description=f"Predictions of the ensemble in {markdown_code(path.name)} "
                    f"(classes {markdown_code(service.classes)}; inputs "
                    f"{markdown_code(service.columns)}). Every error is "
                    f'`{{"detail": "one line saying what to do"}}`.')
    app.state.service = service

    @app.exception_handler(RequestError)
    async def refused(request: Request, exc: RequestError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=exc.status)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        detail = exc.detail
        if exc.status_code == 404:
            detail = (f"no route {request.url.path}; routes: POST /predict, POST /predict.csv, "
                      f"GET /health, GET /model, GET /docs")
        elif exc.status_code == 405:
            detail = f"{request.method} is not allowed on {request.url.path}; see GET /docs"
        return JSONResponse({"detail": str(detail)}, status_code=exc.status_code,
                            headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def crashed(request: Request, exc: Exception) -> JSONResponse:
        # uvicorn still logs the traceback; the client gets JSON like every other error
        return JSONResponse({"detail": f"the server failed on this request "
                                       f"({type(exc).__name__}); see the server's log"},
                            status_code=500)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        return JSONResponse({"detail": f"{where}: {first.get('msg', 'invalid request')}"},
                            status_code=422)

    @app.post("/predict", response_model=schemas["response"], responses=errors,
              summary="Labels and class probabilities for texts or rows",
              openapi_extra={"requestBody": {"required": True, "content": {"application/json": {
                  "schema": schemas["request"].model_json_schema()}}}})
    async def predict(request: Request) -> JSONResponse:
        if _content_type(request) != "application/json" and \
                not _content_type(request).endswith("+json"):
            raise RequestError(415, f"Content-Type is '{_content_type(request) or 'missing'}'; "
                                    f"send JSON with Content-Type: application/json (for a CSV "
                                    f"file, POST it to /predict.csv as text/csv)")
        body = await _read_body(request, service.limits.max_body_bytes)
        return JSONResponse(await service.predict(parse_body(body)))

    @app.post("/predict.csv", responses={**errors, 200: {"content": {"text/csv": {}},
                                                          "description": "id, label, "
                                                          "proba_<class> per row"}},
              summary="A CSV file in, predictions out (the columns `ensemble predict` writes)",
              openapi_extra={"requestBody": {"required": True, "content": {"text/csv": {
                  "schema": {"type": "string", "format": "binary"}}}}})
    async def predict_csv(request: Request) -> FileResponse:
        if _content_type(request) not in ("text/csv", "application/csv"):
            raise RequestError(415, f"Content-Type is '{_content_type(request) or 'missing'}'; "
                                    f"send the file as the body with Content-Type: text/csv "
                                    f"(curl --data-binary @file.csv -H 'Content-Type: text/csv')")
        work = Path(tempfile.mkdtemp(prefix="ensemble-serve-"))
        try:
            with open(work / "upload.csv", "wb") as sink:
                await _read_body(request, service.limits.max_upload_bytes, sink)
            await service.predict_csv(work / "upload.csv", work / "predictions.csv")
        except BaseException:
            shutil.rmtree(work, ignore_errors=True)
            raise
        return FileResponse(work / "predictions.csv", media_type="text/csv",
                            filename="predictions.csv",
                            background=BackgroundTask(shutil.rmtree, work, True))

    @app.get("/health", summary="Liveness: the model is loaded and answering")
    async def health() -> dict[str, Any]:
        return service.health()

    @app.get("/model", summary="The manifest summary: classes, members, combiner, "
                               "versions, training rows, out-of-fold scores")
    async def describe() -> dict[str, Any]:
        return service.summary()

    return app


def app_from_environment() -> Any:
    """The app for one of uvicorn's worker processes (``--workers N``), from $ENSEMBLE_SERVE."""
    settings = json.loads(os.environ[ENVIRONMENT])
    return create_app(settings["model_dir"], trusted=tuple(settings["trusted"]),
                      limits=Limits(**settings["limits"]))


def _listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise EnsembleError(f"cannot listen on {host}:{port} ({exc.strerror}); choose another "
                            f"--port or stop what uses it") from None
    sock.set_inheritable(True)
    return sock


def serve(model_dir: str | Path, host: str = "127.0.0.1", port: int = 8000, workers: int = 1,
          *, trusted: tuple[str, ...] | list[str] = (), limits: Limits | None = None,
          log_level: str = "info", on_ready: Any = print) -> None:
    """Serve ``model_dir`` over HTTP until interrupted (what ``ensemble serve`` runs).

    Parameters
    ----------
    model_dir : str or Path
    host : str, default="127.0.0.1"
        Listen here only; ``0.0.0.0`` exposes the service to the network.
    port : int, default=8000
        0 picks a free port (printed at start-up).
    workers : int, default=1
        Processes, each with its own copy of the model (memory grows with it).
        The model directory is verified before any starts.
    trusted : list of str, default=()
    limits : Limits or None
        Without ``threads``, each worker's batches get its share of the cores
        (at least 1); TensorFlow's thread pools are sized to match.
    log_level : str, default="info"
        uvicorn's; ``"warning"`` drops the line per request.
    on_ready : callable, default=print
        Called with one line naming the address, before serving starts.
    """
    require_extra("serve", "fastapi", "uvicorn")
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise EnsembleError(f"--workers must be a positive number of processes, got {workers!r}")
    limits = limits or Limits()
    if limits.threads is None:
        limits = replace(limits, threads=serving_threads(workers))
    # TensorFlow sizes its thread pools when it starts: in this process and in the workers
    with restoring("ENSEMBLE_THREADS", ENVIRONMENT):  # _run sets ENVIRONMENT for the workers
        os.environ["ENSEMBLE_THREADS"] = str(limits.threads)
        _run(model_dir, host, port, workers, trusted, limits, log_level, on_ready)


def _run(model_dir: str | Path, host: str, port: int, workers: int,
         trusted: tuple[str, ...] | list[str], limits: Limits, log_level: str,
         on_ready: Any) -> None:
    import uvicorn

    if workers == 1:
        app = create_app(model_dir, trusted=trusted, limits=limits)  # refuses a bad model here
    else:
        from engine.ensemble import load_ensemble

        # every check a worker's load makes (signature, hashes, schemas, probe), once here:
        # a refused model stops the command in one line, not each worker in a traceback loop
        load_ensemble(model_dir, trusted=trusted)
        os.environ[ENVIRONMENT] = json.dumps({"model_dir": str(Path(model_dir).resolve()),
                                              "trusted": list(trusted),
                                              "limits": asdict(limits)})
        app = "engine.serving:app_from_environment"
    sock = _listen(host, port)
    bound = sock.getsockname()[1]
    # keep-alive 30 s, not uvicorn's 5: a client that reuses a connection just as the server
    # closes it gets an error for a request it sent; under load answers can take seconds
    config = uvicorn.Config(app, host=host, port=bound, workers=workers, log_level=log_level,
                            factory=workers > 1, timeout_graceful_shutdown=10,
                            timeout_keep_alive=30)
    server = uvicorn.Server(config)
    on_ready(f"serving {clean(Path(model_dir).name)} on http://{host}:{bound} with {workers} "
             f"worker{'s' if workers > 1 else ''} (API docs: http://{host}:{bound}/docs)")
    try:
        if workers == 1:
            server.run(sockets=[sock])
        else:
            from uvicorn.supervisors import Multiprocess

            Multiprocess(config, sockets=[sock]).run()
    finally:
        sock.close()
