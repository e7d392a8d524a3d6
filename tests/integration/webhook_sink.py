"""A real HTTP server on loopback (Python's http.server) that records webhook POSTs and can be
told to fail, for the webhook action's tests."""
import http.server
import json
import threading
import time

from sluice_harness import free_port


class WebhookSink:
    def __init__(self, port=None, fail_first=0, always_fail=False, delay=0):
        self.port = port or free_port()
        self.requests = []  # (headers dict, body bytes)
        self.started = 0  # POSTs received, answered or not yet
        self.delay = delay  # seconds each POST waits before it is answered
        self.fail_first = fail_first
        self.always_fail = always_fail
        self.lock = threading.Lock()
        self.server = None

    @property
    def url(self):
        return "http://127.0.0.1:%d/hook" % self.port

    def start(self):
        sink = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with sink.lock:
                    sink.started += 1
                    delay = sink.delay
                if delay:
                    time.sleep(delay)
                with sink.lock:
                    fail = sink.always_fail or sink.fail_first > 0
                    if sink.fail_first > 0:
                        sink.fail_first -= 1
                    if not fail:
                        sink.requests.append((dict(self.headers), body))
                code = 500 if fail else 200
                self.send_response(code)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self):
        if self.server:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def notifications(self):
        with self.lock:
            return [(h, json.loads(b)) for h, b in self.requests]
