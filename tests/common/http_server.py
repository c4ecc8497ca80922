#!/usr/bin/env python3
"""A real HTTP server on 127.0.0.1 for tests, benches and the demo, with faults on demand.

    python3 tests/common/http_server.py --root DIR [--host 127.0.0.1] [--port 0] [--port-file F]

Prints "PORT <n>" on stdout (and writes it to --port-file) once it listens, then serves until
killed. Plain files: GET /f/<path under DIR>. Faults are path modifiers before /f/ (or before
/gen/<n> for a generated body of n bytes), applied left to right:

    /x/status=404/f/a.jpg          answer 404
    /x/fail=2:tok/f/a.jpg          the first 2 requests with token tok get 500, then the file
    /x/throttle=1:tok/f/a.jpg      the first request gets 429 with Retry-After: 1
    /x/hang=600/f/a.jpg            accept, then say nothing for 600 s (a server that never answers)
    /x/slow=2000/f/a.jpg           drip the body at 2000 bytes/s
    /x/cut=500/f/a.jpg             declare the full length, send 500 bytes, close
    /x/header=X-Robots-Tag:noai/f/a.jpg   add a response header
    /x/type=text%2Fhtml/f/page.html       set the Content-Type
    /x/redirect=3/f/a.jpg          three redirects, then the file
    /x/loop/f/a.jpg                redirect to itself forever
    /x/location=file%3A%2F%2F%2Fetc%2Fpasswd/f/a   redirect to any location
    /x/nolength/gen/30000000       a generated body of 30 MB without Content-Length
    /x/trickle=50/f/a.tar          send the body one byte at a time at 50 bytes/s (above curl's
                                   low-speed limit of 1 byte/s, far below any useful rate)
    /x/endless=20000/gen/100       after the body, keep sending filler at 20000 bytes/s forever
                                   (no Content-Length): only a total deadline ends it
    /x/garbage/f/a.jpg             answer bytes that are not HTTP at all, then close
    /x/lie=1000/f/a.jpg            declare 1000 bytes more in Content-Length than sent, close
    /x/gzip/f/a.jpg                send the body gzip-compressed with Content-Encoding: gzip

GET /stats returns {"path": count, ...} of the requests seen so far.
"""
import argparse
import gzip
import http.server
import json
import os
import socketserver
import sys
import threading
import time
import urllib.parse

COUNTS = {}
TOKENS = {}
LOCK = threading.Lock()
ROOT = "."


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):  # quiet: tests read their own output
        pass

    def do_GET(self):
        path = urllib.parse.urlsplit(self.path).path
        with LOCK:
            COUNTS[path] = COUNTS.get(path, 0) + 1
        if path == "/stats":
            with LOCK:
                body = json.dumps(COUNTS).encode()
            return self.reply(200, body, {"Content-Type": "application/json"})
        parts = [p for p in path.split("/") if p]
        mods = []
        if parts and parts[0] == "x":
            parts = parts[1:]
            while parts and parts[0] not in ("f", "gen"):
                mods.append(urllib.parse.unquote(parts.pop(0)))
        if not parts or parts[0] not in ("f", "gen"):
            return self.reply(404, b"not found\n")
        if parts[0] == "gen":
            try:
                body = bytes(i % 251 for i in range(int(parts[1])))
            except (IndexError, ValueError):
                return self.reply(400, b"bad gen\n")
        else:
            rel = urllib.parse.unquote("/".join(parts[1:]))
            full = os.path.realpath(os.path.join(ROOT, rel))
            if not full.startswith(os.path.realpath(ROOT) + os.sep) or not os.path.isfile(full):
                return self.reply(404, b"not found\n")
            with open(full, "rb") as f:
                body = f.read()
        headers = {"Content-Type": guess_type(path)}
        slow = cut = endless = None
        trickle = False
        extra_length = 0
        length = True
        for mod in mods:
            key, _, val = mod.partition("=")
            if key == "status":
                return self.reply(int(val), b"status %s\n" % val.encode())
            if key in ("fail", "throttle"):
                n, _, token = val.partition(":")
                with LOCK:
                    seen = TOKENS.get((key, token), 0)
                    TOKENS[(key, token)] = seen + 1
                if seen < int(n):
                    if key == "fail":
                        return self.reply(500, b"try again\n")
                    return self.reply(429, b"slow down\n", {"Retry-After": "1"})
            elif key == "hang":
                time.sleep(float(val))
                return self.close_connection_now()
            elif key == "slow":
                slow = float(val)
            elif key == "cut":
                cut = int(val)
            elif key == "header":
                name, _, value = val.partition(":")
                headers[name] = value
            elif key == "type":
                headers["Content-Type"] = val
            elif key == "redirect":
                n = int(val)
                rest = path.replace("redirect=%d" % n, "redirect=%d" % (n - 1), 1)
                if n > 0:
                    return self.reply(302, b"", {"Location": rest})
            elif key == "loop":
                return self.reply(302, b"", {"Location": path})
            elif key == "location":
                return self.reply(302, b"", {"Location": val})
            elif key == "nolength":
                length = False
            elif key == "trickle":
                slow, trickle = float(val), True
            elif key == "endless":
                endless, length = float(val), False
            elif key == "garbage":
                self.close_connection = True
                self.wfile.write(b"SSH-2.0-OpenSSH_9.2\r\n\x00\x01\x02 not http at all\r\n\r\n")
                return self.close_connection_now()
            elif key == "lie":
                extra_length = int(val)
            elif key == "gzip":
                body = gzip.compress(body)
                headers["Content-Encoding"] = "gzip"
        self.send_response(200)
        for k, v in headers.items():
            self.send_header(k, v)
        if length:
            self.send_header("Content-Length", str(len(body) + extra_length))
        else:
            self.send_header("Connection", "close")
        self.end_headers()
        data = body if cut is None else body[:cut]
        try:
            if slow:
                step = 1 if trickle else max(1, int(slow / 20))
                for i in range(0, len(data), step):
                    self.wfile.write(data[i:i + step])
                    self.wfile.flush()
                    time.sleep(step / slow)
            else:
                self.wfile.write(data)
            if endless:
                step = max(1, int(endless / 20))
                while True:
                    self.wfile.write(b"\0" * step)
                    self.wfile.flush()
                    time.sleep(step / endless)
        except (BrokenPipeError, ConnectionResetError):
            pass
        if cut is not None or not length or extra_length:
            self.close_connection_now()

    def close_connection_now(self):
        self.close_connection = True
        try:
            self.wfile.flush()
            self.connection.shutdown(2)
        except OSError:
            pass

    def reply(self, code, body, headers=None):
        self.send_response(code)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def guess_type(path):
    ext = os.path.splitext(path)[1].lower()
    return {".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png",
            ".webp": "image/webp", ".html": "text/html", ".tar": "application/x-tar",
            ".zst": "application/zstd", ".json": "application/json"}.get(
                ext, "application/octet-stream")


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256


def main():
    global ROOT
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", default=".")
    ap.add_argument("--host", default="127.0.0.1")  # or an address of a test's own namespace
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file")
    args = ap.parse_args()
    ROOT = args.root
    server = Server((args.host, args.port), Handler)
    port = server.server_address[1]
    if args.port_file:
        tmp = args.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write(str(port))
        os.rename(tmp, args.port_file)
    print("PORT %d" % port, flush=True)
    server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
