#!/usr/bin/env python3
"""What a MagicBell call costs the responder, for two builds side by side
(bench/upstream-bench builds them): a CGI token request (no call), a CGI
admin call, and serve's admin calls on one kept FastCGI connection. The fake
MagicBell serves HTTPS with a test CA placed in a copy of the system's
hashed certificate directory (SSL_CERT_DIR), as MagicBell's CA sits in the
system store in production. Rounds alternate between the builds.

    upstream_bench.py NAME=BINARY NAME=BINARY [CALLS_PER_ROUND] [ROUNDS]
"""
import json, os, resource, shutil, socket, statistics, struct, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def fake_magicbell(scratch):
    cert, key = os.path.join(scratch, "cert.pem"), os.path.join(scratch, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=bench",
                    "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", key, "-out", cert],
                   check=True, capture_output=True)
    # The system's store as a hashed directory, with the test CA in it.
    store = os.path.join(scratch, "certs")
    os.mkdir(store)
    for name in os.listdir("/etc/ssl/certs"):
        if name.endswith(".pem"):
            os.symlink(os.path.realpath(os.path.join("/etc/ssl/certs", name)), os.path.join(store, name))
    shutil.copy(cert, os.path.join(store, "bench-ca.pem"))
    subprocess.run(["openssl", "rehash", store], check=True, capture_output=True)
    port_file = os.path.join(scratch, "port")
    token = "pt_bench_" + os.urandom(8).hex()
    fake = subprocess.Popen([sys.executable, os.path.join(ROOT, "scripts/fake-magicbell"), "--token", token,
                             "--port-file", port_file, "--tls-cert", cert, "--tls-key", key],
                            stderr=subprocess.DEVNULL)
    for _ in range(200):
        if os.path.exists(port_file):
            break
        time.sleep(0.05)
    port = int(open(port_file).read())
    return fake, port, token, store


def cgi_run(binary, environment):
    """One CGI request: (wall seconds, CPU seconds of the process)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    result = subprocess.run([binary], env=environment, capture_output=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if not result.stdout.startswith(b"Status: 200"):
        raise SystemExit(f"{binary}: {result.stdout[:200]!r} {result.stderr[-300:]!r}")
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def fastcgi_request_bytes(request_id, params):
    """One whole FastCGI request (fcgi-spec.html §3.3–§3.4, §5): BEGIN_REQUEST
    (RESPONDER, FCGI_KEEP_CONN), the params, empty PARAMS, empty STDIN. The
    benches' one encoder."""
    def record(kind, content):
        return struct.pack(">BBHHBx", 1, kind, request_id, len(content), 0) + content
    def length(n):
        return bytes([n]) if n < 128 else struct.pack(">I", n | 0x80000000)
    body = b"".join(length(len(k)) + length(len(v)) + k + v
                    for k, v in ((name.encode(), value.encode()) for name, value in params.items()))
    return record(1, struct.pack(">HB5x", 1, 1)) + record(4, body) + record(4, b"") + record(5, b"")


def fastcgi_request(sock, request_id, params):
    """One FastCGI request on a kept connection; returns its STDOUT."""
    sock.sendall(fastcgi_request_bytes(request_id, params))
    out = b""
    while True:
        header = b""
        while len(header) < 8:
            chunk = sock.recv(8 - len(header))
            if not chunk:
                raise SystemExit("the responder closed the connection")
            header += chunk
        _, kind, _, length, padding = struct.unpack(">BBHHB", header[:7])
        content = b""
        while len(content) < length + padding:
            content += sock.recv(length + padding - len(content))
        if kind == 6:
            out += content[:length]
        elif kind == 3:
            return out


def serve_rounds(binary, environment, calls, scratch):
    path = os.path.join(scratch, f"serve-{os.getpid()}-{time.monotonic_ns()}.sock")
    server = subprocess.Popen([binary, "serve", "--socket", path, "--workers", "4"], env=environment,
                              stderr=subprocess.DEVNULL)
    for _ in range(200):
        if os.path.exists(path):
            break
        time.sleep(0.02)
    sock = socket.socket(socket.AF_UNIX)
    sock.connect(path)
    params = {"MAGICBELL_ROUTE": "admin", "REQUEST_METHOD": "GET", "DOCUMENT_URI": "/magicbell-admin/jwt/project",
              "REQUEST_URI": "/magicbell-admin/jwt/project", "MAGICBELL_USER_EXTERNAL_ID": "bench"}
    fastcgi_request(sock, 1, params)  # the first call: libcurl loaded, the connection to MagicBell made
    def cpu():
        # Every thread's time on a CPU, in nanoseconds (schedstat): the
        # clock ticks of /proc/PID/stat (10 ms) are coarser than a call.
        total = 0
        for task in os.listdir(f"/proc/{server.pid}/task"):
            try:
                total += int(open(f"/proc/{server.pid}/task/{task}/schedstat").read().split()[0])
            except OSError:
                pass
        return total / 1e9
    cpu_before, latencies = cpu(), []
    for _ in range(calls):
        start = time.perf_counter()
        answer = fastcgi_request(sock, 1, params)
        latencies.append(time.perf_counter() - start)
        if b"Status: 200" not in answer[:64]:
            raise SystemExit(f"serve: {answer[:200]!r}")
    cpu_used = cpu() - cpu_before
    sock.close()
    server.terminate()
    server.wait()
    return latencies, cpu_used


def main():
    builds = [arg.split("=", 1) for arg in sys.argv[1:3]]
    calls = int(sys.argv[3]) if len(sys.argv) > 3 else 100
    rounds = int(sys.argv[4]) if len(sys.argv) > 4 else 3
    scratch = tempfile.mkdtemp(prefix="upstream-bench.")
    fake, port, token, store = fake_magicbell(scratch)
    secret = os.urandom(32).hex()
    base = {"PATH": "/usr/bin:/bin", "MAGICBELL_API_KEY": "pk_bench", "MAGICBELL_SECRET_KEY": secret,
            "MAGICBELL_PROJECT_TOKEN": token, "MAGICBELL_API_URL": f"https://127.0.0.1:{port}/v2",
            "SSL_CERT_DIR": store, "MAGICBELL_UPSTREAM_TIMEOUT": "10"}
    cgi = dict(base, GATEWAY_INTERFACE="CGI/1.1", SERVER_PROTOCOL="HTTP/1.1", REQUEST_METHOD="GET")
    token_env = dict(cgi, MAGICBELL_ROUTE="token", SCRIPT_NAME="/magicbell-token", REQUEST_URI="/magicbell-token",
                     MAGICBELL_USER_EXTERNAL_ID="bench")
    admin_env = dict(cgi, MAGICBELL_ROUTE="admin", SCRIPT_NAME="/magicbell-admin/jwt/project",
                     REQUEST_URI="/magicbell-admin/jwt/project", MAGICBELL_USER_EXTERNAL_ID="bench")
    results = {name: {"token": [], "admin": [], "serve": [], "serve_cpu": 0.0, "serve_calls": 0} for name, _ in builds}
    try:
        for _ in range(rounds):
            for name, binary in builds:
                for _ in range(calls):
                    results[name]["token"].append(cgi_run(binary, token_env))
                for _ in range(calls):
                    results[name]["admin"].append(cgi_run(binary, admin_env))
                latencies, cpu_used = serve_rounds(binary, base, calls, scratch)
                results[name]["serve"] += latencies
                results[name]["serve_cpu"] += cpu_used
                results[name]["serve_calls"] += calls
    finally:
        fake.kill()
        shutil.rmtree(scratch, ignore_errors=True)
    ms = lambda seconds: f"{seconds * 1000:.2f}"
    print(f"{rounds} rounds x {calls} calls per build and kind, alternating; MagicBell: the fake over HTTPS on loopback")
    print(f"{'build':<10} {'CGI token wall/CPU ms':>24} {'CGI admin wall/CPU ms':>24} {'serve admin median/p99 ms':>27} {'serve CPU ms/call':>18}")
    for name, _ in builds:
        r = results[name]
        token_wall = statistics.median(w for w, _ in r["token"]); token_cpu = sum(c for _, c in r["token"]) / len(r["token"])
        admin_wall = statistics.median(w for w, _ in r["admin"]); admin_cpu = sum(c for _, c in r["admin"]) / len(r["admin"])
        serve = sorted(r["serve"])
        p99 = serve[min(len(serve) - 1, int(len(serve) * 0.99))]
        print(f"{name:<10} {ms(token_wall) + ' / ' + ms(token_cpu):>24} {ms(admin_wall) + ' / ' + ms(admin_cpu):>24} "
              f"{ms(statistics.median(serve)) + ' / ' + ms(p99):>27} {ms(r['serve_cpu'] / r['serve_calls']):>18}")


if __name__ == "__main__":  # bench/nginx_bench.py imports its fake MagicBell
    main()
