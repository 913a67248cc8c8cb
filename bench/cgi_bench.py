"""Mean wall time per CGI request of each program, interleaved rounds; see bench/cgi-bench."""
import json, os, resource, secrets, statistics, subprocess, sys, time

import jwt

static, shared, reference, per_round, rounds = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
secret = secrets.token_hex(32)
env = {
    "GATEWAY_INTERFACE": "CGI/1.1", "SERVER_PROTOCOL": "HTTP/1.1", "REQUEST_METHOD": "GET",
    "SCRIPT_NAME": "/magicbell-token", "REQUEST_URI": "/magicbell-token", "MAGICBELL_ROUTE": "token",
    "MAGICBELL_USER_EXTERNAL_ID": "usr_l70vln", "MAGICBELL_USER_EMAIL": "person@example.com",
    "MAGICBELL_API_KEY": "pk_bench", "MAGICBELL_SECRET_KEY": secret, "MAGICBELL_TOKEN_TTL": "3600",
}
OURS, SHARED = "magicbell-fcgi, static stdlib", "magicbell-fcgi, shared stdlib"
programs = {OURS: static, SHARED: shared, "C reference": reference, "/bin/true": "/bin/true"}

# Both programs answer with a token PyJWT accepts, for the same claims.
for name in (OURS, SHARED, "C reference"):
    out = subprocess.run([programs[name]], env=env, capture_output=True, check=True).stdout.decode()
    head, _, body = out.partition("\r\n\r\n")
    assert head.startswith("Status: 200"), (name, out)
    claims = jwt.decode(json.loads(body)["token"], secret, algorithms=["HS256"])
    assert claims["user_external_id"] == "usr_l70vln" and claims["api_key"] == "pk_bench", (name, claims)

times = {name: [] for name in programs}
for _ in range(rounds):
    for name, path in programs.items():
        start = time.perf_counter()
        for _ in range(per_round):
            subprocess.run([path], env=env, stdout=subprocess.DEVNULL, check=True)
        times[name].append((time.perf_counter() - start) / per_round * 1000)

children = resource.getrusage(resource.RUSAGE_CHILDREN)
print(f"cgi-bench {time.strftime('%Y-%m-%d')}: {rounds} interleaved rounds of {per_round} requests, "
      f"mean wall time per request (median of rounds)")
for name, values in times.items():
    print(f"  {name:28s} {statistics.median(values):6.2f} ms   (rounds: {', '.join(f'{v:.2f}' for v in values)})")
ours, floor = statistics.median(times[OURS]), statistics.median(times["C reference"])
print(f"  magicbell-fcgi (static) / C reference: {ours / floor:.1f}x; target: 5 ms")
