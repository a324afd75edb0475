#!/usr/bin/env python3
"""Side-by-side load harness (run it through scripts/bench-load).

In one run, on loopback: the upstream alone (nginx answering a fixed 31-byte JSON), a bare pingora
proxy of the same version, switchyard, switchyard with 10 % of invocations shadowed, and nginx with
split_clients as a proxy. wrk, 1 thread, 64 connections, blocking POST invokes over 300 actions;
every proxy on one worker thread (THREADS to change it, THREADS=2 for one per CPU here; the
upstream keeps one). Prints req/s, p50/p99, CPU microseconds per request (the proxy
process and its children) with the kernel's part of it, and each row's ratio to switchyard, as
medians of the rounds; then the resident memory of switchyard and bare pingora holding 10,000 idle
keep-alive client connections, and after each of them made one request. Last, when valgrind is
installed, the instructions each proxy runs per request under callgrind (a count, not a time: the
same on a busy or an idle machine),
from two runs of sequential requests whose difference leaves start-up and shutdown out, on the
thread serving the requests and on all threads, and what one shadow copy costs in instructions
(switchyard mirroring every invocation minus switchyard, all threads). With strace
installed, the system calls each proxy makes per request (sends and receives on its sockets) during
a short wrk run. From the rounds it also derives what one shadow copy costs the proxy: the extra CPU
per request with 10 % mirrored, divided by 0.1, next to a primary's CPU per request. The ratios that
matter (switchyard to bare pingora, a copy to a primary) are also given per round, with their
median. Within a round the rows take turns in short slices (SLICES), so a drift of the machine's
speed, which here can reach tens of percent within seconds, falls on every row alike.
"""

import os
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROUNDS = int(os.environ.get("ROUNDS", "5"))  # 0: the memory figures only
SECONDS = int(os.environ.get("SECONDS_PER_RUN", "10"))
# Each row's run in a round is cut in this many slices, and the rows take their slices in turn:
# the machine's speed drifts by tens of percent within seconds, and slices a few seconds long
# spread that drift over every row alike instead of charging it to whichever row ran through it.
SLICES = int(os.environ.get("SLICES", "5"))
CONNECTIONS = 64
# Worker threads of each proxy under load (bare pingora, switchyard, nginx's worker processes). One
# by default, so that the rows compare the proxies' own work on a machine whose cores wrk and the
# upstream share; switchyard and pingora run one per CPU unless told otherwise. The upstream keeps
# one, and the instruction counts run on one thread whatever this says.
THREADS = int(os.environ.get("THREADS", "1"))
IDLE_CLIENTS = int(os.environ.get("IDLE_CLIENTS", "10000"))
COUNTED = (300, 1800)  # requests in the two callgrind runs
SHADOWED = 0.1  # the share of requests mirrored in the shadowing row
# Every invocation mirrored (the instruction count of one copy).
MIRROR_ALL = ('version = "bench-mirror"\nscheduler_share = 25\n[[overrides]]\nnamespace = "guest"\naction = "a-*"\n'
              'share = 25\nshadow = { sample = 100 }\n')
RULES = 'version = "bench"\nscheduler_share = 25\n'
TARGET = os.environ.get("CARGO_TARGET_DIR", os.path.expanduser("~/.cache/switchyard-target"))
BODY = '{"activationId":"0123456789ab"}'
GUEST = "Basic MjNiYzQ2YjEtNzFmNi00ZWQ1LThjNTQtODE2YWE0ZjhjNTAyOjEyM3pPM3haQ0xyTU42djJCS0sxZFhZRnBYbFBrY2NPRnFtMTJDZEFzTWdSVTRWck5aOWx5R1ZDR3VNREdJd1A="
TICK = os.sysconf("SC_CLK_TCK")

WRK_SCRIPT = f"""
wrk.method = "POST"
wrk.body = "{{}}"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "{GUEST}"
counter = 0
request = function()
  counter = counter + 1
  return wrk.format(nil, "/api/v1/namespaces/guest/actions/a-" .. (counter % 300) .. "?blocking=true")
end
"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc, what):
    deadline = time.time() + 30
    while time.time() < deadline:
        if proc.poll() is not None:
            sys.exit(f"{what} exited early")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    sys.exit(f"{what} does not accept on {port}")


def raise_fd_limit():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, 65536) if hard != resource.RLIM_INFINITY else 65536
    resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


def descendants(pid):
    out = [pid]
    for child in subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split():
        out.extend(descendants(int(child)))
    return out


def cpu_ticks(pid):
    """CPU ticks of the process and its children so far: (in user space, in the kernel)."""
    user = kernel = 0
    for p in descendants(pid):
        try:
            fields = open(f"/proc/{p}/stat").read().rsplit(")", 1)[1].split()
            user += int(fields[11])
            kernel += int(fields[12])
        except OSError:
            pass
    return user, kernel


def rss_mb(pid):
    total = 0
    for p in descendants(pid):
        try:
            m = re.search(r"VmRSS:\s+(\d+) kB", open(f"/proc/{p}/status").read())
            total += int(m.group(1)) if m else 0
        except OSError:
            pass
    return total / 1024


def start(cmd, port, what, cwd=None):
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            preexec_fn=raise_fd_limit)
    wait_port(port, proc, what)
    return proc


def nginx_conf(d, name, server_block, workers=1):
    path = os.path.join(d, f"{name}.conf")
    with open(path, "w") as f:
        f.write(f"""worker_processes {workers};
worker_rlimit_nofile 30000;
pid {d}/{name}.pid;
error_log {d}/{name}.log;
events {{ worker_connections 25000; }}
http {{
  access_log off;
  keepalive_requests 10000000;
  client_body_temp_path {d}/{name}-body;
  proxy_temp_path {d}/{name}-proxy;
  {server_block}
}}
""")
    return path


def wrk(port, d, seconds):
    """One wrk run: (its length in seconds, requests, non-2xx answers, p50 ms, p99 ms)."""
    script = os.path.join(d, "post.lua")
    with open(script, "w") as f:
        f.write(WRK_SCRIPT)
    out = subprocess.run(["wrk", "-t1", f"-c{CONNECTIONS}", f"-d{seconds:g}s", "--latency", "-s", script,
                          f"http://127.0.0.1:{port}"], capture_output=True, text=True).stdout
    m = re.search(r"(\d+) requests in ([\d.]+)(ms|s|m)", out)
    total, length = int(m.group(1)), float(m.group(2)) * {"ms": 0.001, "s": 1, "m": 60}[m.group(3)]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)

    def pct(p):
        m = re.search(rf"^\s+{p}%\s+([\d.]+)(us|ms|s)", out, re.M)
        v = float(m.group(1))
        return v / 1000 if m.group(2) == "us" else v * 1000 if m.group(2) == "s" else v

    return length, total, int(errors.group(1)) if errors else 0, pct(50), pct(99)


def hold_clients(port, n, one_request):
    """Opens n keep-alive connections (and, if asked, sends one request on each); returns them."""
    socks = []
    request = (f"POST /api/v1/namespaces/guest/actions/a-1?blocking=true HTTP/1.1\r\nHost: x\r\n"
               f"Authorization: {GUEST}\r\nContent-Length: 2\r\n\r\n{{}}").encode()
    for i in range(n):
        s = socket.create_connection(("127.0.0.1", port))
        socks.append(s)
        if one_request:
            s.sendall(request)
    if one_request:
        for s in socks:
            s.settimeout(10)
            s.recv(65536)
    time.sleep(2)
    return socks


def switchyard_conf(d, name, rules, port, up, stop_at_once=False, threads=1):
    """Writes a switchyard config (and its rules) in front of the upstream; returns its path."""
    with open(os.path.join(d, f"{name}-rules.toml"), "w") as f:
        f.write(rules)
    conf = os.path.join(d, f"{name}.toml")
    # Under valgrind the process should stop as soon as it is told to, and count only what the
    # requests cost: a health check a second would add work in proportion to the (slow) run's
    # length, not to the requests.
    stop = "grace_period_s = 0\ndrain_timeout_s = 1\n" if stop_at_once else ""
    health = "[health]\ninterval_ms = 600000\n" if stop_at_once else ""
    with open(conf, "w") as f:
        f.write(f"""listen = "127.0.0.1:{port}"
rules = "{name}-rules.toml"
threads = {threads}
work_stealing = false
[admin]
listen = "127.0.0.1:{free_port()}"
[pools.legacy]
members = ["127.0.0.1:{up}"]
[pools.scheduler]
members = ["127.0.0.1:{up}"]
[shutdown]
{stop}upgrade_sock = "{d}/{name}-upgrade.sock"
[shadow]
records_file = "{d}/{name}-records.jsonl"
{health}""")
    return conf


def sequential_requests(port, n, connections=8):
    """n blocking invokes over `connections` keep-alive connections, one at a time; each must be a 200."""
    socks = [socket.create_connection(("127.0.0.1", port)) for _ in range(connections)]
    for i in range(n):
        s = socks[i % connections]
        s.sendall((f"POST /api/v1/namespaces/guest/actions/a-{i % 300}?blocking=true HTTP/1.1\r\nHost: x\r\n"
                   f"Content-Type: application/json\r\nAuthorization: {GUEST}\r\nContent-Length: 2\r\n\r\n{{}}").encode())
        buf = b""
        while True:
            data = s.recv(65536)
            if not data:
                sys.exit(f"the proxy on {port} closed the connection")
            buf += data
            head, sep, body = buf.partition(b"\r\n\r\n")
            lengths = [int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")]
            if sep and lengths and len(body) >= lengths[0]:
                break
        if not head.startswith(b"HTTP/1.1 200"):
            sys.exit(f"the proxy on {port} answered {head[:40]!r}")
    for s in socks:
        s.close()


SENDS = {"sendto", "sendmsg", "write", "writev"}
RECEIVES = {"recvfrom", "recvmsg", "read", "readv"}
IGNORED = {"epoll_wait", "futex", "sched_yield", "restart_syscall", "clock_nanosleep", "nanosleep"}


def syscalls_per_request(port, proc, d, seconds=3):
    """System calls of the proxy (all its processes and threads) per request during a wrk run:
    sends, receives, and the rest but waiting (epoll, futexes, sleeps)."""
    out = os.path.join(d, f"strace-{port}.txt")
    pids = descendants(proc.pid)
    tracer = subprocess.Popen(["strace", "-c", "-f", "-o", out] + [a for p in pids for a in ("-p", str(p))],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1)
    script = os.path.join(d, "post.lua")
    run = subprocess.run(["wrk", "-t1", f"-c{CONNECTIONS}", f"-d{seconds}s", "-s", script,
                          f"http://127.0.0.1:{port}"], capture_output=True, text=True).stdout
    total = int(re.search(r"(\d+) requests in", run).group(1))
    tracer.send_signal(signal.SIGINT)
    tracer.wait(timeout=30)
    counts = {}
    for line in open(out):
        f = line.split()
        if len(f) >= 5 and f[-1] not in ("total", "syscall") and f[3].isdigit():
            counts[f[-1]] = int(f[3])
    sends = sum(n for c, n in counts.items() if c in SENDS)
    receives = sum(n for c, n in counts.items() if c in RECEIVES)
    other = sum(n for c, n in counts.items() if c not in SENDS | RECEIVES | IGNORED)
    return sends / total, receives / total, other / total


def instructions(cmd, port, n, d, name):
    """Instructions callgrind counts for the whole life of `cmd` serving n sequential requests:
    (on the busiest thread, the one serving the requests; on all threads). Background work
    (timers, health checks) runs in proportion to the run's length under valgrind, not to the
    requests: the serving thread's count leaves it out."""
    out = os.path.join(d, f"{name}-{n}.callgrind")
    proc = subprocess.Popen(["valgrind", "--tool=callgrind", "--separate-threads=yes", f"--callgrind-out-file={out}"]
                            + cmd, cwd=d, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            preexec_fn=raise_fd_limit)
    wait_port(port, proc, f"{name} under valgrind")
    time.sleep(1)
    sequential_requests(port, n)
    # Shadow copies finish after their primaries: let them.
    time.sleep(2)
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=120)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    counts = []
    for f in os.listdir(d):
        if f.startswith(os.path.basename(out)):
            totals = [line for line in open(os.path.join(d, f)) if line.startswith(("summary:", "totals:"))]
            if totals:
                counts.append(int(totals[-1].split()[1]))
            os.remove(os.path.join(d, f))
    return max(counts), sum(counts)


def per_request(cmd, port, d, name):
    """Instructions per request (serving thread, all threads), from two runs whose difference
    leaves start-up and shutdown out."""
    few = instructions(cmd, port, COUNTED[0], d, name)
    many = instructions(cmd, port, COUNTED[1], d, name)
    return tuple((m - f) / (COUNTED[1] - COUNTED[0]) for f, m in zip(few, many))


def main():
    raise_fd_limit()
    d = tempfile.mkdtemp(prefix="switchyard-bench-")
    procs = []
    try:
        up = free_port()
        upstream_block = f"""server {{ listen 127.0.0.1:{up} backlog=4096;
    location / {{ default_type application/json; return 200 '{BODY}'; }} }}"""
        procs.append(start(["nginx", "-c", nginx_conf(d, "upstream", upstream_block), "-g", "daemon off;"], up, "nginx upstream"))

        bare = free_port()
        procs.append(start([f"{TARGET}/release/examples/bare_pingora", f"127.0.0.1:{bare}", f"127.0.0.1:{up}",
                            str(THREADS)], bare, "bare pingora"))

        def switchyard(name, rules):
            port = free_port()
            conf = switchyard_conf(d, name, rules, port, up, threads=THREADS)
            procs.append(start([f"{TARGET}/release/switchyard", "run", "--config", conf], port, name, cwd=d))
            return port

        sy = switchyard("switchyard", RULES)
        sy_shadow = switchyard("switchyard-shadow", 'version = "bench-shadow"\nscheduler_share = 25\n'
                               '[[overrides]]\nnamespace = "guest"\naction = "a-*"\nshare = 25\nshadow = { sample = 10 }\n')
        split = free_port()
        split_block = f"""upstream legacy {{ server 127.0.0.1:{up}; keepalive 64; }}
  upstream scheduler {{ server 127.0.0.1:{up}; keepalive 64; }}
  split_clients "${{uri}}" $pool {{ 25% scheduler; * legacy; }}
  server {{ listen 127.0.0.1:{split} backlog=4096;
    location / {{ proxy_pass http://$pool; proxy_http_version 1.1; proxy_set_header Connection ""; }} }}"""
        procs.append(start(["nginx", "-c", nginx_conf(d, "split", split_block, THREADS), "-g", "daemon off;"], split, "nginx proxy"))

        rows = [("straight to the upstream (the limit)", up, procs[0]),
                ("nginx split_clients + keepalive", split, procs[4]),
                ("bare pingora (same version)", bare, procs[1]),
                ("switchyard", sy, procs[2]),
                ("switchyard with 10 % shadowing", sy_shadow, procs[3])]
        if ROUNDS > 0:
            results = {name: [] for name, _, _ in rows}
            for r in range(ROUNDS):
                # A row's run is cut in slices, taken in turn with the other rows' (see SLICES).
                sums = {name: [0.0] * 5 for name, _, _ in rows}  # seconds, requests, errors, user and kernel ticks
                latency = {name: [] for name, _, _ in rows}
                for _ in range(SLICES):
                    for name, port, proc in rows:
                        before = cpu_ticks(proc.pid)
                        seconds, total, errors, p50, p99 = wrk(port, d, SECONDS / SLICES)
                        after = cpu_ticks(proc.pid)
                        for i, v in enumerate((seconds, total, errors, after[0] - before[0], after[1] - before[1])):
                            sums[name][i] += v
                        latency[name].append((p50, p99))
                for name, _, _ in rows:
                    seconds, total, errors, user, kernel = sums[name]
                    user, kernel = (t / TICK * 1e6 / max(total, 1) for t in (user, kernel))
                    p50, p99 = (statistics.median(x[i] for x in latency[name]) for i in (0, 1))
                    results[name].append((total / seconds, p50, p99, user + kernel, errors, user, kernel))
                    print(f"  round {r + 1}: {name}: {total / seconds:,.0f} req/s", file=sys.stderr)

            med = {name: [statistics.median(x[i] for x in runs) for i in range(7)] for name, runs in results.items()}
            base = med["switchyard"][0]
            print(f"\nwrk -t1 -c{CONNECTIONS}, {SECONDS} s per row per round in {SLICES} slices taken in turn, "
                  f"POST over 300 actions, {THREADS} worker thread(s) per proxy, medians of {ROUNDS} rounds\n")
            print(f"| | req/s | p50 | p99 | CPU µs/req | of it in the kernel | non-2xx | ratio to switchyard |")
            print(f"|---|---|---|---|---|---|---|---|")
            for name, _, _ in rows:
                rps, p50, p99, cpu, errors, _, kernel = med[name]
                print(f"| {name} | {rps:,.0f} | {p50:.2f} ms | {p99:.2f} ms | {cpu:.1f} | {kernel:.1f} | {errors:.0f} | {rps / base:.2f}× |")
            # The machine's speed drifts between rounds (a round of every row can come out 40 % slower
            # than the next); within a round the rows share the same stretch of time, slice by
            # slice, so each round's own ratio is the steadier figure, and the median of those is
            # what the README quotes.
            plain, pingora = results["switchyard"], results["bare pingora (same version)"]
            shadowing = results["switchyard with 10 % shadowing"]
            speed = [s[0] / b[0] for s, b in zip(plain, pingora)]
            print(f"\nswitchyard against bare pingora, each round's ratio: "
                  f"{', '.join(f'{x:.2f}×' for x in speed)}; median {statistics.median(speed):.2f}×")
            # The kernel's share (the sockets' sends and receives) is much the same work in every
            # proxy; the user-space part is what a proxy's own code decides.
            user = [b[5] / s[5] for s, b in zip(plain, pingora)]
            print(f"CPU in user space per request, bare pingora's over switchyard's, each round: "
                  f"{', '.join(f'{x:.2f}×' for x in user)}; median {statistics.median(user):.2f}×")
            copies = [(m[3] - s[3]) / SHADOWED / s[3] for s, m in zip(plain, shadowing)]
            primary = med["switchyard"][3]
            copy = (med["switchyard with 10 % shadowing"][3] - primary) / SHADOWED
            print(f"one shadow copy: {copy:.1f} µs of proxy CPU, {copy / primary:.2f}× a primary ({primary:.1f} µs)"
                  f" (CPU per request with {SHADOWED:.0%} mirrored minus without, divided by {SHADOWED});"
                  f" each round's ratio: {', '.join(f'{x:.2f}×' for x in copies)}; median {statistics.median(copies):.2f}×")

        print(f"\nresident memory with {IDLE_CLIENTS:,} keep-alive client connections")
        print("| | RSS before | idle connections | after one request each |")
        print("|---|---|---|---|")
        for name, port, proc in [("bare pingora", bare, procs[1]), ("switchyard", sy, procs[2])]:
            before = rss_mb(proc.pid)
            socks = hold_clients(port, IDLE_CLIENTS, False)
            idle = rss_mb(proc.pid)
            for s in socks:
                s.close()
            time.sleep(1)
            socks = hold_clients(port, IDLE_CLIENTS, True)
            used = rss_mb(proc.pid)
            for s in socks:
                s.close()
            print(f"| {name} | {before:.0f} MB | {idle:.0f} MB | {used:.0f} MB |")

        if shutil.which("strace"):
            print(f"\nsystem calls per proxied POST (strace -c, wrk -c{CONNECTIONS} for 3 s)")
            print("| | sends | receives | other calls |")
            print("|---|---|---|---|")
            for name, port, proc in [("nginx split_clients", split, procs[4]),
                                     ("bare pingora", bare, procs[1]), ("switchyard", sy, procs[2])]:
                sends, receives, other = syscalls_per_request(port, proc, d)
                print(f"| {name} | {sends:.2f} | {receives:.2f} | {other:.2f} |")

        if shutil.which("valgrind"):
            counted = []
            bare_cg = free_port()
            counted.append(("bare pingora", [f"{TARGET}/release/examples/bare_pingora", f"127.0.0.1:{bare_cg}",
                                             f"127.0.0.1:{up}", "1"], bare_cg))
            for name, rules in [("switchyard", RULES), ("switchyard mirroring every invocation", MIRROR_ALL)]:
                port = free_port()
                conf = switchyard_conf(d, name.replace(" ", "-"), rules, port, up, stop_at_once=True)
                counted.append((name, [f"{TARGET}/release/switchyard", "run", "--config", conf], port))
            counts = {name: per_request(cmd, port, d, name.replace(" ", "-")) for name, cmd, port in counted}
            base = counts["switchyard"][0]
            print(f"\ninstructions per request in user space (callgrind, {COUNTED[1]} minus {COUNTED[0]} sequential requests)")
            print("| | on the serving thread | ratio to switchyard | on all threads |")
            print("|---|---|---|---|")
            for name, (serving, every) in counts.items():
                print(f"| {name} | {serving:,.0f} | {serving / base:.2f}× | {every:,.0f} |")
            copy = counts["switchyard mirroring every invocation"][1] - counts["switchyard"][1]
            print(f"\none shadow copy: {copy:,.0f} instructions on all threads, {copy / counts['switchyard'][1]:.2f}× a primary"
                  f" ({counts['switchyard'][1]:,.0f})")
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
