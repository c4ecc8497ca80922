"""Runs a command against a real S3 server on 127.0.0.1: the moto server from the venv.

    python3 with_s3.py [--bucket NAME ...] [--proxy] -- COMMAND ARGS...

Starts `moto_server` on a free port with authentication on (an IAM user with an access key is
created in the first unauthenticated calls, so a wrong key or secret is refused as on AWS),
creates the buckets, and runs COMMAND with AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY /
AWS_REGION / AWS_ENDPOINT_URL set (HOME is a fresh folder: no ~/.aws of the user is read).
With --proxy, AWS_ENDPOINT_URL points at a fault-injecting HTTP proxy in front of moto; the
command arms faults through FLAM_S3_FAULTS (a file it writes: one "MODE COUNT" line, read at
every request; an optional third field limits the fault to paths containing it):
    slowdown N    the next N requests are answered 503 SlowDown (Retry-After: 0)
    reset_put N   the next N PUT requests are cut mid-body (the socket reset)
    cut_get N     the next N GET answers are cut after half their body (the socket reset)
    hold_put N    the next N PUT requests hang for a minute (then 500); FLAM_S3_FAULTS.held is
                  created when one starts hanging, so a test can kill its client mid-upload
The server (and the proxy) are stopped at the end, also when COMMAND fails. Exits with COMMAND's
status.
"""

import argparse
import http.client
import os
import shutil
import signal
import socket
import socketserver
import struct
import subprocess
import sys
import tempfile
import threading
import time
import http.server

import boto3


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc, seconds=30):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if proc.poll() is not None:
            raise SystemExit("moto_server exited early")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise SystemExit("moto_server did not start")


class FaultProxy(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    upstream = 0
    faults_file = ""
    lock = threading.Lock()

    def log_message(self, *args):
        pass

    def take_fault(self):
        with self.lock:
            try:
                with open(self.faults_file) as f:
                    parts = f.read().split()
            except OSError:
                return None
            if len(parts) not in (2, 3) or int(parts[1]) <= 0:
                return None
            mode, count = parts[0], int(parts[1])
            match = parts[2] if len(parts) == 3 else ""
            if match not in self.path:
                return None
            if mode in ("reset_put", "hold_put") and self.command != "PUT":
                return None
            if mode == "cut_get" and self.command != "GET":
                return None
            with open(self.faults_file, "w") as f:
                f.write(f"{mode} {count - 1} {match}\n")
            return mode

    def handle_any(self):
        length = int(self.headers.get("Content-Length", 0))
        fault = self.take_fault()
        if fault == "reset_put":
            self.rfile.read(min(length, 1024))
            self.connection.setsockopt(
                socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
            self.close_connection = True
            return
        body = self.rfile.read(length) if length else b""
        if fault == "hold_put":
            open(self.faults_file + ".held", "w").close()
            time.sleep(60)
            fault = "slowdown"
        if fault == "slowdown":
            xml = (b"<?xml version='1.0' encoding='UTF-8'?><Error><Code>SlowDown</Code>"
                   b"<Message>Please reduce your request rate.</Message></Error>")
            self.send_response(503)
            self.send_header("Retry-After", "0")
            self.send_header("Content-Type", "application/xml")
            self.send_header("Content-Length", str(len(xml)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(xml)
            return
        conn = http.client.HTTPConnection("127.0.0.1", self.upstream, timeout=60)
        headers = {k: v for k, v in self.headers.items()}
        conn.request(self.command, self.path, body=body, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        self.send_response(resp.status)
        for k, v in resp.getheaders():
            if k.lower() not in ("content-length", "transfer-encoding", "connection", "date",
                                 "server"):
                self.send_header(k, v)
        length = resp.getheader("Content-Length") if self.command == "HEAD" else None
        self.send_header("Content-Length", length or str(len(data)))
        self.end_headers()
        if fault == "cut_get":
            self.wfile.write(data[:len(data) // 2])
            self.wfile.flush()
            self.connection.setsockopt(
                socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
            self.close_connection = True
        elif self.command != "HEAD":
            self.wfile.write(data)
        conn.close()

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = handle_any


class ThreadingServer(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bucket", action="append", default=[])
    ap.add_argument("--proxy", action="store_true")
    ap.add_argument("command", nargs=argparse.REMAINDER)
    args = ap.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command

    # ctest ends a test past its TIMEOUT with SIGTERM: unwind, so that the server is stopped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(124))
    home = tempfile.mkdtemp(prefix="flam_s3_home_")
    port = free_port()
    env = dict(os.environ, INITIAL_NO_AUTH_ACTION_COUNT="3")
    moto = subprocess.Popen(
        ["moto_server", "-H", "127.0.0.1", "-p", str(port)], env=env,
        stdout=open(os.path.join(home, "moto.log"), "w"), stderr=subprocess.STDOUT,
        start_new_session=True)
    proxy = None
    try:
        wait_port(port, moto)
        endpoint = f"http://127.0.0.1:{port}"
        iam = boto3.client("iam", endpoint_url=endpoint, region_name="us-east-1",
                           aws_access_key_id="bootstrap", aws_secret_access_key="bootstrap")
        iam.create_user(UserName="flam")
        iam.put_user_policy(
            UserName="flam", PolicyName="all",
            PolicyDocument='{"Version":"2012-10-17","Statement":[{"Effect":"Allow",'
                           '"Action":"*","Resource":"*"}]}')
        key = iam.create_access_key(UserName="flam")["AccessKey"]
        s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                          aws_access_key_id=key["AccessKeyId"],
                          aws_secret_access_key=key["SecretAccessKey"])
        for b in args.bucket:
            s3.create_bucket(Bucket=b)
        child = dict(os.environ)
        for k in list(child):
            if k.startswith("AWS_"):
                del child[k]
        child.update(HOME=home, AWS_ACCESS_KEY_ID=key["AccessKeyId"],
                     AWS_SECRET_ACCESS_KEY=key["SecretAccessKey"], AWS_REGION="us-east-1",
                     AWS_ENDPOINT_URL=endpoint, FLAM_S3_MOTO_URL=endpoint)
        if args.proxy:
            FaultProxy.upstream = port
            FaultProxy.faults_file = os.path.join(home, "faults")
            proxy = ThreadingServer(("127.0.0.1", 0), FaultProxy)
            threading.Thread(target=proxy.serve_forever, daemon=True).start()
            child["AWS_ENDPOINT_URL"] = f"http://127.0.0.1:{proxy.server_address[1]}"
            child["FLAM_S3_FAULTS"] = FaultProxy.faults_file
        return subprocess.call(command, env=child)
    finally:
        if proxy is not None:
            proxy.shutdown()
        os.killpg(moto.pid, signal.SIGTERM)
        try:
            moto.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(moto.pid, signal.SIGKILL)
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
