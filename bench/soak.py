#!/usr/bin/env python3
"""Drives bench/soak: nginx (1 worker) with the project's token and admin
snippets, the release responder, and scripts/fake-magicbell, on loopback."""
import argparse
import base64
import datetime
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

from nginx_bench import free_port, prepare, rss_kib, start_responder, stop_all, wait_for, wrk

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--binary", required=True)
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--connections", type=int, default=256, help="for the soak")
    parser.add_argument("--p99-connections", type=int, default=32, help="for the unloaded/loaded p99 runs")
    parser.add_argument("--p99-seconds", type=int, default=20)
    parser.add_argument("--admin-clients", type=int, default=8)
    parser.add_argument("--slow", type=float, default=0.5, help="seconds the fake MagicBell takes per call")
    args = parser.parse_args()

    work = tempfile.mkdtemp(prefix="magicbell-soak.")
    project_token = "pt_soak_" + secrets.token_hex(16)
    env = dict(os.environ, MAGICBELL_API_KEY="pk_soak", MAGICBELL_SECRET_KEY=secrets.token_hex(32),
               MAGICBELL_PROJECT_TOKEN=project_token)
    for key in ("MAGICBELL_SECRET_KEY_FILE", "MAGICBELL_PROJECT_TOKEN_FILE", "MAGICBELL_MINT"):
        env.pop(key, None)
    procs = []
    try:
        conf = prepare(work, ("magicbell-token.conf", "magicbell-fastcgi.conf", "magicbell-admin.conf"),
                       'fastcgi_param MAGICBELL_USER_EXTERNAL_ID "soak-user";\n')
        hashed = subprocess.run(["openssl", "passwd", "-apr1", "admin"], capture_output=True, text=True, check=True).stdout.strip()
        with open(os.path.join(conf, "magicbell-admin.htpasswd"), "w") as f:
            f.write(f"admin:{hashed}\n")

        port_file = os.path.join(work, "run", "fake.port")
        fake = subprocess.Popen([sys.executable, os.path.join(ROOT, "scripts", "fake-magicbell"), "--token", project_token,
                                 "--port-file", port_file], stderr=subprocess.DEVNULL)
        procs.append(fake)
        wait_for(lambda: os.path.exists(port_file) and open(port_file).read().strip(), "the fake MagicBell")
        fake_port = int(open(port_file).read())
        env["MAGICBELL_API_URL"] = f"http://127.0.0.1:{fake_port}/v2"

        responder, socket_path = start_responder(args.binary, work, env)
        procs.append(responder)

        port = free_port()
        user = "user root;" if os.geteuid() == 0 else ""
        with open(os.path.join(conf, "nginx.conf"), "w") as f:
            f.write(f"""{user}
worker_processes 1;
daemon off;
pid {work}/run/nginx.pid;
error_log {work}/logs/error.log;
worker_rlimit_nofile 8192;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {work}/tmp/body; fastcgi_temp_path {work}/tmp/fastcgi; proxy_temp_path {work}/tmp/proxy;
    uwsgi_temp_path {work}/tmp/uwsgi; scgi_temp_path {work}/tmp/scgi;
    upstream magicbell_fcgi {{ server unix:{socket_path}; keepalive 32; }}
    server {{
        listen 127.0.0.1:{port} backlog=4096;
        include snippets/magicbell-token.conf;
        include snippets/magicbell-admin.conf;
    }}
}}
""")
        nginx = subprocess.Popen(["nginx", "-p", work, "-c", "conf/nginx.conf", "-e", f"{work}/logs/error.log"])
        procs.append(nginx)
        wait_for(lambda: socket.create_connection(("127.0.0.1", port), timeout=1).close() is None, "nginx")
        base = f"http://127.0.0.1:{port}"
        urllib.request.urlopen(base + "/magicbell-token").read()

        # 1. p99 unloaded, then with the admin route hammered against a slow MagicBell.
        unloaded = wrk(base + "/magicbell-token", args.p99_seconds, args.p99_connections)
        urllib.request.urlopen(urllib.request.Request(
            f"http://127.0.0.1:{fake_port}/_fake/misbehave",
            data=f'{{"mode":"slow","count":-1,"seconds":{args.slow}}}'.encode())).read()
        # Admin clients that keep the gate full: each retries at once after an
        # answer, and 0.1 s after a 503 (a client that ignored Retry-After
        # entirely would measure nginx's apr1 password hashing instead).
        stop = threading.Event()
        statuses = {}
        lock = threading.Lock()

        def admin_client():
            request = urllib.request.Request(base + "/magicbell-admin/jwt/project",
                                             headers={"Authorization": "Basic " + base64.b64encode(b"admin:admin").decode()})
            while not stop.is_set():
                try:
                    status = urllib.request.urlopen(request, timeout=30).status
                except urllib.error.HTTPError as error:
                    status = error.code
                except OSError as error:
                    status = type(error).__name__
                with lock:
                    statuses[status] = statuses.get(status, 0) + 1
                if status == 503:
                    time.sleep(0.1)
        clients = [threading.Thread(target=admin_client) for _ in range(args.admin_clients)]
        for client in clients:
            client.start()
        time.sleep(2)
        loaded = wrk(base + "/magicbell-token", args.p99_seconds, args.p99_connections)
        stop.set()
        for client in clients:
            client.join()
        urllib.request.urlopen(urllib.request.Request(f"http://127.0.0.1:{fake_port}/_fake/reset", data=b"{}")).read()

        # 2. The soak, sampling RSS every 5 s.
        samples = [rss_kib(responder.pid)]
        done = threading.Event()

        def sample():
            while not done.wait(5):
                samples.append(rss_kib(responder.pid))
        sampler = threading.Thread(target=sample)
        sampler.start()
        seconds = int(args.minutes * 60)
        soak = wrk(base + "/magicbell-token", seconds, args.connections)
        done.set()
        sampler.join()
        samples.append(rss_kib(responder.pid))
        alive = responder.poll() is None

        print(f"\nsoak {datetime.date.today()}: nginx 1 worker, responder default workers, release build")
        print(f"token p99 unloaded ({args.p99_connections} connections, {args.p99_seconds} s): {unloaded['p99']:.2f} ms; "
              f"while {args.admin_clients} admin clients keep the admin route busy against a MagicBell taking "
              f"{args.slow} s per call (admin answers: {dict(sorted(statuses.items(), key=str))}): {loaded['p99']:.2f} ms "
              f"= {loaded['p99'] / unloaded['p99']:.2f}x (target <= 2); errors {unloaded['errors']} / {loaded['errors']}")
        print(f"soak: {args.minutes:g} min at {args.connections} connections: {soak['requests']:,} requests, "
              f"{soak['rps']:,.0f} req/s, p99 {soak['p99']:.2f} ms, non-2xx + socket errors: {soak['errors']}")
        print(f"responder RSS: start {samples[0] / 1024:.1f} MB, peak {max(samples) / 1024:.1f} MB, "
              f"end {samples[-1] / 1024:.1f} MB ({len(samples)} samples); still running: {alive}")
        ok = soak["errors"] == 0 and alive and loaded["p99"] <= 2 * unloaded["p99"]
        sys.exit(0 if ok else 1)
    except Exception:
        for log in ("error.log", "responder.log"):
            path = os.path.join(work, "logs", log)
            if os.path.exists(path):
                print(f"--- {log} (last lines)", file=sys.stderr)
                print("".join(open(path, errors="replace").readlines()[-15:]), file=sys.stderr)
        raise
    finally:
        stop_all(procs, work)


if __name__ == "__main__":
    main()
