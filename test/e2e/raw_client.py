#!/usr/bin/python3
"""Raw HTTP-over-TLS probes that curl cannot make, for the end-to-end scripts in test/e2e/.

  raw_client.py pipeline PORT CA BODY_FILE PATH   two requests in one write
  raw_client.py pipeline-records PORT CA COUNT     COUNT requests, each in its own TLS record
  raw_client.py slow PORT CA SECONDS              a request that never ends
  raw_client.py plain PORT                        plain HTTP on the TLS port
  raw_client.py hold PORT CA COUNT                opens COUNT TLS connections and reports how many the server kept
  raw_client.py flood PORT SOURCES COUNT SECONDS   COUNT silent TCP connections from each source address
  raw_client.py slowloris PORT CA COUNT SECONDS    TLS connections sending a header byte every 0.2 s
  raw_client.py hello PORT SECONDS                 a TLS handshake cut off after the first bytes
  raw_client.py apiserver PORTS API_PORT API_CA CONFIG_PATH BODY_FILE PATH SECONDS LAG OUT
      calls the servers on PORTS (comma-separated) as kube-apiserver does: each
      new connection trusts only the caBundle of the webhook configuration at
      CONFIG_PATH on the (fake) API server, as last read at most LAG seconds ago

Prints one line; exits 0 when the server behaved as it should.
"""
import asyncio
import base64
import http.client
import json
import re
import socket
import ssl
import sys
import threading
import time


def tls(port, ca, rcvbuf=None):
    ctx = ssl.create_default_context(cafile=ca)
    s = socket.socket()
    s.settimeout(10)
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)  # before connect: sets the window
    s.connect(("127.0.0.1", int(port)))
    return ctx.wrap_socket(s, server_hostname="localhost")


def read_response(s, buf, headers=None):
    """Reads one response; returns (status, body, rest of buffer). HEADERS, a
    dict if given, gets the response's header fields (names in lower case)."""
    while b"\r\n\r\n" not in buf:
        chunk = s.recv(65536)
        if not chunk:
            raise EOFError("connection closed before a response")
        buf += chunk
    head, _, rest = buf.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    status = int(lines[0].split()[1])
    length = 0
    for line in lines[1:]:
        k, _, v = line.partition(":")
        if headers is not None:
            headers[k.strip().lower()] = v.strip()
        if k.strip().lower() == "content-length":
            length = int(v)
    while len(rest) < length:
        chunk = s.recv(65536)
        if not chunk:
            raise EOFError("connection closed mid-body")
        rest += chunk
    return status, rest[:length], rest[length:]


def main():
    cmd = sys.argv[1]
    if cmd == "pipeline":
        port, ca, body_file, path = sys.argv[2:6]
        body = open(body_file, "rb").read()
        req = (f"POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
               f"Content-Length: {len(body)}\r\n\r\n").encode() + body
        s = tls(port, ca)
        s.sendall(req + req + b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        buf = b""
        statuses = []
        for _ in range(3):
            status, _, buf = read_response(s, buf)
            statuses.append(status)
        print("statuses", statuses)
        return statuses == [200, 200, 200]
    if cmd == "pipeline-records":
        # Requests each in its own TLS record, corked into one TCP segment:
        # the server reads them all at once (read-ahead) and must answer
        # every one although the socket then has nothing more to report.
        port, ca, count = sys.argv[2], sys.argv[3], int(sys.argv[4])
        s = tls(port, ca)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_CORK, 1)
        for _ in range(count):
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_CORK, 0)
        s.settimeout(5)
        buf, ok = b"", 0
        try:
            for _ in range(count):
                status, _, buf = read_response(s, buf)
                ok += status == 200
        except (socket.timeout, EOFError) as e:
            print(f"stopped: {e!r}")
        print(f"{ok} of {count} answered")
        return ok == count
    if cmd == "pipeline-slow-reader":
        # Many pipelined requests while not reading: the answers back up
        # until the server must wait to write (and so stops reading); then
        # every one must come. The requests are written as the server takes
        # them (asyncio), not in one blocking write: once the server stops
        # reading, the rest can only go after the answers are read, as with
        # any server whose buffers are bounded.
        port, ca, body_file, path, count = sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5], int(sys.argv[6])
        body = open(body_file, "rb").read()
        req = (f"POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
               f"Content-Length: {len(body)}\r\n\r\n").encode() + body

        async def slow_reader():
            s = socket.socket()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connect: sets the window
            s.connect(("127.0.0.1", int(port)))
            reader, writer = await asyncio.open_connection(sock=s, ssl=ssl.create_default_context(cafile=ca),
                                                           server_hostname="localhost")
            writer.write(req * count)
            await asyncio.sleep(1)
            ok = 0
            for _ in range(count):
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
                length = int(re.search(rb"(?i)\r\ncontent-length: *(\d+)", head).group(1))
                await asyncio.wait_for(reader.readexactly(length), 10)
                ok += head.startswith(b"HTTP/1.1 200 ")
            writer.close()
            return ok

        ok = asyncio.run(slow_reader())
        print(f"{ok} of {count} answered")
        return ok == count
    if cmd == "slow":
        port, ca, seconds = sys.argv[2], sys.argv[3], float(sys.argv[4])
        s = tls(port, ca)
        s.sendall(b"POST /mutate/csi-controller-placement HTTP/1.1\r\nHost: localhost\r\n")
        start = time.time()
        s.settimeout(seconds + 5)
        try:
            while s.recv(1024):
                pass
        except (ssl.SSLError, OSError):
            pass
        took = time.time() - start
        print(f"closed after {took:.1f}s")
        return took <= seconds + 3
    if cmd == "plain":
        s = socket.create_connection(("127.0.0.1", int(sys.argv[2])), timeout=5)
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        data = b""
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
        print(data.split(b"\r\n")[0].decode())
        return data.startswith(b"HTTP/1.1 400") and b"HTTPS server" in data
    if cmd == "hold":
        # COUNT keep-alive connections, one after another, each served once
        # and left open; then how many the server still holds.
        port, ca, count = sys.argv[2], sys.argv[3], int(sys.argv[4])
        socks, served = [], 0
        for _ in range(count):
            try:
                s = tls(port, ca)
                s.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
                status, _, _ = read_response(s, b"")
                served += status == 200
                socks.append(s)
            except (OSError, EOFError, ssl.SSLError):
                pass
        time.sleep(0.2)
        still_open = 0
        for s in socks:
            s.setblocking(False)
            try:
                s.recv(1)
            except (ssl.SSLWantReadError, BlockingIOError):
                still_open += 1
            except (OSError, ssl.SSLError):
                pass
        print(f"served {served} of {count}, open {still_open}")
        return True
    if cmd == "load":
        # Steady load until SECONDS pass: keep-alive connections posting a
        # review; reconnects as clients do. Reports failures before the
        # first refused connection (the listener closing), which must be 0.
        port, ca, body_file, path, seconds, conns, out = sys.argv[2:9]
        body = open(body_file, "rb").read()
        ctx = ssl.create_default_context(cafile=ca)
        end = time.time() + float(seconds)
        lock = threading.Lock()
        result = {"ok": 0, "refused": 0, "first_refused": None, "failures": [], "serials": []}

        def worker():
            conn = None
            while time.time() < end:
                try:
                    if conn is None:
                        conn = http.client.HTTPSConnection("localhost", int(port), context=ctx, timeout=5)
                        conn.connect()
                        serial = conn.sock.getpeercert()["serialNumber"]
                        with lock:
                            if serial not in result["serials"]:
                                result["serials"].append(serial)
                    conn.request("POST", path, body, {"Content-Type": "application/json"})
                    r = conn.getresponse()
                    data = r.read()
                    with lock:
                        if r.status == 200 and b'"allowed":true' in data:
                            result["ok"] += 1
                        else:
                            result["failures"].append([time.time(), f"HTTP {r.status}"])
                    if r.getheader("Connection", "").lower() == "close":
                        conn.close()
                        conn = None
                except ConnectionRefusedError:
                    with lock:
                        result["refused"] += 1
                        result["first_refused"] = result["first_refused"] or time.time()
                    conn = None
                    time.sleep(0.05)
                except (OSError, http.client.HTTPException) as e:
                    with lock:
                        result["failures"].append([time.time(), repr(e)])
                    if conn is not None:
                        conn.close()
                    conn = None

        threads = [threading.Thread(target=worker) for _ in range(int(conns))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        cut = result["first_refused"] or float("inf")
        result["failures_before_close"] = [f for f in result["failures"] if f[0] < cut]
        json.dump(result, open(out, "w"))
        print(f"ok {result['ok']}, failures before the listener closed {len(result['failures_before_close'])}, "
              f"refused after {result['refused']}")
        for when, what in result["failures_before_close"][:5]:
            print(f"  failure {what} at {when - (result['first_refused'] or when):+.3f}s from the close")
        return True
    if cmd == "flood":
        port, sources, count, seconds = int(sys.argv[2]), sys.argv[3].split(","), int(sys.argv[4]), float(sys.argv[5])
        socks = []
        for src in sources:
            for _ in range(count):
                s = socket.socket()
                s.bind((src, 0))
                try:
                    s.connect(("127.0.0.1", port))
                    socks.append(s)
                except OSError:
                    s.close()
        time.sleep(seconds)
        closed = 0
        for s in socks:
            s.setblocking(False)
            try:
                closed += s.recv(1) == b""
            except BlockingIOError:
                pass
            except OSError:
                closed += 1
            s.close()
        print(f"opened {len(socks)}, closed by the server {closed}")
        return True
    if cmd == "slowloris":
        port, ca, count, seconds = sys.argv[2], sys.argv[3], int(sys.argv[4]), float(sys.argv[5])
        socks = [tls(port, ca) for _ in range(count)]
        request = b"POST /mutate/csi-controller-placement HTTP/1.1\r\nHost: localhost\r\nX-Slow: " + b"a" * 1000
        alive = set(range(count))
        end = time.time() + seconds
        sent = 0
        while alive and time.time() < end and sent < len(request):
            for i in list(alive):
                try:
                    socks[i].sendall(request[sent:sent + 1])
                except OSError:
                    alive.discard(i)
            sent += 1
            time.sleep(0.2)
        for i in list(alive):  # a close shows on the next read
            try:
                socks[i].settimeout(0.5)
                if socks[i].recv(1) == b"":
                    alive.discard(i)
            except (OSError, ssl.SSLError):
                alive.discard(i)
        print(f"cut off {count - len(alive)} of {count} after {sent} bytes each")
        return not alive
    if cmd == "hello":
        port, seconds = int(sys.argv[2]), float(sys.argv[3])
        s = socket.create_connection(("127.0.0.1", port), timeout=seconds + 5)
        s.sendall(bytes.fromhex("160301020001") + b"\x00" * 40)  # a ClientHello that stops early
        started = time.time()
        try:
            data = s.recv(100)
        except OSError:
            data = b""
        took = time.time() - started
        print(f"closed after {took:.1f}s")
        return data == b"" and took <= seconds
    if cmd == "apiserver":
        ports = [int(p) for p in sys.argv[2].split(",")]
        api_port, api_ca, config_path, body_file, path = sys.argv[3:8]
        seconds, lag, out = float(sys.argv[8]), float(sys.argv[9]), sys.argv[10]
        body = open(body_file, "rb").read()
        token = open(sys.argv[11]).read().strip() if len(sys.argv) > 11 else ""
        api_ctx = ssl.create_default_context(cafile=api_ca)
        result = {"ok": 0, "failures": [], "serials": [], "issuers": [], "bundle_sizes": [], "bundles": 0}
        bundle = {"pem": None, "read": 0.0}

        def read_bundle():
            c = http.client.HTTPSConnection("localhost", int(api_port), context=api_ctx, timeout=5)
            c.request("GET", config_path, headers={"Authorization": f"Bearer {token}"} if token else {})
            doc = json.loads(c.getresponse().read())
            c.close()
            cas = {w.get("clientConfig", {}).get("caBundle") for w in doc["webhooks"]}
            if len(cas) != 1 or None in cas:
                raise ValueError(f"webhooks disagree or lack a caBundle: {len(cas)} values")
            return base64.b64decode(cas.pop()).decode()

        end = time.time() + seconds
        i = 0
        while time.time() < end:
            now = time.time()
            try:
                if now - bundle["read"] >= lag:
                    try:
                        bundle["pem"], bundle["read"] = read_bundle(), now
                    except (OSError, ValueError, KeyError, http.client.HTTPException):
                        # As kube-apiserver's informer: the last configuration seen stays in use.
                        result["bundle_read_errors"] = result.get("bundle_read_errors", 0) + 1
                        if bundle["pem"] is None:
                            raise
                    size = bundle["pem"].count("BEGIN CERTIFICATE")
                    result["bundles"] += 1
                    if size not in result["bundle_sizes"]:
                        result["bundle_sizes"].append(size)
                ctx = ssl.create_default_context(cadata=bundle["pem"])
                port = ports[i % len(ports)]
                i += 1
                conn = http.client.HTTPSConnection("localhost", port, context=ctx, timeout=5)
                conn.connect()
                cert = conn.sock.getpeercert()
                issuer = dict(x[0] for x in cert["issuer"])["commonName"]
                for key, value in (("serials", cert["serialNumber"]), ("issuers", issuer)):
                    if value not in result[key]:
                        result[key].append(value)
                conn.request("POST", path, body, {"Content-Type": "application/json"})
                r = conn.getresponse()
                data = r.read()
                conn.close()
                if r.status == 200 and b'"allowed":true' in data:
                    result["ok"] += 1
                else:
                    result["failures"].append([now, f"port {port}: HTTP {r.status}"])
            except (OSError, ValueError, KeyError, http.client.HTTPException) as e:
                result["failures"].append([now, repr(e)])
            time.sleep(0.02)
        json.dump(result, open(out, "w"))
        print(f"ok {result['ok']}, failures {len(result['failures'])}, serving certificates {len(result['serials'])}, "
              f"CAs {len(result['issuers'])}, bundle sizes {result['bundle_sizes']}")
        for when, what in result["failures"][:5]:
            print(f"  failure at {time.strftime('%H:%M:%S', time.gmtime(when))}: {what}")
        return not result["failures"]
    raise SystemExit(f"unknown probe {cmd}")


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
