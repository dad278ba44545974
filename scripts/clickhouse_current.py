#!/usr/bin/env python3
"""A current ClickHouse (26.x, in-process through PyPI's chdb) behind ClickHouse's HTTP interface.

No current `clickhouse-server` package reaches this machine's registries (Debian's is 18.16);
chdb is the ClickHouse engine as a library. This server speaks the part of the HTTP interface
that KeyFlow's clients use, so the same Rust code and tests that run against the 18.16 server
run unchanged against 26.x: every migration, view, read, insert and the analyst recompute.

What it translates, and nothing else:
- the query comes from the `query` URL parameter or the body (as in ClickHouse);
- `INSERT INTO t (cols) FORMAT F` with its data in the body becomes
  `INSERT INTO t (cols) SELECT * FROM file(<body>, 'F')` (chdb takes no streamed insert data;
  the column types come from the target table, as for a streamed insert);
- `decompress=1` bodies (clickhouse-rs's LZ4 blocks) are decompressed; answers are sent
  uncompressed (no Content-Encoding), which every HTTP client of ClickHouse accepts;
- `database`, `default_format` and the other URL parameters as ClickHouse reads them: settings
  become the query's `SETTINGS`.
An error is answered as ClickHouse answers it: status 500, the `X-ClickHouse-Exception-Code`
header and the message (`Code: N. DB::Exception: ...`) as the body.

Usage: clickhouse_current.py [--port 8124] [--path DIR]
"""

import argparse
import http.server
import os
import re
import struct
import sys
import tempfile
import threading
import urllib.parse

import chdb
import lz4.block
from chdb import session

# URL parameters that are not settings of the query.
NOT_SETTINGS = {"query", "database", "default_format", "decompress", "compress", "user",
                "password", "query_id", "session_id", "session_timeout", "role"}
INSERT_FORMAT = re.compile(r"^\s*(INSERT\s+INTO\s+.+?)\s+FORMAT\s+(\w+)\s*$", re.I | re.S)
EXPLICIT_FORMAT = re.compile(r"\bFORMAT\s+\w+\s*;?\s*$", re.I)
ERROR_CODE = re.compile(r"Code: (\d+)\.")


def decompress_blocks(data: bytes) -> bytes:
    """ClickHouse's compressed-block framing: 16-byte checksum, method, sizes, payload."""
    out, pos = [], 0
    while pos < len(data):
        method = data[pos + 16]
        compressed, plain = struct.unpack_from("<II", data, pos + 17)
        payload = data[pos + 25 : pos + 16 + compressed]
        if method == 0x82:
            out.append(lz4.block.decompress(payload, uncompressed_size=plain))
        elif method == 0x02:
            out.append(payload)
        else:
            raise ValueError(f"compression method 0x{method:02x} is not supported here")
        pos += 16 + compressed
    return b"".join(out)


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, addr, path):
        super().__init__(addr, Handler)
        self.session = session.Session(path)
        self.lock = threading.Lock()
        self.tmp = tempfile.mkdtemp(prefix="keyflow-chdb-")
        self.seq = 0


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):  # one line per failed statement only (see answer)
        pass

    def read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            parts = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(parts)
                parts.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def do_GET(self):
        self.handle_query(b"")

    def do_POST(self):
        self.handle_query(self.read_body())

    def handle_query(self, body: bytes):
        url = urllib.parse.urlparse(self.path)
        if url.path in ("/ping", "/"):
            if url.path == "/ping" or not url.query and not body:
                return self.answer(200, b"Ok.\n")
        params = dict(urllib.parse.parse_qsl(url.query, keep_blank_values=True))
        try:
            if params.get("decompress") == "1" and body:
                body = decompress_blocks(body)
            sql, data = (params["query"], body) if "query" in params else (body.decode(), b"")
            if data and "query" in params and not INSERT_FORMAT.match(sql):
                sql, data = sql + " " + data.decode(), b""
            result = self.run(sql, data, params)
        except chdb.ChdbError as e:
            return self.error(str(e))
        except Exception as e:  # a protocol problem of this server, reported like a server error
            return self.error(f"Code: 1001. DB::Exception: {type(e).__name__}: {e}")
        self.answer(200, result)

    def run(self, sql: str, data: bytes, params: dict) -> bytes:
        server: Server = self.server
        settings = [(k, v) for k, v in params.items() if k not in NOT_SETTINGS]
        with server.lock:
            insert = INSERT_FORMAT.match(sql)
            if insert:
                server.seq += 1
                path = os.path.join(server.tmp, f"insert-{server.seq}.bin")
                with open(path, "wb") as f:
                    f.write(data)
                sql = f"{insert.group(1)} SELECT * FROM file('{path}', '{insert.group(2)}')"
            if settings:
                sql = sql.rstrip().rstrip(";") + " SETTINGS " + ", ".join(
                    f"{k} = '{v}'" if not v.isdigit() else f"{k} = {v}" for k, v in settings)
            server.session.query(f"USE {params.get('database') or 'default'}")
            try:
                fmt = params.get("default_format") or "TabSeparated"
                if EXPLICIT_FORMAT.search(sql):
                    fmt = "TabSeparated"  # the statement's own FORMAT clause wins, as in ClickHouse
                return bytes(server.session.query(sql, fmt).bytes())
            finally:
                if insert:
                    os.unlink(path)

    def error(self, message: str):
        code = ERROR_CODE.search(message)
        print(f"clickhouse-current: {message.splitlines()[0][:300]}", file=sys.stderr, flush=True)
        self.answer(500, (message.rstrip() + "\n").encode(),
                    {"X-ClickHouse-Exception-Code": code.group(1) if code else "1001"})

    def answer(self, status: int, body: bytes, headers=None):
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=UTF-8")
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, default=8124)
    ap.add_argument("--path", default=os.path.join(tempfile.gettempdir(), "keyflow-chdb"))
    args = ap.parse_args()
    server = Server(("127.0.0.1", args.port), args.path)
    version = bytes(server.session.query("SELECT version()", "TabSeparated").bytes()).decode().strip()
    print(f"ClickHouse {version} (chdb {chdb.__version__}) on 127.0.0.1:{args.port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
