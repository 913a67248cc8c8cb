#!/usr/bin/env python3
"""Drives bench/nginx-bench: one nginx (1 worker) under its own prefix on
loopback with three locations, loaded in interleaved rounds with wrk."""
import argparse
import datetime
import json
import os
import re
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
API_KEY = "pk_JJUxO8amaaK21G08w9q0_218239574"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(check, what, timeout=10):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if check():
                return
        except OSError:
            pass
        time.sleep(0.05)
    sys.exit(f"bench: {what} did not start")


def prepare(work, snippets, auth):
    """The layout both benches use: conf/ with the project's snippets (copied
    unmodified) and `auth` as the token auth snippet, plus logs/, tmp/, run/."""
    conf = os.path.join(work, "conf")
    os.makedirs(os.path.join(conf, "snippets"))
    for sub in ("logs", "tmp", "run"):
        os.makedirs(os.path.join(work, sub))
    for name in snippets:
        shutil.copy(os.path.join(ROOT, "nginx", name), os.path.join(conf, "snippets", name))
    with open(os.path.join(conf, "snippets", "magicbell-token-auth.conf"), "w") as f:
        f.write(auth)
    return conf


def start_responder(binary, work, env, extra=(), name="fcgi"):
    """`serve` on work/run/NAME.sock, logging to work/logs/NAME.log; returns (process, socket path)."""
    socket_path = os.path.join(work, "run", f"{name}.sock")
    process = subprocess.Popen([binary, "serve", "--socket", socket_path, "--log-level", "warning", *extra], env=env,
                               stderr=open(os.path.join(work, "logs", f"{name}.log"), "w"))
    wait_for(lambda: os.path.exists(socket_path), "the responder")
    return process, socket_path


def stop_all(procs, work):
    """Stops what a bench started, newest first, and removes its folder."""
    for proc in reversed(procs):
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
    shutil.rmtree(work, ignore_errors=True)


def cpu_seconds(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def context_switches(pid):
    """Voluntary and involuntary switches of all the process's threads: a
    thread that sleeps and is woken per request shows here."""
    total = 0
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            for line in open(f"/proc/{pid}/task/{task}/status"):
                if line.startswith(("voluntary_ctxt_switches:", "nonvoluntary_ctxt_switches:")):
                    total += int(line.split()[1])
        except FileNotFoundError:
            pass
    return total


def mirror_snippets(conf, name, upstream):
    """The project's snippets, copied to conf/NAME/ with the location at
    /NAME/magicbell-token and the upstream renamed to UPSTREAM."""
    os.makedirs(os.path.join(conf, name))
    for snippet in ("magicbell-token.conf", "magicbell-fastcgi.conf", "magicbell-token-auth.conf"):
        text = open(os.path.join(conf, "snippets", snippet)).read()
        text = (text.replace("magicbell_fcgi", upstream).replace("snippets/", f"{name}/")
                .replace("location = /magicbell-token", f"location = /{name}/magicbell-token"))
        open(os.path.join(conf, name, snippet), "w").write(text)


def rss_kib(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def ms(text):
    value, unit = re.match(r"([\d.]+)(us|ms|s|m|h)", text).groups()
    return float(value) * {"us": 0.001, "ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000}[unit]


def wrk(url, duration, connections):
    out = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--latency", url],
                         capture_output=True, text=True, check=True).stdout
    if not re.search(r"^\s+99%\s+\S+", out, re.M):
        sys.exit(f"bench: wrk gave no latency distribution:\n{out}")
    result = {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        # Anchored: a "+/- Stdev" column such as "90.50%" must not be read as the 50th percentile.
        "p50": ms(re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1)),
        "p99": ms(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1)),
        "requests": int(re.search(r"(\d+) requests in", out).group(1)),
        "errors": 0,
    }
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    result["errors"] = (int(non2xx.group(1)) if non2xx else 0) + (sum(map(int, socket_errors.groups())) if socket_errors else 0)
    return result


def hanging_admin(args, base, work, fake_port, store, medians, paths):
    """Token p99 while N admin calls hang on MagicBell, for each build: N
    FastCGI admin requests sent straight to its socket, held while wrk
    loads its token route through nginx, in interleaved rounds."""
    import ssl
    from upstream_bench import fastcgi_request_bytes
    context = ssl.create_default_context(capath=store)
    def control(path, body=None):
        request = urllib.request.Request(f"https://127.0.0.1:{fake_port}/_fake/{path}", data=body,
                                         headers={"Content-Type": "application/json"} if body else {})
        return json.loads(urllib.request.urlopen(request, context=context).read())
    control("misbehave", json.dumps({"mode": "hang", "count": -1}).encode())
    admin = {"MAGICBELL_ROUTE": "admin", "REQUEST_METHOD": "GET", "DOCUMENT_URI": "/magicbell-admin/jwt/project",
             "REQUEST_URI": "/magicbell-admin/jwt/project", "MAGICBELL_USER_EXTERNAL_ID": "bench"}
    request = fastcgi_request_bytes(1, admin)
    held = []
    for name in paths:
        sock_path = os.path.join(work, "run", "fcgi.sock" if name == "responder" else f"{name}.sock")
        for _ in range(args.hanging_admin):
            s = socket.socket(socket.AF_UNIX)
            s.connect(sock_path)
            s.sendall(request)
            held.append(s)
    wanted = args.hanging_admin * len(paths)
    wait_for(lambda: len(control("requests")) >= wanted, f"{wanted} hanging admin calls", timeout=20)
    loaded = {name: [] for name in paths}
    for round_ in range(args.rounds):
        for name, path in paths.items():
            result = wrk(base + path, args.duration, args.connections)
            loaded[name].append(result)
            print(f"bench: hanging round {round_ + 1} {name:9} {result['rps']:10.0f} req/s  p99 {result['p99']:.2f} ms  "
                  f"errors {result['errors']}", file=sys.stderr)
    print(f"\ntoken p99 with {args.hanging_admin} admin calls hanging on MagicBell (medians of {args.rounds} rounds) "
          f"against the rounds above:")
    for name in paths:
        p99 = statistics.median(r["p99"] for r in loaded[name])
        rps = statistics.median(r["rps"] for r in loaded[name])
        print(f"  {name}: p99 {p99:.2f} ms against {medians[name]['p99']:.2f} ms idle ({p99 / medians[name]['p99']:.2f}x); "
              f"{rps:,.0f} req/s against {medians[name]['rps']:,.0f}")
    for s in held:
        s.close()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--binary", required=True)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--workers", type=int, default=0, help="responder pool threads (default: its own default)")
    parser.add_argument("--event-loops", type=int, default=0, help="responder event loops (default: its own default)")
    parser.add_argument("--keepalive", type=int, default=32,
                        help="nginx's idle FastCGI connections to the responder, as in nginx/magicbell-upstream.conf "
                             "(default 32; 0 turns keep-alive off)")
    parser.add_argument("--baseline", help="another magicbell-fcgi (e.g. the build before a change), served through the "
                        "same snippets at /baseline/magicbell-token and loaded in the same interleaved rounds")
    parser.add_argument("--hanging-admin", type=int, default=0, metavar="N",
                        help="then load the token route again with N admin calls hanging on a fake MagicBell "
                             "(this build and the baseline), and compare its p99 with the rounds above")
    parser.add_argument("--reference", help="bench/fcgi-reference.c built: a C libfcgi responder, served through the same "
                        "snippets at /c/magicbell-token, one thread per kept connection")
    args = parser.parse_args()

    work = tempfile.mkdtemp(prefix="magicbell-bench.")
    secret = secrets.token_hex(32)
    env = dict(os.environ, MAGICBELL_API_KEY=API_KEY, MAGICBELL_SECRET_KEY=secret)
    for key in ("MAGICBELL_SECRET_KEY_FILE", "MAGICBELL_PROJECT_TOKEN", "MAGICBELL_PROJECT_TOKEN_FILE", "MAGICBELL_MINT"):
        env.pop(key, None)
    procs = []
    fake = None
    try:
        if args.hanging_admin:
            from upstream_bench import fake_magicbell
            fake, fake_port, project_token, store = fake_magicbell(work)
            env.update(MAGICBELL_PROJECT_TOKEN=project_token, MAGICBELL_API_URL=f"https://127.0.0.1:{fake_port}/v2",
                       SSL_CERT_DIR=store, MAGICBELL_UPSTREAM_TIMEOUT="120")
        # The identity a site's auth would set; fixed here so only minting is measured.
        auth = ('fastcgi_param MAGICBELL_USER_EXTERNAL_ID "usr_l70vln";\n'
                'fastcgi_param MAGICBELL_USER_EMAIL "person@example.com";\n')
        if not args.keepalive:
            auth += "fastcgi_keep_conn off;\n"
        conf = prepare(work, ("magicbell-token.conf", "magicbell-fastcgi.conf"), auth)
        shutil.copy(os.path.join(ROOT, "bench", "njs-mint.js"), os.path.join(conf, "njs-mint.js"))

        responder, socket_path = start_responder(args.binary, work, env,
                                                 (["--workers", str(args.workers)] if args.workers else [])
                                                 + (["--event-loops", str(args.event_loops)] if args.event_loops else []))
        procs.append(responder)
        baseline_location = ""
        if args.baseline:
            baseline, baseline_socket = start_responder(args.baseline, work, env,
                                                        ["--workers", str(args.workers)] if args.workers else [], name="baseline")
            procs.append(baseline)
            # The same snippets, pointed at the baseline's upstream and path.
            mirror_snippets(conf, "baseline", "magicbell_baseline")
            baseline_location = (f"upstream magicbell_baseline {{ server unix:{baseline_socket}; "
                                 f"{f'keepalive {args.keepalive};' if args.keepalive else ''} }}")
        reference_location = ""
        if args.reference:
            reference_socket = os.path.join(work, "run", "reference.sock")
            reference = subprocess.Popen([args.reference, reference_socket, str(max(args.keepalive, 8))], env=env,
                                         stderr=open(os.path.join(work, "logs", "reference.log"), "w"))
            procs.append(reference)
            wait_for(lambda: os.path.exists(reference_socket), "the C reference")
            mirror_snippets(conf, "c", "magicbell_reference")
            reference_location = (f"upstream magicbell_reference {{ server unix:{reference_socket}; "
                                  f"{f'keepalive {args.keepalive};' if args.keepalive else ''} }}")

        port = free_port()
        # A token-sized body for the ceiling: the responder's answer is about 330 bytes.
        body = json.dumps({"token": "x" * 280, "expires_at": 1795425255, "expires_in": 3600})
        user = "user root;" if os.geteuid() == 0 else ""
        with open(os.path.join(conf, "nginx.conf"), "w") as f:
            f.write(f"""{user}
load_module /usr/lib/nginx/modules/ngx_http_js_module.so;
worker_processes 1;
daemon off;
pid {work}/run/nginx.pid;
error_log {work}/logs/error.log;
env MAGICBELL_SECRET_KEY;
env MAGICBELL_API_KEY;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {work}/tmp/body; fastcgi_temp_path {work}/tmp/fastcgi; proxy_temp_path {work}/tmp/proxy;
    uwsgi_temp_path {work}/tmp/uwsgi; scgi_temp_path {work}/tmp/scgi;
    js_import mint from njs-mint.js;
    upstream magicbell_fcgi {{ server unix:{socket_path}; {f"keepalive {args.keepalive};" if args.keepalive else ""} }}
    {baseline_location}
    {reference_location}
    server {{
        listen 127.0.0.1:{port};
        location = /static {{ default_type application/json; add_header Cache-Control no-store; return 200 '{body}'; }}
        location = /njs/magicbell-token {{ js_content mint.mint; }}
        include snippets/magicbell-token.conf;
        {"include baseline/magicbell-token.conf;" if args.baseline else ""}
        {"include c/magicbell-token.conf;" if args.reference else ""}
    }}
}}
""")
        nginx = subprocess.Popen(["nginx", "-p", work, "-c", "conf/nginx.conf", "-e", f"{work}/logs/error.log"], env=env)
        procs.append(nginx)
        wait_for(lambda: socket.create_connection(("127.0.0.1", port), timeout=1).close() is None, "nginx")

        base = f"http://127.0.0.1:{port}"
        import jwt
        sizes = {}
        for name, path in (("njs", "/njs/magicbell-token"), ("responder", "/magicbell-token")):
            answer = urllib.request.urlopen(base + path).read()
            claims = jwt.decode(json.loads(answer)["token"], secret, algorithms=["HS256"])
            assert claims["user_external_id"] == "usr_l70vln" and claims["api_key"] == API_KEY, claims
            sizes[name] = len(answer)
        sizes["static"] = len(urllib.request.urlopen(base + "/static").read())
        print(f"bench: tokens from njs and the responder verified with PyJWT; bodies {sizes} bytes", file=sys.stderr)

        rss_before = rss_kib(responder.pid)
        targets = [("static", "/static"), ("njs", "/njs/magicbell-token"), ("responder", "/magicbell-token")]
        servers = {"responder": responder}
        if args.baseline:
            targets.append(("baseline", "/baseline/magicbell-token"))
            servers["baseline"] = baseline
            answer = urllib.request.urlopen(base + "/baseline/magicbell-token").read()
            assert jwt.decode(json.loads(answer)["token"], secret, algorithms=["HS256"])["user_external_id"] == "usr_l70vln"
        if args.reference:
            targets.insert(2, ("reference", "/c/magicbell-token"))
            servers["reference"] = reference
            answer = urllib.request.urlopen(base + "/c/magicbell-token").read()
            assert jwt.decode(json.loads(answer)["token"], secret, algorithms=["HS256"])["user_external_id"] == "usr_l70vln"
        results = {name: [] for name, _ in targets}
        cpus = {name: [] for name in servers}
        switches = {name: [] for name in servers}
        cpu = cpus["responder"]
        for round_ in range(args.rounds):
            for name, path in targets:
                before = cpu_seconds(servers[name].pid) if name in servers else 0
                switched = context_switches(servers[name].pid) if name in servers else 0
                result = wrk(base + path, args.duration, args.connections)
                if name in servers:
                    cpus[name].append((cpu_seconds(servers[name].pid) - before) * 1e6 / max(1, result["requests"]))
                    switches[name].append((context_switches(servers[name].pid) - switched) / max(1, result["requests"]))
                results[name].append(result)
                print(f"bench: round {round_ + 1} {name:9} {result['rps']:10.0f} req/s  p50 {result['p50']:.2f} ms  "
                      f"p99 {result['p99']:.2f} ms  errors {result['errors']}", file=sys.stderr)
        rss_after = rss_kib(responder.pid)

        med = {name: {k: statistics.median(r[k] for r in runs) for k in ("rps", "p50", "p99")} for name, runs in results.items()}
        errors = {name: sum(r["errors"] for r in runs) for name, runs in results.items()}
        print(f"\nnginx-bench {datetime.date.today()}: nginx 1 worker, wrk -t1 -c{args.connections} -d{args.duration}s, "
              f"{args.rounds} interleaved rounds, medians; responder event loops: {args.event_loops or 'default'}, "
              f"workers: {args.workers or 'default'}, "
              f"FastCGI keep-alive: {args.keepalive or 'off'}")
        print("| what | req/s | p50 | p99 | errors | CPU per request | context switches per request |")
        print("|---|---:|---:|---:|---:|---:|---:|")
        labels = {"static": "(a) nginx `return 200`, same-size body", "njs": "(b) njs minting in nginx",
                  "reference": "(e) C libfcgi responder, same snippets", "responder": "(c) magicbell-fcgi via the snippet",
                  "baseline": "(d) the --baseline build, same snippets"}
        for name, _ in targets:
            m = med[name]
            own = (f"{statistics.median(cpus[name]):.1f} µs | {statistics.median(switches[name]):.2f}"
                   if name in servers else "| ")
            print(f"| {labels[name]} | {m['rps']:,.0f} | {m['p50']:.2f} ms | {m['p99']:.2f} ms | {errors[name]} | {own} |")
        c, a, b = med["responder"], med["static"], med["njs"]
        print(f"\n(c)/(a) req/s {c['rps'] / a['rps']:.2f}   (c)/(b) req/s {c['rps'] / b['rps']:.2f}   "
              f"(c)/(b) p99 {c['p99'] / b['p99']:.2f}")
        print(f"responder CPU per request: {statistics.median(cpu):.1f} µs (median of rounds); "
              f"RSS before {rss_before / 1024:.1f} MB, after {rss_after / 1024:.1f} MB")
        if args.hanging_admin:
            hanging_admin(args, base, work, fake_port, store, med,
                          {name: path for name, path in targets if name in ("responder", "baseline")})
        if args.baseline:
            before_cpu, after_cpu = statistics.median(cpus["baseline"]), statistics.median(cpu)
            print(f"baseline CPU per request: {before_cpu:.1f} µs; this build {after_cpu:.1f} µs: "
                  f"{after_cpu - before_cpu:+.1f} µs (rounds: baseline {', '.join(f'{c:.1f}' for c in cpus['baseline'])}; "
                  f"this build {', '.join(f'{c:.1f}' for c in cpu)})")
    finally:
        if fake:
            fake.kill()
        stop_all(procs, work)


if __name__ == "__main__":
    main()
