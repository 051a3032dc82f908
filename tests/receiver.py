"""A real HTTP receiver on loopback for webhook tests: records every request, answers with the
statuses it is told (then 200)."""

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Receiver:
    def __init__(self, delay: float = 0.0):
        self.requests: list[tuple[dict, bytes]] = []
        self.statuses: list[int] = []
        self.spans: list[tuple[float, float]] = []  # when each request was being answered
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                started = time.monotonic()
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if delay:
                    time.sleep(delay)  # a receiver that takes its time: the burst is still going when it matters
                receiver.spans.append((started, time.monotonic()))
                receiver.requests.append(({k.lower(): v for k, v in self.headers.items()}, body))
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def most_at_once(self) -> int:
        """The most requests that were being answered at the same moment."""
        edges = sorted([(start, 1) for start, _ in self.spans] + [(end, -1) for _, end in self.spans])
        most = current = 0
        for _, step in edges:
            current += step
            most = max(most, current)
        return most

    def average_at_once(self) -> float:
        """Requests being answered at once, on average from the first request to the last answer."""
        if not self.spans:
            return 0.0
        busy = sum(end - start for start, end in self.spans)
        return busy / (max(end for _, end in self.spans) - min(start for start, _ in self.spans))

    def stop(self):
        self.server.shutdown()
        self.server.server_close()
