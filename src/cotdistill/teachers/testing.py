"""Real servers on loopback for tests and benchmarks: a fault-injecting OpenAI-compatible server, and
`transformers serve` started on a free port.

`FaultServer` answers /v1/chat/completions and /v1/completions with a deterministic scripted reply (a
function of the request body alone, so a rerun gets the same text), and for a chosen share of requests
misbehaves instead: HTTP 429 or 500, a reply slower than the client's timeout, a body cut off mid-way, or a
body that is not JSON. It logs every request it saw (the client's X-Request-Id and what it did), so a test
can check that nothing already answered is asked for again. It only ever listens on 127.0.0.1.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import socket
import subprocess
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from .serve import serve_command

FAULTS = ("429", "500", "slow", "cut", "badjson")
_OPTION = re.compile(r"^\(([A-Z])\)", re.MULTILINE)
_HINT = re.compile(r"correct answer is (\([A-Z]\)|\w+)")
_STATED = re.compile(r"the answer is (\([A-Z]\)|\w+)", re.IGNORECASE)


@dataclass(frozen=True)
class Served:
    request_id: str  # the client's X-Request-Id header ("" if none)
    outcome: str  # "ok", one of FAULTS, or "unauthorized"
    at: float


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _prompt_text(body: dict) -> str:
    if "messages" in body:
        return "\n".join(str(m.get("content", "")) for m in body["messages"])
    return str(body.get("prompt", ""))


def scripted_reply(body: dict) -> str:
    """A short step-by-step answer that depends only on the request: a hinted answer is followed 70% of the
    time, a corruption request answers differently from its correct solution 70% of the time."""
    text = _prompt_text(body)
    h = int(hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest(), 16)
    question = text.rsplit("Question:", 1)[-1]
    options = [f"({x})" for x in _OPTION.findall(question)] or ["Yes", "No"]
    answer = options[h % len(options)]
    hint = _HINT.search(text.rsplit("Question:", 1)[-1])
    if hint and (h >> 8) % 10 < 7:
        answer = hint.group(1)
    if "Flawed solution:" in text:
        right = _STATED.findall(text.rsplit("Correct solution:", 1)[-1])
        others = [o for o in options if not right or o != right[-1]]
        if others and (h >> 16) % 10 < 7:
            answer = others[(h >> 24) % len(others)]
    think = "<think>Let me look at the options first.</think>" if (h >> 32) % 2 else ""
    return (f"{think}First, I read the question carefully. Next, I weigh option {answer} against the others. "
            f"Therefore, the answer is {answer}.")


class FaultServer:
    """An OpenAI-compatible server on 127.0.0.1 that misbehaves for `fault_rate` of the requests.

    latency: seconds added to every answer (a remote API is latency-bound). slow_seconds: how long a "slow"
    fault waits before answering (set it above the client's timeout). api_key: when set, requests without
    "Authorization: Bearer <key>" get 401. reply: the text for a request body.
    """

    def __init__(self, *, fault_rate: float = 0.0, faults: Sequence[str] = FAULTS, latency: float = 0.0,
                 slow_seconds: float = 2.0, seed: int = 0, api_key: str | None = None,
                 reply: Callable[[dict], str] = scripted_reply, keep_bodies: bool = False):
        unknown = set(faults) - set(FAULTS)
        if unknown:
            raise ValueError(f"unknown faults {sorted(unknown)}; known: {FAULTS}")
        self.fault_rate, self.faults, self.latency, self.slow_seconds = fault_rate, tuple(faults), latency, slow_seconds
        self.api_key, self.reply = api_key, reply
        self.log: list[Served] = []
        self.bodies: list[dict] = []  # request bodies, when keep_bodies
        self.keep_bodies = keep_bodies
        self.in_flight = 0
        self.max_in_flight = 0  # the most requests handled at once
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        assert self._server is not None, "the server is not started"
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def outcomes(self) -> dict[str, int]:
        with self._lock:
            counts: dict[str, int] = {}
            for s in self.log:
                counts[s.outcome] = counts.get(s.outcome, 0) + 1
            return counts

    def _record(self, request_id: str, outcome: str) -> None:
        with self._lock:
            self.log.append(Served(request_id, outcome, time.time()))

    def _draw(self) -> str | None:
        with self._lock:
            if self._rng.random() < self.fault_rate:
                return self._rng.choice(self.faults)
            return None

    def start(self) -> FaultServer:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:  # quiet
                pass

            def _send(self, status: int, payload: bytes, headers: dict[str, str] | None = None,
                      length: int | None = None) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload) if length is None else length))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(payload)
                self.wfile.flush()

            def do_GET(self) -> None:
                if self.path.rstrip("/") in ("/health", "/v1/models"):
                    self._send(200, b'{"status": "ok", "data": []}')
                else:
                    self._send(404, b'{"error": "not found"}')

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                request_id = self.headers.get("X-Request-Id", "")
                if owner.api_key is not None and self.headers.get("Authorization") != f"Bearer {owner.api_key}":
                    owner._record(request_id, "unauthorized")
                    self._send(401, b'{"error": {"message": "invalid API key"}}')
                    return
                chat = self.path.rstrip("/").endswith("/chat/completions")
                if not chat and not self.path.rstrip("/").endswith("/completions"):
                    self._send(404, b'{"error": "not found"}')
                    return
                fault = owner._draw()
                owner._record(request_id, fault or "ok")
                body = json.loads(raw)
                with owner._lock:
                    owner.in_flight += 1
                    owner.max_in_flight = max(owner.max_in_flight, owner.in_flight)
                    if owner.keep_bodies:
                        owner.bodies.append(body)
                try:
                    if owner.latency:
                        time.sleep(owner.latency)
                    if fault == "429":
                        self._send(429, b'{"error": "rate limited"}', {"Retry-After": "0"})
                        return
                    if fault == "500":
                        self._send(500, b'{"error": "internal error"}')
                        return
                    if fault == "badjson":
                        self._send(200, b'{"choices": [{"message": {"content": "oops"')
                        return
                    payload = owner._completion(body, chat)
                    if fault == "slow":
                        time.sleep(owner.slow_seconds)
                    if fault == "cut":
                        self._send(200, payload[: len(payload) // 2], length=len(payload))
                        self.close_connection = True
                        return
                    self._send(200, payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (a "slow" reply past its timeout)
                finally:
                    with owner._lock:
                        owner.in_flight -= 1

        class Server(ThreadingHTTPServer):
            request_queue_size = 256  # the default 5 drops connection attempts from a concurrent client

        self._server = Server(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._server.block_on_close = False
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def _completion(self, body: dict, chat: bool) -> bytes:
        words = self.reply(body).split(" ")
        limit = int(body.get("max_tokens") or 1 << 30)
        reason = "length" if len(words) > limit else "stop"
        text = " ".join(words[:limit])
        choice = {"index": 0, "finish_reason": reason}
        choice.update({"message": {"role": "assistant", "content": text}} if chat else {"text": text})
        usage = {"prompt_tokens": len(_prompt_text(body).split()), "completion_tokens": min(len(words), limit)}
        return json.dumps({"id": "x", "object": "chat.completion" if chat else "text_completion",
                           "model": body.get("model", ""), "choices": [choice], "usage": usage}).encode()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FaultServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextmanager
def transformers_server(model_dir: str | os.PathLike, *, threads: int = 1, startup_timeout: float = 300.0,
                        extra_args: Sequence[str] = ()) -> Iterator[str]:
    """Run `transformers serve` for a saved HF model folder on a free 127.0.0.1 port; yields the /v1 URL.

    The model is preloaded (it is the server's forced model); the server is stopped on exit.
    """
    port = free_port()
    log = tempfile.NamedTemporaryFile(prefix="transformers-serve-", suffix=".log", delete=False)
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    cmd = serve_command(model_dir, "127.0.0.1", port, extra_args)
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + startup_timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"transformers serve exited with {proc.returncode}: "
                                   f"{Path(log.name).read_text(errors='replace')[-2000:]}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"transformers serve did not answer within {startup_timeout:g} s")
            time.sleep(0.5)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        Path(log.name).unlink(missing_ok=True)
