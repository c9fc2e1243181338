#!/usr/bin/env python3
"""A loopback webhook receiver for dgrid's tests and benches.

    webhook-receiver.py PORT SECRET_FILE LOG [ANSWERS]

Listens on 127.0.0.1:PORT. For each POST it checks X-DGrid-Signature
(HMAC-SHA256 of the raw body with the key in SECRET_FILE, trailing newline
stripped, as dgrid reads it) and appends one JSON line to LOG: the request's
number, the path, the dgrid headers, whether the signature verified, the
status answered, and the body parsed. ANSWERS is a comma-separated list of
what to answer, one per request in order, the last repeated: a status code
(200, 500, ...) or "hang" (read the request, never answer, keep the
connection open). Default: 200. Writes LOG.ready once listening.
"""
import hashlib
import hmac
import http.server
import json
import sys
import threading
import time

port, secret_file, log = int(sys.argv[1]), sys.argv[2], sys.argv[3]
answers = (sys.argv[4] if len(sys.argv) > 4 else "200").split(",")
secret = open(secret_file, "rb").read().rstrip(b"\r\n\t ")
lock = threading.Lock()
count = [0]


class Receiver(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length)
        with lock:
            count[0] += 1
            n = count[0]
        answer = answers[min(n, len(answers)) - 1]
        expected = "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()
        given = self.headers.get("X-DGrid-Signature", "")
        try:
            parsed = json.loads(body)
        except ValueError:
            parsed = None
        entry = {
            "n": n, "path": self.path, "time": time.time(), "answer": answer,
            "signature_ok": hmac.compare_digest(given, expected),
            "headers": {k: v for k, v in self.headers.items() if k.lower().startswith("x-dgrid-")},
            "body": parsed,
        }
        with lock, open(log, "a") as out:
            out.write(json.dumps(entry) + "\n")
        if answer == "hang":
            time.sleep(3600)
            return
        self.send_response(int(answer))
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Receiver)
server.daemon_threads = True
open(log + ".ready", "w").close()
server.serve_forever()
