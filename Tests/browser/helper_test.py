#!/usr/bin/env python3
"""The browser helper (examples/browser) in real headless Chromium, driven
by Playwright, against the demo: the example page, merged concurrent
calls, retries, a 401, the refresh ahead of expiry, and a logout while a
token request is in flight. Debian's chromium is launched through
executable_path: Playwright downloads no browser. Requests are counted from
Chromium's own network events; answers are held or replaced with
page.route, at the request or the response.

  helper_test.py --url http://127.0.0.1:PORT --user demo:demo --ttl 60 \
      --logout-users alice:alice bob:bob --artifacts DIR
"""
import argparse, base64, json, os, re, sys, time

from playwright.sync_api import sync_playwright

CHROMIUM = os.environ.get("MAGICBELL_CHROMIUM", "/usr/bin/chromium")
# The endpoint, with or without a query; not /example/magicbell-token.js.
TOKEN_ROUTE = re.compile(r"^[^?]*/magicbell-token(\?.*)?$")


def basic(user):
    """An HTTP Basic Authorization header value for "name:password"."""
    return "Basic " + base64.b64encode(user.encode()).decode()


def token_user(token):
    """The user_external_id a JWT is for (its payload, base64url; unverified)."""
    try:
        payload = token.split(".")[1]
        return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))).get("user_external_id")
    except Exception:
        return None


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--user", required=True)
    parser.add_argument("--ttl", type=int, required=True)
    parser.add_argument("--logout-users", nargs=2, required=True, metavar="USER:PASSWORD",
                        help="who logs out (with a token request in flight) and who logs in after")
    parser.add_argument("--artifacts", required=True)
    args = parser.parse_args()
    os.makedirs(args.artifacts, exist_ok=True)
    results = []

    def check(name, condition, detail=""):
        results.append((name, bool(condition)))
        print(f"{'ok  ' if condition else 'FAIL'} {name}" + (f": {detail}" if detail and not condition else ""),
              flush=True)

    with sync_playwright() as playwright:
        launch = ["--no-sandbox"] if os.geteuid() == 0 else []  # Chromium refuses to run as root with its sandbox
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=launch)
        page = browser.new_context(viewport={"width": 1000, "height": 900}).new_page()
        sent, statuses, errors = [], [], []
        page.on("request", lambda request: sent.append(request.url)
                if request.url.split("?")[0].endswith("/magicbell-token") else None)
        page.on("response", lambda response: statuses.append(response.status)
                if response.url.split("?")[0].endswith("/magicbell-token") else None)
        page.on("pageerror", lambda error: errors.append(str(error)))

        def mark():
            return len(sent)

        def token_requests(since):
            return sent[since:]

        def wait_for(expression, timeout):
            try:
                page.wait_for_function(expression, timeout=timeout * 1000, polling=200)
                return True
            except Exception:
                return False

        # Logged in: the browser sends the user's HTTP Basic login with every request.
        def log_in(who):
            page.set_extra_http_headers({"Authorization": basic(who)} if who else {})

        log_in(args.user)
        user = args.user.split(":")[0]

        # 1. The example page gets a token for the logged-in user.
        start = mark()
        loaded_at = time.time()
        page.goto(args.url + "/example/")
        shown = wait_for(f"document.getElementById('user').textContent === {json.dumps(user)}", 15)
        check("the example page shows a token for the logged-in user", shown, page.inner_text("body"))
        check("it decoded the claims (api_key, expiry)",
              page.evaluate("document.getElementById('api-key').textContent.startsWith('pk_') "
                            "&& document.getElementById('expires').textContent.endsWith('Z')"))
        check("loading the page made one token request (getToken and onToken merged)",
              len(token_requests(start)) == 1, len(token_requests(start)))

        # 2. Concurrent calls make one request; later calls are served from the cache.
        start = mark()
        distinct = page.evaluate("""async () => {
            const m = await import('/example/magicbell-token.js');
            const source = m.createTokenSource();
            const tokens = await Promise.all(Array.from({length: 8}, () => source.getToken()));
            const again = await source.getToken();
            return [new Set(tokens).size, again === tokens[0]]; }""")
        page.wait_for_timeout(300)
        check("8 concurrent getToken() calls got one token", distinct == [1, True], distinct)
        check("... from one request, and the next call from the cache", len(token_requests(start)) == 1,
              len(token_requests(start)))

        # 2b. MAGICBELL_USER_KEY=on adds user_key to the answer: onToken passes it on
        # as info.userKey (the demo runs with it off: the answer is rewritten here).
        def with_user_key(route):
            answer = route.fetch().json()
            answer["user_key"] = "bystN/KEGakZfrgHkBDU3loF9lH2lIEwxTKSkpWwfrs="
            route.fulfill(status=200, content_type="application/json", body=json.dumps(answer))
        page.route(TOKEN_ROUTE, with_user_key)
        keyed = page.evaluate("""async () => {
            const m = await import('/example/magicbell-token.js');
            const source = m.createTokenSource();
            return await new Promise((resolve) => {
                const stop = source.onToken((token, info) => { stop(); resolve(info.userKey ?? null); }); }); }""")
        page.unroute(TOKEN_ROUTE)
        check("onToken passes the answer's user_key on as info.userKey",
              keyed == "bystN/KEGakZfrgHkBDU3loF9lH2lIEwxTKSkpWwfrs=", keyed)
        unkeyed = page.evaluate("""async () => {
            const m = await import('/example/magicbell-token.js');
            const source = m.createTokenSource();
            return await new Promise((resolve) => {
                const stop = source.onToken((token, info) => { stop(); resolve(info.userKey === undefined); }); }); }""")
        check("... and leaves it undefined when the answer has none", unkeyed is True, unkeyed)

        # 3. 5xx is retried with back-off: the first two requests get a 503.
        failures_left = {"n": 2}

        def unavailable_twice(route):
            if failures_left["n"]:
                failures_left["n"] -= 1
                route.fulfill(status=503, content_type="application/json",
                              body='{"error":{"code":"unavailable","message":"try later"}}')
            else:
                route.continue_()
        page.route(TOKEN_ROUTE, unavailable_twice)
        start = mark()
        retried = page.evaluate("""async () => {
            const m = await import('/example/magicbell-token.js');
            const source = m.createTokenSource({baseDelayMs: 200});
            return (await source.getToken()).split('.').length; }""")
        page.unroute(TOKEN_ROUTE)
        check("two 503s are retried and the third request gets the token", retried == 3 and failures_left["n"] == 0, retried)
        check("... in 3 requests", len(token_requests(start)) == 3, len(token_requests(start)))

        # 4. Not logged in: nginx's 401 is reported as such, and not retried.
        # (Over HTTP Basic a browser would ask for a login; this one has none
        # to offer, as a user who cancels the prompt.)
        log_in(None)
        # nginx's own 401, handed to the page as it came (a browser would first
        # ask for a login here; this one has none to offer, as a user who
        # cancels the prompt, and a prompt would stall headless Chromium).
        page.route(TOKEN_ROUTE, lambda route: route.fulfill(response=route.fetch()))
        start, answered = mark(), len(statuses)
        refused = page.evaluate("""async () => {
            const m = await import('/example/magicbell-token.js');
            const source = m.createTokenSource({baseDelayMs: 50});
            try { await source.getToken(); return 'resolved'; }
            catch (e) { return [e.name, e.status, e instanceof m.NotLoggedInError, e.retryable]; } }""")
        page.wait_for_timeout(500)
        page.unroute(TOKEN_ROUTE)
        check("a 401 rejects with NotLoggedInError", refused == ["NotLoggedInError", 401, True, False], refused)
        check("... from nginx's own 401", statuses[answered:] == [401], statuses[answered:])
        check("... after one request, without retries", len(token_requests(start)) == 1, len(token_requests(start)))
        log_in(args.user)

        # 5. The page refreshes ahead of expiry: lead = min(60 s, 10% of the TTL).
        lead = min(60, args.ttl / 10)
        start = mark()
        first = page.evaluate("[document.getElementById('token').textContent, document.getElementById('expires').textContent]")
        refreshed = wait_for("document.getElementById('received').textContent === '2'", args.ttl + 15)
        elapsed = time.time() - loaded_at
        check("the page got a second token by itself", refreshed)
        check(f"... before the first expired (after {elapsed:.1f} s of {args.ttl} s; lead {lead:.1f} s)",
              args.ttl - lead - 2 <= elapsed < args.ttl, f"{elapsed:.1f} s")
        check("... in one request", len(token_requests(start)) == 1, len(token_requests(start)))
        now = page.evaluate("[document.getElementById('token').textContent, document.getElementById('expires').textContent]")
        check("... and shows the new token and its later expiry", now[0] != first[0] and now[1] > first[1], [first, now])
        path = os.path.join(args.artifacts, "browser-example.png")
        page.screenshot(path=path)
        check(f"screenshot saved ({path})", os.path.getsize(path) > 1000)

        # 6. Logout while a token request is in flight: alice logs out and bob
        # logs in before alice's answer arrives. The route makes alice's request
        # (nginx and the responder answer it for her login) and holds the answer
        # until bob is logged in; then it is handed to the page. The page uses
        # the default source (the example page's own listener included), as a
        # site's logout handler would.
        alice, bob = args.logout_users
        alice_name, bob_name = alice.split(":")[0], bob.split(":")[0]
        held = []

        def hold(route):
            held.append((route, route.fetch()))
        page.route(TOKEN_ROUTE, hold)

        def wait_held(count, timeout):
            deadline = time.time() + timeout
            while len(held) < count and time.time() < deadline:
                page.wait_for_timeout(50)
            return len(held) >= count

        page.evaluate("""async () => { const m = await import('/example/magicbell-token.js'); m.clearToken(); }""")  # demo logs out
        log_in(alice)
        start = mark()
        page.evaluate("""async () => {
            const m = await import('/example/magicbell-token.js');
            const L = window.logout = {phase: 'alice', seen: [], bobSeen: [], results: {}};
            L.settle = (name, promise) => promise.then(
                (token) => { L.results[name] = {token}; },
                (e) => { L.results[name] = {error: e.name, code: e.code, retryable: e.retryable}; });
            m.onToken((token) => L.seen.push([L.phase, token]));  // starts alice's request
            L.settle('alice', m.getToken()); }""")
        held_user = token_user(held[0][1].json().get("token", "")) if wait_held(1, 10) else None
        check(f"alice's answer, held in flight, is a token for {alice_name}", held_user == alice_name, held_user)

        page.evaluate("""async () => {
            const m = await import('/example/magicbell-token.js');
            m.clearToken();  // alice logs out
            window.logout.phase = 'bob'; }""")
        log_in(bob)
        page.evaluate("""async () => {
            const m = await import('/example/magicbell-token.js');
            const L = window.logout;
            L.settle('bob', m.getToken());
            m.onToken((token) => L.bobSeen.push(token)); }""")
        wait_held(2, 5)  # bob's fresh request, held too: alice's answer comes first
        if held:
            route, answer = held[0]
            route.fulfill(response=answer)
            page.wait_for_timeout(500)  # the page reads it
        if len(held) > 1:
            route, answer = held[1]
            route.fulfill(response=answer)
        wait_for("window.logout.results.alice && window.logout.results.bob", 10)
        page.wait_for_timeout(300)
        page.unroute(TOKEN_ROUTE)
        after = page.evaluate("""() => { const L = window.logout;
            return {results: L.results, seen: L.seen, bobSeen: L.bobSeen,
                    shown: document.getElementById('user').textContent}; }""")
        alice_result = after["results"].get("alice", {})
        check("alice's getToken(), awaiting when she logged out, rejected with code 'cleared', not retryable",
              alice_result == {"error": "MagicBellTokenError", "code": "cleared", "retryable": False},
              {**alice_result, "token": token_user(alice_result["token"])} if "token" in alice_result else alice_result)
        bob_result = after["results"].get("bob", {})
        check(f"bob's getToken() after the logout got a token for {bob_name}",
              token_user(bob_result.get("token", "")) == bob_name,
              {"token for": token_user(bob_result["token"])} if "token" in bob_result else bob_result)
        after_logout = [token for phase, token in after["seen"] if phase == "bob"] + after["bobSeen"]
        check(f"every token a listener got after the logout is for {bob_name} (both listeners got one)",
              after_logout and all(token_user(t) == bob_name for t in after_logout)
              and after["bobSeen"] and any(phase == "bob" for phase, _ in after["seen"]),
              {"registered before the logout": [[phase, token_user(t)] for phase, t in after["seen"]],
               "registered after": [token_user(t) for t in after["bobSeen"]]})
        check(f"no listener ever got alice's token; the example page shows {bob_name}",
              not any(token_user(t) == alice_name for t in after_logout + [t for _, t in after["seen"]])
              and after["shown"] == bob_name, after["shown"])
        check("2 requests: alice's (answer dropped) and a fresh one for bob", len(token_requests(start)) == 2,
              len(token_requests(start)))
        check("no uncaught exception in the page", not errors, errors[:1])
        browser.close()

    failed = [name for name, ok in results if not ok]
    print(f"browser test: {len(results) - len(failed)} passed, {len(failed)} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
