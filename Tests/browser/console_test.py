#!/usr/bin/env python3
"""The admin console (GET /magicbell-admin/) in real Chromium, driven by
Playwright, as a person would use it: against the demo (real nginx, the
real responder) and its fake MagicBell. Debian's chromium is launched
through executable_path: Playwright downloads no browser.

  console_test.py --url http://127.0.0.1:PORT --admin admin:admin \
      --fake http://127.0.0.1:FAKE_PORT --artifacts DIR
"""
import argparse, base64, json, os, re, sys, time, urllib.request

from playwright.sync_api import expect, sync_playwright

CHROMIUM = os.environ.get("MAGICBELL_CHROMIUM", "/usr/bin/chromium")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--admin", required=True, help="user:password for the admin location")
    parser.add_argument("--fake", required=True, help="the fake MagicBell's origin, for its control endpoints")
    parser.add_argument("--artifacts", required=True)
    args = parser.parse_args()
    user, password = args.admin.split(":", 1)
    failures = []

    def check(name, condition, detail=""):
        print(("ok   " if condition else "FAIL ") + name + ("" if condition else f": {detail}"), flush=True)
        if not condition:
            failures.append(name)

    def fake(path, body=None):
        request = urllib.request.Request(f"{args.fake}/_fake/{path}", data=None if body is None else json.dumps(body).encode(),
                                         method="GET" if body is None else "POST")
        with urllib.request.urlopen(request, timeout=10) as answer:
            return json.loads(answer.read() or b"null")

    def admin_api(method, path, body=None):
        auth = base64.b64encode(f"{user}:{password}".encode()).decode()
        request = urllib.request.Request(f"{args.url}/magicbell-admin/{path}", method=method,
                                         data=None if body is None else json.dumps(body).encode(),
                                         headers={"Authorization": f"Basic {auth}", "Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as answer:
            return json.loads(answer.read())

    def announced(locator, text, timeout=10_000):
        """Whether the live region comes to say `text` (a string, or a compiled pattern)."""
        try:
            expect(locator).to_have_text(text, timeout=timeout)
            return True
        except AssertionError:
            return False

    fake("reset", {})
    with sync_playwright() as playwright:
        launch = ["--no-sandbox"] if os.geteuid() == 0 else []  # Chromium refuses to run as root with its sandbox
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=launch)
        context = browser.new_context(http_credentials={"username": user, "password": password},
                                      viewport={"width": 1100, "height": 1000})
        page = context.new_page()
        errors = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        # Console errors but failed loads (the favicon's 404, the 503s this test provokes): a CSP
        # violation ("Refused to ...") or a script error is one.
        page.on("console", lambda message: errors.append(message.text)
                if message.type == "error" and not message.text.startswith("Failed to load resource") else None)
        dialogs = []

        def accept(dialog):
            dialogs.append(dialog.message)
            dialog.accept()
        page.on("dialog", accept)

        # The page and its headers.
        response = page.goto(f"{args.url}/magicbell-admin/")
        headers = response.headers
        check("the console loads (200)", response.status == 200, response.status)
        policy = "default-src 'self'; frame-ancestors 'none'; form-action 'none'; base-uri 'none'; object-src 'none'"
        check("Content-Security-Policy: default-src 'self'; frame-ancestors 'none' (and no forms, base or plugins)",
              headers.get("content-security-policy") == policy, headers)
        check("Cache-Control: no-store and X-Content-Type-Options: nosniff",
              headers.get("cache-control") == "no-store" and headers.get("x-content-type-options") == "nosniff", headers)
        projects = page.get_by_role("region", name="Project tokens")
        users = page.get_by_role("region", name="User tokens")
        check("two regions named by their headings", projects.count() == 1 and users.count() == 1)
        status = page.get_by_role("status")
        check("the empty list is announced in the live region", announced(status, re.compile(r"0 project tokens listed")),
              status.inner_text())

        # Create a project token: shown once, with a copy button and the warning.
        projects.get_by_label("Name", exact=True).fill("console ci")
        projects.get_by_label("Expiry (seconds)", exact=True).fill("3600")
        projects.get_by_role("button", name="Create project token").click()
        expect(status).to_have_text(re.compile(r'Project token "console ci" created'))
        shown = projects.get_by_label("New project token", exact=True).input_value()
        check("the new token is shown", shown.count(".") == 2, shown[:20])
        check("... with the warning that it cannot be shown again",
              projects.get_by_text("it cannot be shown again").is_visible())
        check("... and a copy button", projects.get_by_role("button", name="Copy token").is_visible())
        created = [r for r in fake("requests") if r["method"] == "POST"]
        check("the fake received the create, as the admin route rebuilds it",
              created and created[-1]["body"] == '{"expiry":3600,"name":"console ci"}', created)
        row = projects.get_by_role("row").filter(has_text="console ci")
        expect(row).to_have_count(1)
        token_id = row.get_attribute("data-id")
        check("it is listed", bool(token_id))
        page.screenshot(path=os.path.join(args.artifacts, "console.png"), full_page=True)

        # A name with markup in it is text: no element comes of it.
        projects.get_by_label("Name", exact=True).fill('<img src=x id=injected onerror="window.pwned=1">')
        projects.get_by_role("button", name="Create project token").click()
        markup_cell = projects.get_by_role("cell", name='<img src=x id=injected onerror="window.pwned=1">', exact=True)
        listed = announced(markup_cell, '<img src=x id=injected onerror="window.pwned=1">')
        check("a token name with markup is shown as text", listed and page.locator("#injected").count() == 0
              and not page.evaluate("window.pwned === 1"), [listed, page.locator("#injected").count()])
        expect(row).to_have_count(1)

        # Revoke it: confirm() asks first; the fake sees the DELETE.
        row.get_by_role("button", name=re.compile("^Revoke project token console ci")).click()
        expect(status).to_have_text(re.compile(r'Project token "console ci" revoked'))
        check("revoking asked with confirm() first", dialogs and "console ci" in dialogs[-1], dialogs)
        deletes = [r["path"] for r in fake("requests") if r["method"] == "DELETE"]
        check("the fake saw the DELETE", deletes == [f"/v2/jwt/project/{token_id}"], deletes)
        expect(row.get_by_role("cell", name=re.compile("^revoked"))).to_have_count(1)
        check("the row shows it revoked, with no Revoke button", row.get_by_role("button").count() == 0)

        # Revoke all for a user with three tokens.
        ids = [admin_api("POST", "jwt/user", {"external_id": "carol", "name": f"session {n}"})["token_id"] for n in range(3)]
        users.get_by_label("User id", exact=True).fill("carol")
        users.get_by_role("button", name="Look up", exact=True).click()
        expect(status).to_have_text("3 tokens for carol, 3 active.")
        dialogs.clear()
        users.get_by_role("button", name="Revoke all", exact=True).click()
        expect(status).to_have_text("Revoked all 3 tokens of carol.")
        check("Revoke all asked once with confirm()", len(dialogs) == 1 and "3" in dialogs[0], dialogs)
        user_deletes = sorted(r["path"] for r in fake("requests") if r["method"] == "DELETE" and "/jwt/user/" in r["path"])
        check("one DELETE per token", user_deletes == sorted(f"/v2/jwt/user/{i}" for i in ids), user_deletes)
        check("the progress showed 3 of 3", users.get_by_text("3 of 3").is_visible())
        check("no Revoke button is left for carol", users.get_by_role("button", name=re.compile("^Revoke")).count() == 0)

        # A user with more tokens than one page: Look up (and so Revoke all) sees every one.
        for n in range(105):
            admin_api("POST", "jwt/user", {"external_id": "erin", "name": f"tab {n}"})
        users.get_by_label("User id", exact=True).fill("erin")
        users.get_by_role("button", name="Look up", exact=True).click()
        check("a user's tokens are read page by page (105 over pages of 100)",
              announced(status, "105 tokens for erin, 105 active."), status.inner_text())

        # The list is for the user looked up: typing another id hides it, so that Revoke all
        # cannot act on carol's tokens under bob's name.
        admin_api("POST", "jwt/user", {"external_id": "frank", "name": "kept"})
        users.get_by_label("User id", exact=True).fill("frank")
        users.get_by_role("button", name="Look up", exact=True).click()
        announced(status, "1 token for frank, 1 active.")
        users.get_by_label("User id", exact=True).fill("grace")
        check("typing another user id hides the list and its Revoke all",
              users.get_by_role("button", name="Revoke all", exact=True).count() == 0)

        # Create a user token from the form.
        users.get_by_label("Email", exact=True).fill("dave@example.com")
        users.get_by_label("External id", exact=True).fill("dave")
        users.get_by_label("Name", exact=True).fill("console")
        users.get_by_label("Expiry (seconds)", exact=True).fill("600")
        users.get_by_role("button", name="Create user token").click()
        expect(status).to_have_text(re.compile("User token created"))
        made = [r for r in fake("requests") if r["method"] == "POST" and r["path"] == "/v2/jwt/user"]
        check("the user token create reached the fake with every field",
              made and json.loads(made[-1]["body"]) == {"email": "dave@example.com", "external_id": "dave", "name": "console", "expiry": 600},
              made[-1:] if made else made)

        # An error: shown with its code, its message and the answer's request id.
        fake("misbehave", {"mode": "html503"})
        projects.get_by_role("button", name="Refresh list").click()
        alert = page.get_by_role("alert")
        expect(alert).to_be_visible()
        code = alert.locator("dd[data-field=code]").inner_text()
        request_id = alert.locator("dd[data-field=request-id]").inner_text()
        check("a failure shows its code", code == "upstream_error", code)
        check("... its message, with MagicBell's status", "MagicBell: 503" in alert.inner_text(), alert.inner_text())
        check("... and the answer's X-Request-Id", re.fullmatch(r"[0-9a-f]{32}", request_id) is not None, request_id)
        page.screenshot(path=os.path.join(args.artifacts, "console-error.png"), full_page=True)

        # A 503 admin_busy is retried after its Retry-After.
        busy = {"left": 1, "times": []}

        def once_busy(route):
            busy["times"].append(time.monotonic())
            if busy["left"]:
                busy["left"] -= 1
                route.fulfill(status=503, headers={"Retry-After": "1", "Content-Type": "application/json"},
                              body='{"error":{"code":"admin_busy","message":"Too many admin calls in flight; retry shortly."}}')
            else:
                route.continue_()
        page.route(re.compile(r".*/magicbell-admin/jwt/project\?.*"), once_busy)
        projects.get_by_role("button", name="Refresh list").click()
        expect(status).to_have_text(re.compile(r"project tokens? listed"), timeout=10_000)
        waited = busy["times"][1] - busy["times"][0] if len(busy["times"]) > 1 else 0
        check(f"admin_busy was retried after its Retry-After (1 s; waited {waited:.2f} s), and the list came",
              busy["left"] == 0 and waited >= 0.95 and not alert.is_visible(), busy["times"])
        page.unroute(re.compile(r".*/magicbell-admin/jwt/project\?.*"))

        # Keyboard only: every control is reachable and labelled.
        unlabeled = page.evaluate("""() => [...document.querySelectorAll('input, button')]
            .filter((e) => !e.labels?.length && !e.getAttribute('aria-label') && !e.textContent.trim()).map((e) => e.id)""")
        check("every control has a label", unlabeled == [], unlabeled)
        check("no error in the page (a CSP violation included)", not errors, errors[:3])
        browser.close()

    print(f"console: {len(failures)} failed" if failures else "console: all checks passed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
