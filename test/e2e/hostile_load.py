#!/usr/bin/python3
"""Hostile large-body load beside a legitimate client, with the server's memory.

  hostile_load.py attack --port P --ca CA --pid PID --review FILE [--big-review FILE] --path PATH
      [--connections 60] [--body-size 7340000] [--modes fast,slow,chunked]
      [--seconds 20] [--sources 127.0.0.2,127.0.0.3] [--settle 5] [--late-after 1]
  hostile_load.py uploads --port P --ca CA --pid PID [--count 5] [--body-size N] [--chunked]
  hostile_load.py cpu --port P --ca CA --pid PID [--body-size 7340000] [--count 5]

attack: CONNECTIONS TLS connections, spread over MODES and SOURCES (local
addresses, so a per-address connection limit does not hide the attack), each
announcing a body of BODY_SIZE bytes and sending all of it but the last byte,
then holding until the server cuts it off; then again, until SECONDS have
passed. fast sends as fast as the server reads, slow 16 KiB every 0.5 s,
chunked the same body as 64 KiB chunks without the last one. Meanwhile a
separate process sends the review in FILE to PATH over keep-alive from
127.0.0.1 (every tenth time the one in --big-review, if given) and checks
each answer (200, the same uid; answered after more than LATE_AFTER seconds
is late), and probes /healthz with a new connection every 0.25 s. Prints
one JSON object: the server's RSS before, at its peak (VmHWM, reset before
the attack) and SETTLE seconds after; the kernel memory of its sockets
(receive and send queues with what the kernel set aside for them, `ss -tm`:
r + w + f, charged to the pod's memory cgroup like RSS) at its sampled peak
and after; the legitimate client's answers and latency, the probes, and
what the hostile connections managed.

uploads: COUNT clients at once each send one whole body of BODY_SIZE bytes to
/healthz (405 once read), with Content-Length or --chunked, and report the
statuses they got and how long the slowest took.

cpu: the server's CPU time (from /proc) for COUNT bodies of BODY_SIZE bytes
sent in 16 KiB writes with Content-Length, then chunked (16 KiB chunks).
"""
import argparse
import asyncio
import json
import multiprocessing
import os
import re
import socket
import ssl
import statistics
import subprocess
import sys
import threading
import time

import raw_client  # beside this file


def status_kib(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def socket_sample(port):
    """Kernel memory of the TCP sockets whose local address is
    127.0.0.1:PORT (the server's): what ss -tm shows as r (receive queue),
    w (send queue) and f (set aside for them), all charged to the owner's
    memory cgroup. Returns the total in KiB and each socket as (bytes held,
    its ss text)."""
    # By address and port: a client socket from 127.0.0.2 or .3 may get the
    # server's port number as its own ephemeral port, and `sport = :PORT`
    # counted it (once a hostile client's 3.9 MiB send queue, failing CI).
    out = subprocess.run(["ss", "-tmnH", "state", "all", f"( src 127.0.0.1:{port} )"],
                         capture_output=True, text=True, check=True).stdout
    sockets = []
    socket_line = ""
    for line in out.splitlines():  # skmem on a line of its own below its socket's
        m = re.search(r"skmem:\(([^)]*)\)", line)
        if not m:
            socket_line = " ".join(line.split())
            continue
        fields = {k: int(v) for k, v in re.findall(r"([a-z]+)(\d+)", m.group(1))}
        held = fields.get("r", 0) + fields.get("w", 0) + fields.get("f", 0)
        sockets.append((held, f"{socket_line} {m.group(0)}"))
    return sum(held for held, _ in sockets) // 1024, sockets


def socket_kib(port):
    return socket_sample(port)[0]


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def context(ca):
    ctx = ssl.create_default_context(cafile=ca)
    return ctx


def read_response(s, buf):
    """Reads one response; returns (status, body, rest), rest None when the
    server said it closes the connection."""
    headers = {}
    status, body, rest = raw_client.read_response(s, buf, headers)
    return status, body, None if headers.get("connection", "").lower() == "close" else rest


def request_head(path, size, chunked):
    """The header section of a POST of SIZE bytes, or chunked."""
    return (f"POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n" +
            ("Transfer-Encoding: chunked\r\n" if chunked else f"Content-Length: {size}\r\n") + "\r\n").encode()


def post_body(s, size, chunked, piece):
    """Sends a whole POST of SIZE bytes to /healthz (405 once read) over the
    blocking socket s, in writes (or chunks) of PIECE bytes."""
    s.sendall(request_head("/healthz", size, chunked))
    data = b"a" * piece
    left = size
    while left > 0:
        n = min(piece, left)
        s.sendall(f"{n:x}\r\n".encode() + data[:n] + b"\r\n" if chunked else data[:n])
        left -= n
    if chunked:
        s.sendall(b"0\r\n\r\n")


# --- the legitimate side: its own process, so the attack's event loop does
# not add to its latency.

def legit(port, ca, review_files, path, stop_at, late_after, out):
    requests = []
    for review_file in review_files:
        body = open(review_file, "rb").read()
        requests.append((json.loads(body)["request"]["uid"],
                         (f"POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
                          f"Content-Length: {len(body)}\r\n\r\n").encode() + body))
    sent = 0
    big_answered = 0
    ctx = context(ca)
    latencies, failures, late, errors = [], 0, 0, []
    probes_ok, probes_failed = 0, 0
    next_probe = 0.0
    s, buf = None, b""
    while time.time() < stop_at:
        now = time.time()
        if now >= next_probe:
            next_probe = now + 0.25
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
                    with ctx.wrap_socket(raw, server_hostname="localhost") as p:
                        p.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
                        status, _, _ = read_response(p, b"")
                probes_ok += status == 200
                probes_failed += status != 200
            except Exception as e:  # noqa: BLE001 - every failure counts
                probes_failed += 1
                errors.append(f"healthz: {e}")
        try:
            if s is None:
                s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=10),
                                    server_hostname="localhost")
                buf = b""
            # Every tenth review is the big one, when there is one.
            big = len(requests) > 1 and sent % 10 == 9
            uid, req = requests[1 if big else 0]
            sent += 1
            t0 = time.perf_counter()
            s.sendall(req)
            status, answer, buf = read_response(s, buf)
            latencies.append(time.perf_counter() - t0)
            late += latencies[-1] > late_after
            big_answered += big and status == 200
            review = json.loads(answer) if status == 200 else {}
            if status != 200 or review.get("response", {}).get("uid") != uid:
                failures += 1
                errors.append(f"review: HTTP {status} {answer[:200]!r}")
            if buf is None:  # Connection: close (--max-requests-per-connection)
                s.close()
                s = None
        except Exception as e:  # noqa: BLE001
            failures += 1
            errors.append(f"review: {e}")
            if s is not None:
                s.close()
            s = None
        time.sleep(0.01)
    if s is not None:
        s.close()
    latencies.sort()
    q = lambda f: round(1000 * latencies[min(len(latencies) - 1, int(f * len(latencies)))], 2) if latencies else None
    out.put({"reviews": len(latencies) + failures - sum(1 for e in errors if e.startswith("review: HTTP")),
             "failed": failures, "late": late, "big_reviews": big_answered,
             "p50_ms": q(0.50), "p99_ms": q(0.99), "max_ms": q(1.0),
             "healthz_ok": probes_ok, "healthz_failed": probes_failed, "errors": errors[:5]})


# --- the hostile side

class Tally:
    def __init__(self):
        self.connections = 0
        self.bytes_sent = 0
        self.cut_off = 0
        self.status = {}
        self.connect_failures = 0


async def hostile(mode, source, args, ctx, stop_at, tally):
    size = args.body_size
    while time.time() < stop_at:
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(
                "127.0.0.1", args.port, ssl=ctx, server_hostname="localhost", local_addr=(source, 0)), 10)
        except Exception:  # noqa: BLE001 - refused or timed out: try again
            tally.connect_failures += 1
            await asyncio.sleep(0.2)
            continue
        tally.connections += 1
        chunked = mode == "chunked"
        piece = 16384 if mode == "slow" else 65536
        reading = asyncio.ensure_future(reader.read(4096))
        try:
            writer.write(request_head(args.path, size, chunked))
            sent = 0
            while sent < size - 1 and time.time() < stop_at and not reading.done():
                n = min(piece, size - 1 - sent)
                data = b"a" * n
                writer.write(f"{n:x}\r\n".encode() + data + b"\r\n" if chunked else data)
                await asyncio.wait_for(writer.drain(), max(0.1, stop_at - time.time()))
                sent += n
                tally.bytes_sent += n
                if mode == "slow":
                    await asyncio.sleep(0.5)
            # Hold, all but the last byte sent, until the server answers or cuts us off.
            await asyncio.wait_for(asyncio.shield(reading), max(0.1, stop_at - time.time()))
        except (asyncio.TimeoutError, ConnectionError, ssl.SSLError, OSError):
            pass
        answer = reading.result() if reading.done() and not reading.cancelled() and not reading.exception() else None
        if answer:
            code = answer.split(b" ", 2)[1].decode() if answer.startswith(b"HTTP/1.1 ") else "?"
            tally.status[code] = tally.status.get(code, 0) + 1
        elif reading.done() and time.time() < stop_at:
            tally.cut_off += 1
        reading.cancel()
        writer.transport.abort()


async def attack_all(args, stop_at):
    ctx = context(args.ca)
    sources = args.sources.split(",")
    modes = args.modes.split(",")
    tally = Tally()
    tasks = [hostile(modes[i % len(modes)], sources[i % len(sources)], args, ctx, stop_at, tally)
             for i in range(args.connections)]
    await asyncio.gather(*tasks)
    return tally


def attack(args):
    pid = args.pid
    rss_idle = status_kib(pid, "VmRSS")
    with open(f"/proc/{pid}/clear_refs", "w") as f:
        f.write("5")  # resets VmHWM, so the peak is this attack's
    stop_at = time.time() + args.seconds
    out = multiprocessing.Queue()
    reviews = [args.review] + ([args.big_review] if args.big_review else [])
    good = multiprocessing.Process(target=legit,
                                   args=(args.port, args.ca, reviews, args.path, stop_at, args.late_after, out))
    good.start()
    peak_sampled = [0]
    socket_peak = [(0, [])]  # the sample with the most: (KiB, its sockets)

    def sample():
        while time.time() < stop_at + 1:
            try:
                peak_sampled[0] = max(peak_sampled[0], status_kib(pid, "VmRSS"))
            except OSError:
                return
            time.sleep(0.05)

    def sample_sockets():  # ss takes a while over many sockets: every 0.2 s
        while time.time() < stop_at + 1:
            kib, sockets = socket_sample(args.port)
            if kib > socket_peak[0][0]:
                socket_peak[0] = (kib, sockets)
            time.sleep(0.2)
    threading.Thread(target=sample_sockets, daemon=True).start()
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    tally = asyncio.run(attack_all(args, stop_at))
    legit_result = out.get(timeout=60)
    good.join()
    peak = status_kib(pid, "VmHWM")
    time.sleep(args.settle)
    result = {
        "rss_idle_mib": round(rss_idle / 1024, 1),
        "rss_peak_mib": round(peak / 1024, 1),
        "rss_after_mib": round(status_kib(pid, "VmRSS") / 1024, 1),
        "socket_peak_mib": round(socket_peak[0][0] / 1024, 2),
        "socket_after_mib": round(socket_kib(args.port) / 1024, 2),
        # The peak sample: how many sockets, and the one that held the most.
        "socket_peak_sockets": len(socket_peak[0][1]),
        "socket_peak_max": max(socket_peak[0][1], default=(0, ""))[1],
        "settle_seconds": args.settle,
        "legit": legit_result,
        "hostile": {"connections": args.connections, "opened": tally.connections,
                    "connect_failures": tally.connect_failures, "mib_sent": round(tally.bytes_sent / 2**20, 1),
                    "answers": tally.status, "cut_off": tally.cut_off},
    }
    print(json.dumps(result))


def cpu(args):
    ctx = context(args.ca)
    size = args.body_size

    def send_all(chunked):
        s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", args.port), timeout=30), server_hostname="localhost")
        buf = b""
        before = cpu_seconds(args.pid)
        for _ in range(args.count):
            post_body(s, size, chunked, 16384)
            status, _, buf = read_response(s, buf)
            assert status in (200, 405), status
        used = cpu_seconds(args.pid) - before
        s.close()
        return used

    length = send_all(False)
    chunked = send_all(True)
    print(json.dumps({"bodies": args.count, "body_bytes": size, "content_length_cpu_s": round(length, 3),
                      "chunked_cpu_s": round(chunked, 3),
                      "ratio": round(chunked / length, 2) if length > 0 else None}))


def uploads(args):
    ctx = context(args.ca)
    statuses = []
    lock = threading.Lock()

    def one():
        try:
            s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", args.port), timeout=60),
                                server_hostname="localhost")
            post_body(s, args.body_size, args.chunked, 65536)
            status = str(read_response(s, b"")[0])
            s.close()
        except Exception as e:  # noqa: BLE001 - a cut-off counts as such
            status = type(e).__name__
        with lock:
            statuses.append(status)

    t0 = time.time()
    threads = [threading.Thread(target=one) for _ in range(args.count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    counts = {k: statuses.count(k) for k in sorted(set(statuses))}
    print(json.dumps({"statuses": counts, "seconds": round(time.time() - t0, 2)}))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("command", choices=["attack", "uploads", "cpu"])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--ca", required=True)
    ap.add_argument("--pid", type=int, required=True)
    ap.add_argument("--review")
    ap.add_argument("--big-review", help="sent instead of --review every tenth time")
    ap.add_argument("--path", default="/validate/upgrade-guard")
    ap.add_argument("--connections", type=int, default=60)
    ap.add_argument("--body-size", type=int, default=7 * 2**20 - 4096)
    ap.add_argument("--modes", default="fast,slow,chunked")
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--sources", default="127.0.0.2,127.0.0.3")
    ap.add_argument("--settle", type=float, default=5)
    ap.add_argument("--late-after", type=float, default=1.0, help="seconds after which an answer is late")
    ap.add_argument("--count", type=int, default=5)
    ap.add_argument("--chunked", action="store_true")
    args = ap.parse_args()
    {"attack": attack, "uploads": uploads, "cpu": cpu}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
