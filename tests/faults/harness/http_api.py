"""A small HTTP client for the Vault API of the nodes, telling apart a request that never left
(the connection was refused: nothing can have happened) from one that was sent and got no
answer (it may have taken effect)."""

import http.client
import json
import socket


class Response:
    __slots__ = ("status", "body", "headers", "error", "sent")

    def __init__(self, status=None, body="", headers=None, error="", sent=False):
        self.status = status  # None: no answer
        self.body = body
        self.headers = headers or {}
        self.error = error
        self.sent = sent  # the request was (at least partly) written

    def json(self):
        try:
            return json.loads(self.body) if self.body else {}
        except ValueError:
            return {}

    def errors(self):
        j = self.json()
        e = j.get("errors") if isinstance(j, dict) else None
        return e if isinstance(e, list) else None

    def __repr__(self):
        if self.status is None:
            return "no answer (%s%s)" % ("sent, " if self.sent else "not sent, ", self.error)
        return "%d %s" % (self.status, self.body[:200].strip())


MAX_BODY = 1 << 20


def call(host, port, method, path, body=None, token=None, timeout=5.0):
    headers = {}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    if token:
        headers["X-Vault-Token"] = token
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        try:
            conn.connect()
        except (OSError, socket.timeout) as e:
            return Response(error=type(e).__name__ + ": " + str(e), sent=False)
        try:
            conn.request(method, path, body=data, headers=headers)
            r = conn.getresponse()
            payload = r.read(MAX_BODY + 1)
            if len(payload) > MAX_BODY:
                return Response(error="answer too large", sent=True)
            return Response(r.status, payload.decode("utf-8", "replace"),
                            {k.lower(): v for k, v in r.getheaders()}, sent=True)
        except (OSError, socket.timeout, http.client.HTTPException) as e:
            return Response(error=type(e).__name__ + ": " + str(e), sent=True)
    finally:
        conn.close()
