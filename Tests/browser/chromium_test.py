#!/usr/bin/env python3
"""The browser helper in real headless Chromium, against a running demo
(real nginx, the real responder): scripts/browser-test starts one.

Chromium is driven over the DevTools protocol on a pipe
(--remote-debugging-pipe: fd 3 in, fd 4 out, NUL-separated JSON), so only
the standard library is needed. Requests are counted from Chromium's own
network events, not from anything the page reports.

  chromium_test.py --url http://127.0.0.1:PORT --user demo:demo --ttl 60 \
      --logout-users alice:alice bob:bob --artifacts DIR
"""
import argparse
import base64
import fcntl
import json
import os
import queue
import shutil
import subprocess
import sys
import tempfile
import threading
import time


class DevTools:
    """A DevTools protocol client over Chromium's debugging pipe."""

    def __init__(self, chromium, profile):
        to_chrome_r, self.to_chrome = os.pipe()
        self.from_chrome, from_chrome_w = os.pipe()

        def child_fds():
            # Out of the way first: either pipe end may itself be fd 3 or 4.
            read_end = fcntl.fcntl(to_chrome_r, fcntl.F_DUPFD, 10)
            write_end = fcntl.fcntl(from_chrome_w, fcntl.F_DUPFD, 10)
            os.dup2(read_end, 3)
            os.dup2(write_end, 4)

        args = [chromium, "--headless=new", "--remote-debugging-pipe", f"--user-data-dir={profile}",
                "--no-first-run", "--no-default-browser-check", "--disable-gpu", "--disable-extensions",
                "--disable-background-networking", "--window-size=1000,900", "about:blank"]
        if os.geteuid() == 0:
            args.insert(1, "--no-sandbox")  # Chromium refuses to run as root with its sandbox
        self.process = subprocess.Popen(args, preexec_fn=child_fds, pass_fds=(3, 4),
                                        stdout=subprocess.DEVNULL, stderr=open(os.path.join(profile, "chromium.log"), "w"))
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self.next_id = 0
        self.replies = {}
        self.events = []
        self.lock = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        buffer = b""
        while True:
            chunk = os.read(self.from_chrome, 1 << 16)
            if not chunk:
                with self.lock:
                    self.closed = True
                    self.lock.notify_all()
                return
            buffer += chunk
            while b"\0" in buffer:
                raw, buffer = buffer.split(b"\0", 1)
                message = json.loads(raw)
                with self.lock:
                    if "id" in message:
                        self.replies[message["id"]] = message
                    else:
                        self.events.append(message)
                    self.lock.notify_all()

    def call(self, method, params=None, session=None, timeout=30):
        with self.lock:
            self.next_id += 1
            ident = self.next_id
        message = {"id": ident, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self.to_chrome, json.dumps(message).encode() + b"\0")
        deadline = time.time() + timeout
        with self.lock:
            while ident not in self.replies:
                if getattr(self, "closed", False):
                    raise RuntimeError("Chromium exited")
                if not self.lock.wait(max(0, deadline - time.time())):
                    raise TimeoutError(method)
            reply = self.replies.pop(ident)
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error']}")
        return reply["result"]

    def wait_event(self, method, since=0, timeout=30):
        return self.wait_event_any((method,), since=since, timeout=timeout)

    def wait_event_any(self, methods, since=0, timeout=30):
        deadline = time.time() + timeout
        with self.lock:
            while True:
                for event in self.events[since:]:
                    if event["method"] in methods:
                        return event
                remaining = deadline - time.time()
                if remaining <= 0:
                    raise TimeoutError(methods)
                self.lock.wait(remaining)

    def close(self):
        try:
            self.call("Browser.close", timeout=5)
        except Exception:
            pass
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()


class Page:
    def __init__(self, tools):
        self.tools = tools
        target = tools.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        self.session = tools.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Network", "Runtime"):
            self.call(f"{domain}.enable")

    def call(self, method, params=None, timeout=30):
        return self.tools.call(method, params, session=self.session, timeout=timeout)

    def evaluate(self, expression, timeout=30):
        """The value of an async expression in the page; a thrown error fails the test."""
        result = self.call("Runtime.evaluate", {"expression": f"(async () => {{ {expression}\n}})()",
                                                "awaitPromise": True, "returnByValue": True}, timeout=timeout)
        if "exceptionDetails" in result:
            raise AssertionError(f"page threw: {result['exceptionDetails']}")
        return result["result"].get("value")

    def mark(self):
        return len(self.tools.events)

    def token_requests(self, since):
        """Requests for /magicbell-token that Chromium sent since `since`."""
        return [e for e in self.tools.events[since:]
                if e.get("sessionId") == self.session and e["method"] == "Network.requestWillBeSent"
                and e["params"]["request"]["url"].split("?")[0].endswith("/magicbell-token")]

    def wait_for(self, expression, timeout):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.evaluate(f"return !!({expression});"):
                return True
            time.sleep(0.2)
        return False


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
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if not chromium:
        sys.exit("chromium is not installed (apt-get install chromium)")
    os.makedirs(args.artifacts, exist_ok=True)

    results = []

    def check(name, condition, detail=""):
        results.append((name, bool(condition)))
        print(f"{'ok  ' if condition else 'FAIL'} {name}" + (f": {detail}" if detail and not condition else ""),
              flush=True)

    profile = tempfile.mkdtemp(prefix="mbf-chromium.")
    tools = DevTools(chromium, profile)
    try:
        page = Page(tools)
        # Logged in: the browser sends the user's HTTP Basic login with every request.
        def log_in(who):
            page.call("Network.setExtraHTTPHeaders", {"headers": {"Authorization": basic(who)}})

        log_in(args.user)
        user = args.user.split(":")[0]

        # 1. The example page gets a token for the logged-in user.
        start = page.mark()
        loaded_at = time.time()
        page.call("Page.navigate", {"url": args.url + "/example/"})
        tools.wait_event("Page.loadEventFired", since=start)
        shown = page.wait_for(f"document.getElementById('user').textContent === {json.dumps(user)}", 15)
        check("the example page shows a token for the logged-in user", shown,
              page.evaluate("return document.body.innerText;"))
        check("it decoded the claims (api_key, expiry)",
              page.evaluate("return document.getElementById('api-key').textContent.startsWith('pk_') "
                            "&& document.getElementById('expires').textContent.endsWith('Z');"))
        check("loading the page made one token request (getToken and onToken merged)",
              len(page.token_requests(start)) == 1, len(page.token_requests(start)))
        page.call("Page.captureScreenshot")  # warm-up; the kept screenshot is taken after the refresh

        # 2. Concurrent calls make one request; later calls are served from the cache.
        start = page.mark()
        distinct = page.evaluate("""
            const m = await import('/example/magicbell-token.js');
            const source = m.createTokenSource();
            const tokens = await Promise.all(Array.from({length: 8}, () => source.getToken()));
            const again = await source.getToken();
            window.concurrentSource = source;
            return [new Set(tokens).size, again === tokens[0]];""")
        time.sleep(0.3)
        check("8 concurrent getToken() calls got one token", distinct == [1, True], distinct)
        check("... from one request, and the next call from the cache", len(page.token_requests(start)) == 1,
              len(page.token_requests(start)))

        # 3. Network failures and 5xx are retried with back-off; Chromium's
        # Fetch domain answers the first two requests with 503.
        page.call("Fetch.enable", {"patterns": [{"urlPattern": "*/magicbell-token*"}]})
        start = page.mark()
        outcome = {}

        def answer_paused():
            served = 0
            seen = start
            while served < 3:
                event = tools.wait_event("Fetch.requestPaused", since=seen, timeout=20)
                seen = tools.events.index(event) + 1
                request_id = event["params"]["requestId"]
                if served < 2:
                    body = base64.b64encode(b'{"error":{"code":"unavailable","message":"try later"}}').decode()
                    page.call("Fetch.fulfillRequest", {"requestId": request_id, "responseCode": 503, "body": body,
                                                       "responseHeaders": [{"name": "Content-Type",
                                                                            "value": "application/json"}]})
                    outcome.setdefault("times", []).append(time.time())
                else:
                    page.call("Fetch.continueRequest", {"requestId": request_id})
                    outcome.setdefault("times", []).append(time.time())
                served += 1

        responder_thread = threading.Thread(target=answer_paused, daemon=True)
        responder_thread.start()
        retried = page.evaluate("""
            const m = await import('/example/magicbell-token.js');
            const source = m.createTokenSource({baseDelayMs: 200});
            const token = await source.getToken();
            return token.split('.').length;""")
        responder_thread.join(5)
        page.call("Fetch.disable")
        check("two 503s are retried and the third request gets the token", retried == 3, retried)
        check("... in 3 requests", len(page.token_requests(start)) == 3, len(page.token_requests(start)))

        # 4. Not logged in: a 401 is reported as such, and not retried. Over
        # HTTP Basic the browser would ask for a login; the user cancels it
        # (with a cookie login, the 401 would arrive directly).
        page.call("Network.setExtraHTTPHeaders", {"headers": {}})
        page.call("Fetch.enable", {"patterns": [{"urlPattern": "*/magicbell-token*"}], "handleAuthRequests": True})
        start = page.mark()
        stop_answering = threading.Event()

        def cancel_logins():
            seen = start
            while not stop_answering.is_set():
                try:
                    event = tools.wait_event_any(("Fetch.requestPaused", "Fetch.authRequired"), since=seen, timeout=0.5)
                except TimeoutError:
                    continue
                seen = tools.events.index(event) + 1
                request_id = event["params"]["requestId"]
                if event["method"] == "Fetch.authRequired":
                    outcome["login_asked"] = outcome.get("login_asked", 0) + 1
                    page.call("Fetch.continueWithAuth", {"requestId": request_id,
                                                         "authChallengeResponse": {"response": "CancelAuth"}})
                else:
                    page.call("Fetch.continueRequest", {"requestId": request_id})

        canceller = threading.Thread(target=cancel_logins, daemon=True)
        canceller.start()
        refused = page.evaluate("""
            const m = await import('/example/magicbell-token.js');
            const source = m.createTokenSource({baseDelayMs: 50});
            try { await source.getToken(); return 'resolved'; }
            catch (e) { return [e.name, e.status, e instanceof m.NotLoggedInError, e.retryable]; }""")
        time.sleep(0.5)
        stop_answering.set()
        canceller.join(5)
        page.call("Fetch.disable")
        check("a 401 rejects with NotLoggedInError", refused == ["NotLoggedInError", 401, True, False], refused)
        check("... once the user declined to log in", outcome.get("login_asked") == 1, outcome.get("login_asked"))
        check("... after one request, without retries", len(page.token_requests(start)) == 1,
              len(page.token_requests(start)))
        log_in(args.user)

        # 5. The page refreshes ahead of expiry: lead = min(60 s, 10% of the TTL).
        lead = min(60, args.ttl / 10)
        start = page.mark()
        shown_first = page.evaluate("return [document.getElementById('token').textContent, "
                                    "document.getElementById('expires').textContent];")
        refreshed = page.wait_for("document.getElementById('received').textContent === '2'",
                                  timeout=args.ttl + 15)
        refreshed_at = time.time()
        check("the page got a second token by itself", refreshed)
        elapsed = refreshed_at - loaded_at
        check(f"... before the first expired (after {elapsed:.1f} s of {args.ttl} s; lead {lead:.1f} s)",
              args.ttl - lead - 2 <= elapsed < args.ttl, f"{elapsed:.1f} s")
        check("... in one request", len(page.token_requests(start)) == 1, len(page.token_requests(start)))
        shown_now = page.evaluate("return [document.getElementById('token').textContent, "
                                  "document.getElementById('expires').textContent];")
        check("... and shows the new token and its later expiry",
              shown_now[0] != shown_first[0] and shown_now[1] > shown_first[1], [shown_first, shown_now])

        shot = page.call("Page.captureScreenshot", {"format": "png"})
        path = os.path.join(args.artifacts, "browser-example.png")
        with open(path, "wb") as out:
            out.write(base64.b64decode(shot["data"]))
        check(f"screenshot saved ({path})", os.path.getsize(path) > 1000)

        # 6. Logout while a token request is in flight: alice logs out and bob
        # logs in before alice's answer arrives. Chromium's Fetch domain holds
        # alice's answer (already made by nginx and the responder for her
        # login) at the response stage until bob is logged in, then hands it
        # to the page. The page uses the default source (the example page's
        # own listener included), as a site's logout handler would.
        alice, bob = args.logout_users
        alice_name, bob_name = alice.split(":")[0], bob.split(":")[0]
        page.call("Fetch.enable", {"patterns": [{"urlPattern": "*/magicbell-token*", "requestStage": "Response"}]})
        seen_pauses = [page.mark()]

        def next_token_answer(timeout):
            """The next answer to a token request that Chromium holds; other requests pass."""
            deadline = time.time() + timeout
            while True:
                try:
                    event = tools.wait_event("Fetch.requestPaused", since=seen_pauses[0],
                                             timeout=max(0, deadline - time.time()))
                except TimeoutError:
                    return None
                seen_pauses[0] = tools.events.index(event) + 1
                if event["params"]["request"]["url"].split("?")[0].endswith("/magicbell-token"):
                    return event["params"]
                page.call("Fetch.continueRequest", {"requestId": event["params"]["requestId"]})

        page.evaluate("""
            const m = await import('/example/magicbell-token.js');
            m.clearToken();  // the demo user logs out""")
        log_in(alice)
        start = page.mark()
        page.evaluate("""
            const m = await import('/example/magicbell-token.js');
            const L = window.logout = {phase: 'alice', seen: [], bobSeen: [], results: {}};
            L.settle = (name, promise) => promise.then(
                (token) => { L.results[name] = {token}; },
                (e) => { L.results[name] = {error: e.name, code: e.code, retryable: e.retryable}; });
            m.onToken((token) => L.seen.push([L.phase, token]));  // starts alice's request
            L.settle('alice', m.getToken());                       // and awaits it""")
        held = next_token_answer(10)
        held_user = None
        if held:
            body = page.call("Fetch.getResponseBody", {"requestId": held["requestId"]})
            text = base64.b64decode(body["body"]).decode() if body.get("base64Encoded") else body["body"]
            held_user = token_user(json.loads(text).get("token", ""))
        check(f"alice's answer, held in flight, is a token for {alice_name}", held_user == alice_name, held_user)

        page.evaluate("""
            const m = await import('/example/magicbell-token.js');
            m.clearToken();  // alice logs out
            window.logout.phase = 'bob';""")
        log_in(bob)
        page.evaluate("""
            const m = await import('/example/magicbell-token.js');
            const L = window.logout;
            L.settle('bob', m.getToken());
            m.onToken((token) => L.bobSeen.push(token));""")
        bobs = next_token_answer(5)  # a fresh request for bob, held too: alice's answer comes first
        if held:
            page.call("Fetch.continueRequest", {"requestId": held["requestId"]})
            deadline = time.time() + 10
            while time.time() < deadline and not any(  # the page has read alice's answer
                    e["method"] in ("Network.loadingFinished", "Network.loadingFailed")
                    and e["params"].get("requestId") == held.get("networkId") for e in tools.events[start:]):
                time.sleep(0.05)
            time.sleep(0.3)
        if bobs:
            page.call("Fetch.continueRequest", {"requestId": bobs["requestId"]})
        page.wait_for("window.logout.results.alice && window.logout.results.bob", timeout=10)
        time.sleep(0.3)
        page.call("Fetch.disable")
        after = page.evaluate("""
            const L = window.logout;
            return {results: L.results, seen: L.seen, bobSeen: L.bobSeen,
                    shown: document.getElementById('user').textContent};""")
        alice_result = after["results"].get("alice", {})
        check("alice's getToken(), awaiting when she logged out, rejected with code 'cleared', not retryable",
              alice_result == {"error": "MagicBellTokenError", "code": "cleared", "retryable": False},
              {**alice_result, "token": token_user(alice_result["token"])} if "token" in alice_result
              else alice_result)
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
        check("2 requests: alice's (answer dropped) and a fresh one for bob", len(page.token_requests(start)) == 2,
              len(page.token_requests(start)))
        errors = [e for e in tools.events if e["method"] == "Runtime.exceptionThrown"]
        check("no uncaught exception in the page", not errors, errors[:1])
    finally:
        tools.close()
        shutil.rmtree(profile, ignore_errors=True)

    failed = [name for name, ok in results if not ok]
    print(f"browser test: {len(results) - len(failed)} passed, {len(failed)} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
