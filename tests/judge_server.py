"""A scripted OpenAI-compatible server on loopback, for the replies llm-katan cannot produce: a 200
with an HTML page or a body that is not JSON, a completion without `choices`, logprobs, answers cut
at the token limit, reasoning models (content null, the text in `reasoning_content`) and servers
that want `max_completion_tokens`.

    with ScriptedServer(lambda request: completion("Score: 7")) as server:
        ... server.base_url ... server.requests (the JSON bodies received, in order)

The reply function gets the request's JSON body and returns a dict (sent as a 200 JSON body) or
(status, body, content type).
"""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Self

Reply = dict | tuple[int, str | bytes, str]


def completion(content: str | None, *, finish_reason: str = "stop", logprobs: list | None = None,
               reasoning: str | None = None, model: str = "m") -> dict:
    message = {"role": "assistant", "content": content}
    if reasoning is not None:
        message["reasoning_content"] = reasoning
    choice = {"index": 0, "finish_reason": finish_reason, "message": message,
              "logprobs": {"content": logprobs} if logprobs is not None else None}
    return {"id": "x", "object": "chat.completion", "created": 0, "model": model, "choices": [choice],
            "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}}


def token_logprobs(*positions: tuple[str, dict[str, float]]) -> list[dict]:
    """Logprobs content from (generated token, {alternative: probability}) per position."""
    out = []
    for token, alternatives in positions:
        alternatives = alternatives or {token: 1.0}
        out.append({"token": token, "logprob": math.log(alternatives.get(token, 1e-9)), "bytes": None,
                    "top_logprobs": [{"token": t, "logprob": math.log(p), "bytes": None}
                                     for t, p in alternatives.items()]})
    return out


def answered_with(tokens: list[tuple[str, dict[str, float]]], **kwargs) -> dict:
    """A completion whose content is the generated tokens, with their logprobs."""
    return completion("".join(t for t, _ in tokens), logprobs=token_logprobs(*tokens), **kwargs)


class ScriptedServer:
    def __init__(self, reply: Callable[[dict], Reply], host: str = "127.0.0.1") -> None:
        """host: any loopback address (127.0.0.2 is another host to a key bound to 127.0.0.1)."""
        self.reply = reply
        self.requests: list[dict] = []
        self.keys: list[str | None] = []  # the Authorization header of each request, in order
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                server.requests.append(body)
                server.keys.append(self.headers.get("Authorization"))
                answer = server.reply(body)
                if isinstance(answer, dict):
                    status, payload, content_type = 200, json.dumps(answer), "application/json"
                else:
                    status, payload, content_type = answer
                payload = payload.encode() if isinstance(payload, str) else payload
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):
                pass

        self._http = ThreadingHTTPServer((host, 0), Handler)
        self.base_url = f"http://{host}:{self._http.server_address[1]}/v1"
        self._thread = threading.Thread(target=self._http.serve_forever, daemon=True)
        self._thread.start()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self._http.shutdown()
        self._http.server_close()
