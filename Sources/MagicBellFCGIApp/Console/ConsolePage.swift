// The admin console's page. Its script and style are ConsoleScript.swift
// and ConsoleStyle.swift; ConsoleAssets serves all three. No inline script
// or style: the page's Content-Security-Policy is default-src 'self'.
extension ConsoleAssets {
    static let page: StaticString = """
<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>MagicBell tokens · magicbell-fcgi</title>
<link rel="stylesheet" href="console.css">
<script type="module" src="console.js"></script>
</head>
<body>
<header>
  <h1>MagicBell tokens</h1>
  <p>Each action here goes through this server's admin route, under your login, and is written to its audit log.</p>
</header>
<p id="status" class="status" role="status" aria-live="polite"></p>
<div id="failure" class="failure" role="alert" hidden></div>
<main>
  <section id="project" aria-labelledby="project-heading">
    <h2 id="project-heading">Project tokens</h2>
    <table>
      <thead><tr><th scope="col">Name</th><th scope="col">Id</th><th scope="col">Created</th><th scope="col">Expires</th><th scope="col">State</th><th scope="col"><span class="hidden-label">Action</span></th></tr></thead>
      <tbody id="project-rows"></tbody>
    </table>
    <p class="actions">
      <button type="button" id="project-refresh">Refresh list</button>
      <button type="button" id="project-next" hidden>Next page</button>
    </p>
    <form id="project-create">
      <h3>Create a project token</h3>
      <p><label for="project-name">Name</label><input id="project-name" name="name" required maxlength="255" autocomplete="off"></p>
      <p><label for="project-expiry">Expiry (seconds)</label><input id="project-expiry" name="expiry" type="number" min="1" step="1" inputmode="numeric"></p>
      <p><button type="submit">Create project token</button></p>
    </form>
    <div id="project-created" class="created" hidden>
      <p><strong>Copy this token now: it cannot be shown again.</strong></p>
      <p><label for="project-token">New project token</label><input id="project-token" readonly></p>
      <p><button type="button" id="project-copy">Copy token</button></p>
    </div>
  </section>

  <section id="user" aria-labelledby="user-heading">
    <h2 id="user-heading">User tokens</h2>
    <form id="user-lookup">
      <p><label for="user-id">User id</label><input id="user-id" name="user" required autocomplete="off">
        <button type="submit">Look up</button></p>
    </form>
    <div id="user-results" hidden>
      <table>
        <thead><tr><th scope="col">Name</th><th scope="col">Id</th><th scope="col">Created</th><th scope="col">Expires</th><th scope="col">State</th><th scope="col"><span class="hidden-label">Action</span></th></tr></thead>
        <tbody id="user-rows"></tbody>
      </table>
      <p class="actions"><button type="button" id="user-revoke-all">Revoke all</button></p>
      <div id="user-progress" hidden>
        <p><label for="user-progress-bar">Revoking</label><progress id="user-progress-bar" value="0" max="1"></progress>
          <span id="user-progress-text"></span></p>
        <ul id="user-failures" class="failures"></ul>
      </div>
    </div>
    <form id="user-create">
      <h3>Create a user token</h3>
      <p><label for="user-email">Email</label><input id="user-email" name="email" type="email" maxlength="255" autocomplete="off"></p>
      <p><label for="user-external-id">External id</label><input id="user-external-id" name="external_id" maxlength="255" autocomplete="off"></p>
      <p><label for="user-name">Name</label><input id="user-name" name="name" maxlength="255" autocomplete="off"></p>
      <p><label for="user-expiry">Expiry (seconds)</label><input id="user-expiry" name="expiry" type="number" min="1" step="1" inputmode="numeric"></p>
      <p><button type="submit">Create user token</button></p>
    </form>
    <div id="user-created" class="created" hidden>
      <p><strong>Copy this token now: it cannot be shown again.</strong></p>
      <p><label for="user-token">New user token</label><input id="user-token" readonly></p>
      <p><button type="button" id="user-copy">Copy token</button></p>
    </div>
  </section>
</main>
</body>
</html>

"""
}
