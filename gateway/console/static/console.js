// Bridgehead operator's console: plain JavaScript, no build step, nothing from the internet.
// Every value from the API reaches the page through textContent or an attribute, never as HTML.
"use strict";

const TOKEN_KEY = "bridgehead.console.token";
const STATE_KEY = "bridgehead.console.login-state";
const SVG = "http://www.w3.org/2000/svg";
const $ = (id) => document.getElementById(id);

function el(tag, attrs, ...children) {
  const node = tag.startsWith("svg:") ? document.createElementNS(SVG, tag.slice(4)) : document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

// -- signing in ---------------------------------------------------------------------------------

function token() { return sessionStorage.getItem(TOKEN_KEY); }

function takeTokenFromRedirect() {
  // The identity provider sends the user back to /admin#access_token=...&state=...; what went wrong, if anything.
  if (!location.hash.includes("access_token=")) return "";
  const answer = new URLSearchParams(location.hash.slice(1));
  const expected = sessionStorage.getItem(STATE_KEY);
  sessionStorage.removeItem(STATE_KEY);
  history.replaceState(null, "", location.pathname + "#/syncs");
  if (expected && answer.get("state") === expected) {
    sessionStorage.setItem(TOKEN_KEY, answer.get("access_token"));
    return "";
  }
  return "The sign-in answer did not match this tab's request; sign in again.";
}

function idpLink() {
  const url = document.body.dataset.loginUrl;
  if (!url) return;
  $("idp").hidden = false;
  $("idp-link").addEventListener("click", (event) => {
    event.preventDefault();
    const state = crypto.getRandomValues(new Uint32Array(4)).join("-");
    sessionStorage.setItem(STATE_KEY, state);
    const target = new URL(url);
    target.searchParams.set("response_type", "token");
    target.searchParams.set("client_id", document.body.dataset.clientId || "bridgehead-console");
    target.searchParams.set("redirect_uri", location.origin + location.pathname);
    target.searchParams.set("scope", "openid admin");
    target.searchParams.set("state", state);
    location.assign(target.toString());
  });
}

function showSignIn(message) {
  sessionStorage.removeItem(TOKEN_KEY);
  $("signin").hidden = false;
  $("tabs").hidden = true;
  $("signout").hidden = true;
  $("who").textContent = "";
  $("view").replaceChildren();
  $("signin-error").textContent = message || "";
}

async function signIn(candidate) {
  sessionStorage.setItem(TOKEN_KEY, candidate);
  try {
    const me = await api("/admin/session");
    $("who").textContent = `signed in as ${me.subject || "(no subject)"}`;
    $("signin").hidden = true;
    $("tabs").hidden = false;
    $("signout").hidden = false;
    route();
  } catch (error) {
    showSignIn(error.message);
  }
}

// -- the admin API ------------------------------------------------------------------------------

class ApiError extends Error {}

async function api(path, options = {}) {
  const headers = { Accept: "application/json", Authorization: `Bearer ${token()}` };
  if (options.body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, {
    method: options.method || "GET", headers,
    body: options.body === undefined ? undefined : JSON.stringify(options.body),
  });
  const type = response.headers.get("content-type") || "";
  const body = type.includes("json") ? await response.json() : null;
  if (response.status === 401) {
    showSignIn((body && body.detail) || "Sign in again.");
    throw new ApiError("signed out");
  }
  if (!response.ok) throw new ApiError((body && body.detail) || `HTTP ${response.status}`);
  return body;
}

function flash(text, error) {
  $("flash").textContent = text;
  $("flash").className = error ? "error" : "";
}

async function act(label, path, body) {
  try {
    const answer = await api(path, { method: "POST", body: body || {} });
    await route();
    const outcome = answer && answer.status ? ` (run #${answer.run_id} ${answer.status.replaceAll("_", " ")})` : "";
    flash(`${label}: done${outcome}`);  // after the page shows the new state
    return answer;
  } catch (error) {
    if (!(error instanceof ApiError) || error.message !== "signed out") flash(`${label}: ${error.message}`, true);
    return null;
  }
}

// -- formatting ---------------------------------------------------------------------------------

function when(text) { return text ? new Date(text).toLocaleString() : "—"; }
function seconds(value) {
  if (value === null || value === undefined) return "—";
  if (value < 120) return `${Math.round(value)} s`;
  if (value < 7200) return `${Math.round(value / 60)} min`;
  return `${Math.round(value / 3600)} h`;
}
function keyText(key) {
  if (Array.isArray(key)) return key.join(",");
  try { const parts = JSON.parse(key); return Array.isArray(parts) ? parts.join(",") : String(key); } catch { return String(key); }
}
function badge(kind, value) { return el("span", { class: `badge ${kind}-${value}` }, value.replaceAll("_", " ")); }
function json(value) { return el("pre", {}, JSON.stringify(value, null, 2)); }
function table(headings, rows, empty) {
  if (!rows.length) return el("p", { class: "muted" }, empty);
  return el("table", {},
    el("thead", {}, el("tr", {}, headings.map((h) => el("th", { class: /^(Created|Updated|Deleted|Failed|Skipped|Waiting|DLQ|Lag|Attempts|#)$/.test(h) ? "num" : null }, h)))),
    el("tbody", {}, rows));
}
function num(value) { return el("td", { class: "num" }, value); }

// -- views --------------------------------------------------------------------------------------

function runRow(run) {
  return el("tr", { "data-run": run.id },
    el("td", {}, el("a", { href: `#/runs/${run.id}` }, `#${run.id}`)),
    el("td", {}, badge("status", run.status)),
    el("td", {}, when(run.started_at)),
    num(run.created), num(run.updated), num(run.deleted), num(run.failed), num(run.skipped),
    el("td", { class: "error" }, run.error || ""));
}

async function viewSyncs() {
  const [syncs, letters, waiting] = await Promise.all([api("/admin/syncs"), api("/admin/dlq"), api("/admin/approvals")]);
  const parts = [];
  const alerts = await api("/admin/alerts").catch(() => null);
  if (alerts && alerts.data && alerts.data.length) {
    parts.push(el("h2", {}, "Active alerts"),
      el("ul", { class: "alerts", id: "alerts" }, alerts.data.map((a) => el("li", {}, `${a.sync || ""} ${a.kind || ""}: ${a.message || a.detail || ""}`))));
  }
  parts.push(el("h2", {}, "Syncs"));
  for (const s of syncs.data) {
    const paused = s.state === "paused";
    parts.push(el("section", { class: "sync", "data-sync": s.name },
      el("h3", {}, `${s.name} `, badge("state", s.state),
        el("span", { class: "muted" }, `  ${s.resource} → ${s.destination} ${s.object} (${s.mode}), every ${seconds(s.interval_s)}`)),
      el("p", {},
        `Waiting: ${s.waiting} · Dead letters: ${s.dead_letters} · In the destination: ${s.remote_records} · Lag: ${seconds(s.lag_s)} · Next run: ${when(s.next_run_at)} `,
        el("button", { type: "button", class: paused ? "primary" : null, "data-action": paused ? "resume" : "pause",
          onclick: () => act(`${paused ? "Resume" : "Pause"} ${s.name}`, `/admin/syncs/${encodeURIComponent(s.name)}/${paused ? "resume" : "pause"}`) },
          paused ? "Resume" : "Pause"), " ",
        el("button", { type: "button", "data-action": "run", onclick: () => act(`Run ${s.name}`, `/admin/syncs/${encodeURIComponent(s.name)}/run`) }, "Run now"), " ",
        s.runbook_url ? el("a", { href: `#/runbook/${encodeURIComponent(s.name)}`, class: "runbook" }, `Runbook (${s.runbook})`)
          : el("span", { class: "muted runbook" }, `Runbook: ${s.runbook}`)),
      table(["#", "Status", "Started", "Created", "Updated", "Deleted", "Failed", "Skipped", "Error"],
        s.last_runs.map(runRow), "No runs yet.")));
  }
  parts.push(el("h2", {}, `Dead letters (${letters.data.length})`), dlqTable(letters.data));
  if (waiting.data.length) parts.push(el("h2", {}, `Awaiting approval (${waiting.data.length})`), approvalList(waiting.data));
  parts.push(el("h2", {}, "Last hours"), await charts());
  return parts;
}

function dlqTable(letters) {
  const rows = letters.map((d) => el("tr", { "data-letter": d.id, "data-key": keyText(d.key) },
    el("td", {}, d.sync), el("td", { class: "key" }, keyText(d.key)), el("td", {}, d.op), num(d.attempts),
    el("td", { class: "error reason" }, d.reason), el("td", {}, when(d.created_at)),
    el("td", {},
      el("button", { type: "button", "data-action": "replay", onclick: () => act(`Replay ${keyText(d.key)}`, "/admin/dlq/replay", { ids: [d.id] }) }, "Replay"), " ",
      el("form", { class: "inline", onsubmit: (event) => {
        event.preventDefault();
        act(`Discard ${keyText(d.key)}`, `/admin/dlq/${d.id}/discard`, { note: event.target.elements.note.value });
      } }, el("input", { name: "note", placeholder: "why discard", required: true, maxlength: 1000 }),
        el("button", { type: "submit", class: "danger", "data-action": "discard" }, "Discard")))));
  const all = letters.length > 1
    ? el("p", {}, el("button", { type: "button", "data-action": "replay-all", onclick: () => act("Replay all", "/admin/dlq/replay", {}) }, "Replay all"))
    : null;
  return [table(["Sync", "Legacy key", "Op", "Attempts", "Reason", "Since", ""], rows, "The dead-letter queue is empty."), all];
}

async function viewDlq() {
  const letters = await api("/admin/dlq");
  return [el("h2", {}, `Dead letters (${letters.data.length})`),
    el("p", { class: "muted" }, "Fix the legacy row, then replay: the record is sent as the row is now, on the next run (or Run now)."),
    dlqTable(letters.data)];
}

function approvalList(approvals) {
  return approvals.map((a) => el("section", { class: "approval", "data-run": a.run_id },
    el("h3", {}, `Run #${a.run_id} of ${a.sync} `, a.decision ? badge("status", a.decision) : badge("status", "awaiting_approval")),
    el("p", {}, `Why held: ${a.reason}`),
    el("p", {}, `Planned: ${a.plan.planned.create || 0} creates, ${a.plan.planned.update || 0} updates, ${a.plan.planned.delete || 0} deletes of ${a.plan.remote_records} records in the destination`),
    table(["Op", "Legacy key", "Field", "Now", "After"], (a.plan.samples || []).flatMap((sample) => {
      const fields = Object.entries(sample.diff || {});
      if (!fields.length) return [el("tr", {}, el("td", {}, sample.op), el("td", {}, keyText(sample.key)), el("td", { colspan: 3, class: "muted" }, "no field the destination sees changes"))];
      return fields.map(([field, [before, after]]) => el("tr", {}, el("td", {}, sample.op), el("td", {}, keyText(sample.key)), el("td", {}, field), el("td", {}, JSON.stringify(before)), el("td", {}, JSON.stringify(after))));
    }), "No sample diff."),
    a.decision ? el("p", { class: "muted" }, `${a.decision} by ${a.decided_by} at ${when(a.decided_at)}`)
      : el("p", {},
        el("button", { type: "button", class: "primary", "data-action": "approve", onclick: () => act(`Approve run #${a.run_id}`, `/admin/approvals/${a.run_id}/approve`) }, "Approve and send"), " ",
        el("button", { type: "button", class: "danger", "data-action": "reject", onclick: () => act(`Reject run #${a.run_id}`, `/admin/approvals/${a.run_id}/reject`) }, "Reject"))));
}

async function viewApprovals() {
  const [waiting, decided] = await Promise.all([api("/admin/approvals"), api("/admin/approvals?all=true")]);
  const past = decided.data.filter((a) => a.decision).slice(-20).reverse();
  return [el("h2", {}, `Awaiting approval (${waiting.data.length})`),
    waiting.data.length ? approvalList(waiting.data) : el("p", { class: "muted" }, "No run is waiting for approval."),
    el("h2", {}, "Decided"), past.length ? approvalList(past) : el("p", { class: "muted" }, "None yet.")];
}

async function viewRun(id, params) {
  const query = new URLSearchParams();
  if (params.get("key")) query.set("key", params.get("key"));
  if (params.get("outcome")) query.set("outcome", params.get("outcome"));
  const run = await api(`/admin/runs/${id}?${query}`);
  const search = el("form", { class: "filters", id: "outcome-search", onsubmit: (event) => {
    event.preventDefault();
    const next = new URLSearchParams();
    for (const name of ["key", "outcome"]) if (event.target.elements[name].value) next.set(name, event.target.elements[name].value);
    location.hash = `#/runs/${id}?${next}`;
  } },
  el("label", {}, "Legacy key", el("input", { name: "key", value: params.get("key") || "" })),
  el("label", {}, "Outcome", el("select", { name: "outcome" }, ["", "created", "updated", "deleted", "unchanged", "failed", "dead_lettered", "deferred", "skipped"].map(
    (o) => el("option", { value: o, selected: o === (params.get("outcome") || "") }, o || "any")))),
  el("button", { type: "submit" }, "Search"));
  const rows = run.outcomes.map((o) => el("tr", { "data-key": keyText(o.key) },
    el("td", {}, keyText(o.key)), el("td", {}, badge("outcome", o.outcome)), el("td", { class: "error" }, o.error || ""),
    el("td", {}, o.request ? el("details", {}, el("summary", {}, "request"), json(o.request)) : "—"),
    el("td", {}, o.answer ? el("details", {}, el("summary", {}, "answer"), json(o.answer)) : "—"), el("td", {}, when(o.at))));
  return [el("h2", {}, `Run #${run.id} of ${run.sync} `, badge("status", run.status)),
    el("p", {}, `Started ${when(run.started_at)}, finished ${when(run.finished_at)} · created ${run.created}, updated ${run.updated}, deleted ${run.deleted}, failed ${run.failed}, skipped ${run.skipped}, dead-lettered ${run.dead_lettered}`),
    run.error ? el("p", { class: "error" }, run.error) : null,
    search, table(["Legacy key", "Outcome", "Error", "Sent", "Destination's answer", "At"], rows, "No row-level outcome recorded for this run (or none matches).")];
}

async function viewRunbook(name) {
  const page = await api(`/admin/runbook/${encodeURIComponent(name)}`);
  // Rendered on the server with raw HTML off; parsed here into a detached document, so nothing in it runs.
  const parsed = new DOMParser().parseFromString(page.html, "text/html");
  return [el("p", { class: "muted" }, `The runbook page ${page.file}, with the state as it is now (`, el("code", {}, "bridgehead runbook"), " writes the same file)."),
    el("article", { class: "runbook-page", "data-sync": name }, ...parsed.body.childNodes)];
}

async function viewConflicts() {
  const found = await api("/admin/conflicts");
  return [el("h2", {}, "Field-ownership conflicts (owner: newest)"),
    table(["Run", "Sync", "Legacy key", "Field", "Legacy value", "Destination value", "Winner", "At"], found.data.map((c) => el("tr", {},
      el("td", {}, el("a", { href: `#/runs/${c.run_id}` }, `#${c.run_id}`)), el("td", {}, c.sync), el("td", {}, keyText(c.key)), el("td", {}, c.field),
      el("td", {}, JSON.stringify(c.legacy)), el("td", {}, JSON.stringify(c.destination)), el("td", {}, el("strong", {}, c.winner)), el("td", {}, when(c.at)))),
    "No conflicts recorded.")];
}

async function viewAudit(params) {
  const names = ["resource", "subject", "action", "key", "since", "until"];
  const query = new URLSearchParams();
  for (const name of names) if (params.get(name)) query.set(name, params.get(name));
  const found = await api(`/admin/audit?${query}`);
  const form = el("form", { class: "filters", id: "audit-filter", onsubmit: (event) => {
    event.preventDefault();
    const next = new URLSearchParams();
    for (const name of names) if (event.target.elements[name].value) next.set(name, event.target.elements[name].value);
    location.hash = `#/audit?${next}`;
  } }, names.map((name) => el("label", {}, name, el("input", { name, value: params.get(name) || "", placeholder: name === "since" || name === "until" ? "2026-12-01T10:00" : "" }))),
  el("button", { type: "submit" }, "Filter"));
  return [el("h2", {}, "Audit trail"), form,
    table(["At", "Subject", "Version", "Resource", "Key", "Action", "Status", "After"], found.data.map((e) => el("tr", { class: "audit-entry" },
      el("td", {}, when(e.at)), el("td", {}, e.subject || "—"), el("td", {}, e.version), el("td", {}, e.resource), el("td", {}, e.key),
      el("td", {}, e.action), el("td", {}, e.status), el("td", {}, e.after ? JSON.stringify(e.after) : ""))), "No entries match.")];
}

// -- charts (inline SVG) ------------------------------------------------------------------------

function barChart(title, points, series, stepS) {
  const width = 600, height = 160, pad = 28;
  const totals = points.map((p) => series.reduce((sum, s) => sum + p[s.field], 0));
  const top = Math.max(1, ...totals);
  const barW = (width - pad) / points.length;
  const svg = el("svg:svg", { viewBox: `0 0 ${width} ${height + 20}`, role: "img", "aria-label": title });
  svg.append(el("svg:line", { x1: pad, y1: height, x2: width, y2: height, stroke: "#8c959f" }));
  svg.append(el("svg:text", { x: 2, y: 12, "font-size": 10, fill: "#5d6677" }, String(top)));
  svg.append(el("svg:text", { x: 2, y: height, "font-size": 10, fill: "#5d6677" }, "0"));
  points.forEach((p, i) => {
    let y = height;
    for (const s of series) {
      const h = (p[s.field] / top) * (height - 10);
      if (h > 0) {
        y -= h;
        svg.append(el("svg:rect", { x: pad + i * barW + 0.5, y, width: Math.max(1, barW - 1), height: h, fill: s.color, "data-series": s.field },
          el("svg:title", {}, `${new Date(p.at).toLocaleTimeString()}: ${p[s.field]} ${s.label}`)));
      }
    }
  });
  svg.append(el("svg:text", { x: pad, y: height + 15, "font-size": 10, fill: "#5d6677" }, new Date(points[0].at).toLocaleTimeString()));
  svg.append(el("svg:text", { x: width - 60, y: height + 15, "font-size": 10, fill: "#5d6677" }, "now"));
  return el("div", { class: "chart" }, el("h3", {}, title, el("span", { class: "muted" }, ` (per ${seconds(stepS)})`)),
    el("div", { class: "legend" }, series.map((s) => el("span", {}, el("i", { class: `sw ${s.swatch}` }), s.label))), svg);
}

async function charts() {
  const data = await api("/admin/series?hours=6");
  return el("div", { class: "charts" },
    barChart("Gateway requests", data.requests, [
      { field: "2xx", label: "2xx", color: "#2da44e", swatch: "sw-ok" },
      { field: "3xx", label: "3xx", color: "#0b5cad", swatch: "sw-info" },
      { field: "4xx", label: "4xx", color: "#d4a72c", swatch: "sw-warn" },
      { field: "5xx", label: "5xx", color: "#cf222e", swatch: "sw-bad" }], data.step_s),
    barChart("Sync records", data.sync, [
      { field: "done", label: "delivered", color: "#2da44e", swatch: "sw-ok" },
      { field: "skipped", label: "skipped", color: "#d4a72c", swatch: "sw-warn" },
      { field: "failed", label: "failed", color: "#cf222e", swatch: "sw-bad" }], data.step_s));
}

// -- routing ------------------------------------------------------------------------------------

let routing = 0;

async function route() {
  if (!token()) return showSignIn();
  const mine = ++routing;  // a slower, earlier view must not replace the one asked for last
  const [path, search] = (location.hash.slice(1) || "/syncs").split("?");
  const params = new URLSearchParams(search || "");
  const parts = path.split("/").filter(Boolean);
  const tab = parts[0] || "syncs";
  for (const link of document.querySelectorAll("#tabs a")) link.classList.toggle("active", link.dataset.tab === tab);
  try {
    let content;
    if (tab === "runs" && parts[1]) content = await viewRun(parts[1], params);
    else if (tab === "runbook" && parts[1]) content = await viewRunbook(decodeURIComponent(parts[1]));
    else if (tab === "dlq") content = await viewDlq();
    else if (tab === "approvals") content = await viewApprovals();
    else if (tab === "conflicts") content = await viewConflicts();
    else if (tab === "audit") content = await viewAudit(params);
    else content = await viewSyncs();
    if (mine !== routing) return;
    $("view").replaceChildren(...[content].flat(2).filter(Boolean));
    $("view").dataset.loaded = location.hash || "#/syncs";
  } catch (error) {
    if (!(error instanceof ApiError && error.message === "signed out")) flash(error.message, true);
  }
}

$("token-form").addEventListener("submit", (event) => {
  event.preventDefault();
  signIn($("token").value.trim());
  $("token").value = "";
});
$("signout").addEventListener("click", () => showSignIn());
window.addEventListener("hashchange", () => { flash(""); route(); });
const refused = takeTokenFromRedirect();
idpLink();
if (token()) signIn(token()); else showSignIn(refused);
