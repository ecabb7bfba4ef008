#!/usr/bin/env python3
# perf/http_idle_memory.py — server RSS per idle keep-alive HTTP/1.1 connection.
# Reads the server's VmRSS (/proc/PID/status), opens N connections to HOST:PORT, sends one
# "GET /plaintext HTTP/1.1\r\nHost: x\r\n\r\n" on each and reads the full answer (headers +
# Content-Length body), keeps every connection open and idle for SETTLE_S, reads VmRSS again
# (summed over PID's children too: nginx's worker) and prints the delta per connection.
# Usage: perf/http_idle_memory.py PORT PID [N=5000] [SETTLE_S=2]
import os, resource, select, socket, sys, time

port, pid = int(sys.argv[1]), int(sys.argv[2])
n = int(sys.argv[3]) if len(sys.argv) > 3 else 5000
settle = float(sys.argv[4]) if len(sys.argv) > 4 else 2.0
REQ = b"GET /plaintext HTTP/1.1\r\nHost: x\r\n\r\n"

soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

def pids(p):
    out = [p]
    try:
        for t in os.listdir(f"/proc/{p}/task"):
            with open(f"/proc/{p}/task/{t}/children") as f:
                for c in f.read().split():
                    out += pids(int(c))
    except OSError:
        pass
    return sorted(set(out))

def rss_kib():
    tot = 0
    for p in pids(pid):
        with open(f"/proc/{p}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    tot += int(line.split()[1])
    return tot

def answered(buf):
    h = buf.find(b"\r\n\r\n")
    if h < 0:
        return False
    cl = 0
    for line in buf[:h].split(b"\r\n")[1:]:
        k, _, v = line.partition(b":")
        if k.strip().lower() == b"content-length":
            cl = int(v)
    return len(buf) >= h + 4 + cl

before = rss_kib()
socks, ep = [], select.epoll()
bufs = {}
t0 = time.time()
BATCH = 200
for i in range(0, n, BATCH):
    batch = []
    for _ in range(min(BATCH, n - i)):
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(REQ)
        s.setblocking(False)
        batch.append(s)
        bufs[s.fileno()] = b""
        ep.register(s.fileno(), select.EPOLLIN)
    pending = {s.fileno() for s in batch}
    while pending:
        if time.time() - t0 > 120:
            sys.exit(f"timed out with {len(pending)} answers missing")
        for fd, _ in ep.poll(1.0):
            s = socket.socket(fileno=os.dup(fd)); chunk = s.recv(65536); s.close()
            if not chunk:
                sys.exit("server closed a connection")
            bufs[fd] += chunk
            if answered(bufs[fd]):
                if not bufs[fd].startswith(b"HTTP/1.1 200"):
                    sys.exit(f"unexpected answer: {bufs[fd][:40]!r}")
                pending.discard(fd); ep.unregister(fd)
    socks += batch
time.sleep(settle)
after = rss_kib()
print(f"RESULT conns={n} rss_before_kib={before} rss_after_kib={after} "
      f"delta_kib={after - before} bytes_per_conn={(after - before) * 1024 / n:.0f}")
for s in socks:
    s.close()
