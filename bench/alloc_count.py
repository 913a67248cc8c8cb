#!/usr/bin/env python3
"""Heap allocations per token request, counted by valgrind: `serve` (a
release binary, stripped: valgrind 3.19 cannot read the toolchain's DWARF 5)
answers N nginx-style token requests on one kept FastCGI connection, for two
values of N; the difference of the totals, divided by the difference of N,
is what one more request allocates. Start-up and the first requests (the
buffers growing to their size) cancel out.

    alloc_count.py BINARY [N1 N2] [--max PER_REQUEST]

Exits 1 when a request allocates more than --max (default: none given, so
it only reports). Start-up and stop are not quite the same from run to run:
a process allocates one block (352 bytes) more or less, whatever its
request count, in about one run in five. So totals within --noise
allocations of each other (default 2) are flat; anything that allocates
even once in 1,000 requests is far above that.
"""
import argparse, os, re, secrets, shutil, socket, subprocess, sys, tempfile, time

from upstream_bench import fastcgi_request  # the benches' one FastCGI encoder

# What nginx sends for /magicbell-token through the project's snippets (29 params).
PARAMS = {
    "QUERY_STRING": "", "REQUEST_METHOD": "GET", "CONTENT_TYPE": "", "CONTENT_LENGTH": "",
    "SCRIPT_NAME": "/magicbell-token", "REQUEST_URI": "/magicbell-token", "DOCUMENT_URI": "/magicbell-token",
    "DOCUMENT_ROOT": "/usr/share/nginx/html", "SERVER_PROTOCOL": "HTTP/1.1", "REQUEST_SCHEME": "http",
    "GATEWAY_INTERFACE": "CGI/1.1", "SERVER_SOFTWARE": "nginx/1.22.1", "REMOTE_ADDR": "127.0.0.1",
    "REMOTE_PORT": "41234", "REMOTE_USER": "alice", "SERVER_ADDR": "127.0.0.1", "SERVER_PORT": "8080",
    "SERVER_NAME": "localhost", "REDIRECT_STATUS": "200", "HTTP_HOST": "127.0.0.1:8080",
    "HTTP_USER_AGENT": "wrk", "HTTP_ACCEPT": "*/*", "REQUEST_ID": "0123456789abcdef0123456789abcdef",
    "MAGICBELL_ROUTE": "token", "MAGICBELL_USER_EXTERNAL_ID": "usr_l70vln", "MAGICBELL_USER_EMAIL": "person@example.com",
    "HTTP_CACHE_CONTROL": "", "HTTP_IF_NONE_MATCH": "", "HTTP_IF_MODIFIED_SINCE": "",
}


def drive(path, count):
    """Sends `count` token requests on one kept connection, each answered before the next."""
    with socket.socket(socket.AF_UNIX) as s:
        s.connect(path)
        for i in range(count):
            answer = fastcgi_request(s, 1, PARAMS)
            if i == 0 and not answer.startswith(b"Status: 200"):
                sys.exit(f"alloc-count: not a token: {answer[:200]!r}")
            # MAGICBELL_USER_KEY=on (passed through): the user key is counted too.
            if i == 0 and (b'"user_key":"' in answer) != (os.environ.get("MAGICBELL_USER_KEY") == "on"):
                sys.exit(f"alloc-count: user_key is not as MAGICBELL_USER_KEY says: {answer[-200:]!r}")


def allocations(binary, count, work):
    sock = os.path.join(work, f"s{count}.sock")
    log = os.path.join(work, f"valgrind-{count}.log")
    env = dict(os.environ, MAGICBELL_API_KEY="pk_alloc_count", MAGICBELL_SECRET_KEY=secrets.token_hex(32))
    for key in ("MAGICBELL_SECRET_KEY_FILE", "MAGICBELL_PROJECT_TOKEN", "MAGICBELL_PROJECT_TOKEN_FILE", "MAGICBELL_MINT"):
        env.pop(key, None)
    server = subprocess.Popen(["valgrind", "--tool=memcheck", "--leak-check=no", f"--log-file={log}", binary, "serve",
                               "--socket", sock, "--log-level", "warning"], env=env)
    for _ in range(600):
        if os.path.exists(sock):
            break
        time.sleep(0.05)
    else:
        sys.exit("alloc-count: the responder did not start under valgrind")
    drive(sock, count)
    server.terminate()
    server.wait(timeout=60)
    found = re.search(r"total heap usage: ([\d,]+) allocs, [\d,]+ frees, ([\d,]+) bytes allocated", open(log).read())
    if not found:
        sys.exit(f"alloc-count: no heap summary in {log}:\n{open(log).read()[-2000:]}")
    return int(found.group(1).replace(",", "")), int(found.group(2).replace(",", ""))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("binary")
    parser.add_argument("counts", nargs="*", type=int, default=[1000, 3000])
    parser.add_argument("--max", type=float, default=None, help="fail above this many allocations per request")
    parser.add_argument("--noise", type=int, default=2,
                        help="a difference of at most this many allocations between the two runs is start-up's, not the requests'")
    args = parser.parse_args()
    low, high = args.counts if len(args.counts) == 2 else (1000, 3000)
    work = tempfile.mkdtemp(prefix="alloc-count.")
    try:
        stripped = os.path.join(work, "magicbell-fcgi")
        subprocess.run(["strip", "-o", stripped, args.binary], check=True)
        (a1, b1), (a2, b2) = allocations(stripped, low, work), allocations(stripped, high, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    flat = abs(a2 - a1) <= args.noise
    per_request = 0.0 if flat else (a2 - a1) / (high - low)
    bytes_per_request = 0.0 if flat else (b2 - b1) / (high - low)
    print(f"alloc-count: {low} requests: {a1:,} allocations ({b1:,} bytes); {high}: {a2:,} ({b2:,} bytes); "
          f"per token request: {per_request:.2f} allocations, {bytes_per_request:,.0f} bytes"
          + (f" (the totals differ by {a2 - a1}, within --noise {args.noise})" if flat and a2 != a1 else ""))
    if args.max is not None and per_request > args.max:
        sys.exit(f"alloc-count: {per_request:.2f} allocations per token request, over {args.max}")


if __name__ == "__main__":
    main()
