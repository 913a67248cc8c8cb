// The admin console's one JS module. It calls the admin route it was served
// from, with relative URLs (jwt/project, jwt/user/...), so it works under
// whatever prefix the server gives the admin location, with the browser's
// own login for it. Everything MagicBell or a user typed is put in the page
// as text (textContent, input values), never as HTML.
const $ = (id) => document.getElementById(id);
const statusLine = $("status");
const failureBox = $("failure");
const PAGE = 20;
const MAX_BUSY_RETRIES = 3;

function announce(text) {
  statusLine.textContent = text;
}

class AdminError extends Error {
  constructor(message, { status, code, requestId }) {
    super(message);
    this.status = status;
    this.code = code;
    this.requestId = requestId;
  }
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// One call to the admin route. A 503 admin_busy is retried after its
// Retry-After (a few times); any other failure becomes an AdminError with the
// answer's code, message and X-Request-Id, whether the body is ours
// ({"error": {...}}) or MagicBell's own ({"errors": [...]}).
async function call(method, path, body) {
  for (let attempt = 0; ; attempt++) {
    let response;
    try {
      response = await fetch(path, {
        method,
        credentials: "same-origin",
        cache: "no-store",
        headers: body === undefined ? { Accept: "application/json" }
                                    : { Accept: "application/json", "Content-Type": "application/json" },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (cause) {
      throw new AdminError(`The server could not be reached (${cause.message}).`, { status: 0, code: "network_error", requestId: null });
    }
    const requestId = response.headers.get("X-Request-Id");
    let data = null;
    try { data = await response.json(); } catch { data = null; }
    if (response.ok) return data;
    const ours = data && data.error;
    const theirs = data && Array.isArray(data.errors) ? data.errors[0] : null;
    const code = (ours && ours.code) || (theirs && theirs.code) || `http_${response.status}`;
    let message = (ours && ours.message) || (theirs && theirs.message) || `The server answered ${response.status}.`;
    if (ours && ours.upstream_status) message += ` (MagicBell: ${ours.upstream_status})`;
    if (response.status === 503 && code === "admin_busy" && attempt < MAX_BUSY_RETRIES) {
      const wait = Math.min(30, Math.max(1, Number(response.headers.get("Retry-After")) || 1));
      announce(`The server is busy; trying again in ${wait} s.`);
      await sleep(wait * 1000);
      continue;
    }
    throw new AdminError(message, { status: response.status, code, requestId });
  }
}

function showFailure(action, error) {
  failureBox.hidden = false;
  const title = document.createElement("p");
  title.textContent = `${action} failed: ${error.message}`;
  const details = document.createElement("dl");
  for (const [term, value] of [["Code", error.code], ["Status", String(error.status)], ["Request id", error.requestId || "none"]]) {
    const dt = document.createElement("dt");
    dt.textContent = term;
    const dd = document.createElement("dd");
    dd.textContent = value;
    dd.dataset.field = term.toLowerCase().replace(" ", "-");
    details.append(dt, dd);
  }
  failureBox.replaceChildren(title, details);
  announce(`${action} failed.`);
}

function clearFailure() {
  failureBox.hidden = true;
  failureBox.replaceChildren();
}

// Runs one user action at a time (a double click creates one token, not
// two): clears the last failure, shows this one's, whatever it is.
let busy = false;

async function act(action, work) {
  if (busy) return;
  busy = true;
  document.querySelector("main").setAttribute("aria-busy", "true");
  clearFailure();
  try {
    await work();
  } catch (error) {
    showFailure(action, error instanceof AdminError ? error
      : new AdminError(`${error.message}`, { status: 0, code: "console_error", requestId: null }));
  } finally {
    busy = false;
    document.querySelector("main").removeAttribute("aria-busy");
  }
}

// An id as the admin route takes it in a path: "." and ".." would be
// resolved away by the browser before the request leaves.
function pathID(id) {
  if (typeof id !== "string" || id === "" || id === "." || id === ".." || id.length > 255) {
    throw new AdminError(`"${shown(String(id))}" is not an id the admin route can address.`, { status: 0, code: "invalid_id", requestId: null });
  }
  return encodeURIComponent(id);
}

// A name or id for a dialog or a label: no control or bidirectional
// characters (they could make the text read as another token's), shortened.
function shown(text) {
  const clean = String(text).replace(/[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g, "");
  return clean.length > 80 ? `${clean.slice(0, 80)}…` : clean;
}

const isExpired = (token) => Boolean(token.expires_at) && Date.parse(token.expires_at) <= Date.now();
const isActive = (token) => !token.discarded_at && !isExpired(token) && typeof token.id === "string";

const when = (text) => (text ? new Date(text).toLocaleString() : "never");

function cell(text) {
  const td = document.createElement("td");
  td.textContent = text;
  return td;
}

function tokenRow(token, kind, onRevoke) {
  const tr = document.createElement("tr");
  tr.dataset.id = token.id || "";
  const label = token.name || "(no name)";
  tr.append(cell(label), cell(token.id || "?"), cell(when(token.created_at)), cell(when(token.expires_at)),
            cell(token.discarded_at ? `revoked ${when(token.discarded_at)}` : isExpired(token) ? "expired" : "active"));
  const action = document.createElement("td");
  if (isActive(token)) {
    const button = document.createElement("button");
    button.type = "button";
    button.textContent = "Revoke";
    button.setAttribute("aria-label", `Revoke ${kind} token ${shown(label)} (${shown(token.id)})`);
    button.addEventListener("click", () => onRevoke(token, label));
    action.append(button);
  }
  tr.append(action);
  return tr;
}

function showCreated(prefix, created) {
  const token = created && typeof created.token === "string" ? created.token : null;
  if (!token) throw new AdminError("The answer holds no token: the create may still have happened; list the tokens to see.",
                                   { status: 200, code: "invalid_answer", requestId: null });
  $(`${prefix}-token`).value = token;
  $(`${prefix}-created`).hidden = false;
  $(`${prefix}-token`).focus();
  $(`${prefix}-token`).select();
}

async function copy(input) {
  input.select();
  try {
    await navigator.clipboard.writeText(input.value);
    announce("Token copied.");
  } catch {
    announce("Copying was refused by the browser: the token is selected, copy it with the keyboard.");
  }
}

// ---- Project tokens: the list, paged with limit/starting_after ----

let projectLast = null;

async function loadProjects(next, quiet = false) {
  const query = new URLSearchParams({ limit: String(PAGE) });
  if (next && projectLast) query.set("starting_after", projectLast);
  const page = await call("GET", `jwt/project?${query}`);
  const rows = $("project-rows");
  const items = (page && Array.isArray(page.data)) ? page.data : [];
  const made = items.map((token) => tokenRow(token, "project", revokeProject));
  if (next) rows.append(...made); else rows.replaceChildren(...made);
  const lastID = items.length ? items[items.length - 1].id : null;
  if (typeof lastID === "string") projectLast = lastID;
  const more = Boolean(page && page.links && page.links.next) || items.length === PAGE;
  $("project-next").hidden = !more;
  if (!quiet) announce(`${rows.children.length} project token${rows.children.length === 1 ? "" : "s"} listed.`);
}

// One token's revoke, after confirm(); then `reload` as an action of its
// own: the revoke is done, and a list that fails to reload is a failure of
// its own. `kind` is "project" or "user".
async function revoke(kind, token, label, consequence, reloading, reload) {
  if (busy || !confirm(`Revoke ${kind} token "${shown(label)}" (${shown(token.id)})? ${consequence}`)) return;
  const done = `${kind === "project" ? "Project" : "User"} token "${shown(label)}" revoked.`;
  let revoked = false;
  await act(`Revoking the ${kind} token`, async () => {
    await call("DELETE", `jwt/${kind}/${pathID(token.id)}`);
    revoked = true;
    announce(done);
  });
  if (revoked) await act(reloading, async () => {
    await reload();
    announce(done);
  });
}

const revokeProject = (token, label) =>
  revoke("project", token, label, "Anything using it stops working.", "Reloading the list", () => loadProjects(false, true));

$("project-refresh").addEventListener("click", () => act("Listing project tokens", () => loadProjects(false)));
$("project-next").addEventListener("click", () => act("Listing project tokens", () => loadProjects(true)));
$("project-copy").addEventListener("click", () => copy($("project-token")));
$("user-copy").addEventListener("click", () => copy($("user-token")));

function expiry(input) {
  const text = input.value.trim();
  return text === "" ? undefined : Number(text);
}

$("project-create").addEventListener("submit", (event) => {
  event.preventDefault();
  act("Creating the project token", async () => {
    const body = { name: $("project-name").value };
    const seconds = expiry($("project-expiry"));
    if (seconds !== undefined) body.expiry = seconds;
    showCreated("project", await call("POST", "jwt/project", body));
    announce(`Project token "${shown(body.name)}" created. Copy it now: it cannot be shown again.`);
  }).then(() => {
    // Reloaded as an action of its own: its failure must not read as the create's.
    if (!$("project-created").hidden) return act("Reloading the list", () => loadProjects(false, true));
  });
});

// ---- A user's tokens ----

let userTokens = [];

// All of a user's tokens, page by page (Revoke all must see every one),
// up to USER_PAGES pages of 100. The next page's cursor is the one MagicBell
// gives in links.next, else the last id; a page that adds nothing ends it.
const USER_PAGES = 20;
let lookedUp = null;    // the user the list below is for
let lookups = 0;        // only the latest lookup's answer is shown
let listComplete = true;

function cursor(page, items) {
  try {
    const next = page && page.links && page.links.next ? new URL(page.links.next, location.href).searchParams : null;
    const given = next && (next.get("starting_after") || next.get("page[after]"));
    if (given) return given;
  } catch { /* a next link that is not a URL: fall back to the last id */ }
  const last = items.length ? items[items.length - 1].id : null;
  return typeof last === "string" ? last : null;
}

async function lookUp(user, quiet = false) {
  const mine = ++lookups;
  const all = [];
  const seen = new Set();
  let after = null;
  let complete = false;
  for (let pages = 0; pages < USER_PAGES; pages++) {
    const query = new URLSearchParams({ limit: "100" });
    if (after) query.set("starting_after", after);
    const page = await call("GET", `jwt/user/${pathID(user)}?${query}`);
    const items = ((page && Array.isArray(page.data)) ? page.data : []).filter((token) => !seen.has(token.id));
    items.forEach((token) => seen.add(token.id));
    all.push(...items);
    const more = Boolean(page && page.links && page.links.next) || items.length === 100;
    after = cursor(page, items);
    if (!items.length || !more || !after) { complete = true; break; }
  }
  if (mine !== lookups) return; // a later lookup has started: its answer is the one shown
  lookedUp = user;
  listComplete = complete;
  userTokens = all;
  $("user-rows").replaceChildren(...userTokens.map((token) => tokenRow(token, "user", revokeUserToken)));
  $("user-results").hidden = false;
  const active = userTokens.filter(isActive).length;
  $("user-revoke-all").hidden = active === 0;
  const cap = complete ? "" : ` Only the first ${all.length} are listed: after revoking them, look up again.`;
  if (!quiet) announce(`${userTokens.length} token${userTokens.length === 1 ? "" : "s"} for ${shown(user)}, ${active} active.${cap}`);
}

// The list is for the user looked up: typing another id hides it, so that
// Revoke all can never act on one user's tokens under another's name.
$("user-id").addEventListener("input", () => {
  if ($("user-id").value.trim() !== lookedUp) $("user-results").hidden = true;
});

function revokeUserToken(token, label) {
  const user = lookedUp;
  return revoke("user", token, label, "That session stops getting notifications.", "Reloading the user's tokens",
                () => lookUp(user, true));
}

$("user-lookup").addEventListener("submit", (event) => {
  event.preventDefault();
  act("Looking up the user's tokens", () => lookUp($("user-id").value.trim()));
});

// Revoke all: one DELETE per active token, one at a time, the progress shown
// and every failure listed; the rest go on.
$("user-revoke-all").addEventListener("click", () => {
  const user = lookedUp;
  const active = userTokens.filter(isActive);
  if (busy || user === null || !active.length || !confirm(`Revoke all ${active.length} active tokens of ${shown(user)}?`)) return;
  act("Revoking all of the user's tokens", async () => {
    const bar = $("user-progress-bar");
    const failures = $("user-failures");
    $("user-progress").hidden = false;
    failures.replaceChildren();
    bar.max = active.length;
    let done = 0;
    const failed = [];
    for (const token of active) {
      try {
        await call("DELETE", `jwt/user/${pathID(token.id)}`);
      } catch (error) {
        failed.push(token);
        const item = document.createElement("li");
        item.textContent = `${shown(token.id)}: ${error.code || "console_error"}: ${error.message} (request id ${error.requestId || "none"})`;
        failures.append(item);
      }
      done += 1;
      bar.value = done;
      $("user-progress-text").textContent = `${done} of ${active.length}`;
    }
    const revoked = active.length - failed.length;
    const summary = failed.length ? `Revoked ${revoked} of ${active.length} tokens; ${failed.length} failed (listed below).`
                                  : `Revoked all ${active.length} tokens of ${shown(user)}.`;
    const more = listComplete ? "" : " More were not listed: look up again.";
    try {
      await lookUp(user, true);
    } catch (error) {
      announce(`${summary} The list could not be reloaded.`);
      return;
    }
    announce(summary + more);
  });
});

$("user-create").addEventListener("submit", (event) => {
  event.preventDefault();
  act("Creating the user token", async () => {
    const body = {};
    for (const [field, id] of [["email", "user-email"], ["external_id", "user-external-id"], ["name", "user-name"]]) {
      const value = $(id).value.trim();
      if (value) body[field] = value;
    }
    const seconds = expiry($("user-expiry"));
    if (seconds !== undefined) body.expiry = seconds;
    showCreated("user", await call("POST", "jwt/user", body));
    announce("User token created. Copy it now: it cannot be shown again.");
  });
});

act("Listing project tokens", () => loadProjects(false));
