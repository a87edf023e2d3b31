// The cdpio sandbox debugger (docs/debugger.md).  Plain DOM, no framework.
// Every value from a message is set with textContent, never parsed as HTML.
"use strict";

const API = "/_sandbox/debugger";
const PAGE = 200;                 // rows rendered at most; older ones are paged on the server
const $ = (id) => document.getElementById(id);

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null) continue;
    if (k === "class") node.className = v;
    else if (k.startsWith("data-")) node.setAttribute(k, v);
    else node[k] = v;
  }
  for (const c of children) {
    if (c === undefined || c === null) continue;
    node.append(c instanceof Node ? c : String(c));
  }
  return node;
}

async function getJSON(path) {
  const res = await fetch(path, {headers: {"Accept": "application/json"}, cache: "no-store"});
  if (!res.ok) throw new Error(`${path}: ${res.status}`);
  return res.json();
}

function fmtTime(seconds) {
  const d = new Date(seconds * 1000);
  const pad = (n, w = 2) => String(n).padStart(w, "0");
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
}

function pretty(value) { return JSON.stringify(value, null, 2); }

// --- live stream --------------------------------------------------------------

const live = {
  source: null,
  cursors: [],          // `before` of each older page visited; empty: the newest page (live)
  rows: [],             // the rows shown, newest first
  fresh: 0,             // new matching rows not shown while on an older page
  epoch: null,
  matched: 0,
  routes: new Set(),
  keptFrom: 1,          // the oldest seq the sandbox still keeps
  open: new Set(),      // seqs whose body is expanded: kept open across re-renders
};

function filterQuery() {
  const params = new URLSearchParams();
  for (const [id, name] of [["f-route", "route"], ["f-type", "type"], ["f-fate", "fate"], ["f-q", "q"]]) {
    const value = $(id).value.trim();
    if (value) params.set(name, value);
  }
  return params;
}

function rowNode(r) {
  const label = r.type === "track" ? r.event : r.name;
  const who = r.userId != null ? r.userId : (r.anonymousId != null ? r.anonymousId : "");
  const whoKind = r.userId != null ? "user" : (r.anonymousId != null ? "anonymous" : "");
  const fateCell = el("td", {class: "fate"});
  fateCell.append(el("span", {class: `badge ${r.status}`}, r.status));
  fateCell.append(" ", el("span", {class: "verdict"}, r.fate));
  if (r.status === "delivered" && r.operations.length) {
    const what = r.operations.length && "metric" in r.operations[0]
      ? "POST /api/v1/metrics body" : "Track API v2 body";
    const details = el("details", {open: live.open.has(r.seq)},
      el("summary", {}, what + (r.operations.length > 1 ? `s (${r.operations.length})` : "")),
      el("pre", {}, pretty(r.operations.length === 1 ? r.operations[0] : r.operations)));
    details.addEventListener("toggle", () => {
      if (details.open) live.open.add(r.seq); else live.open.delete(r.seq);
    });
    fateCell.append(details);
  }
  return el("tr", {class: r.status, "data-seq": r.seq, "data-message-id": r.messageId || ""},
    el("td", {class: "time", title: new Date(r.receivedAt * 1000).toISOString()}, fmtTime(r.receivedAt)),
    el("td", {class: "route"}, r.route),
    el("td", {class: "type"}, r.type == null ? "?" : r.type),
    el("td", {class: "label"}, label == null ? "" : String(label)),
    el("td", {class: "who", title: whoKind}, whoKind ? el("span", {class: "kind"}, whoKind === "user" ? "user " : "anon ") : "", String(who)),
    fateCell);
}

function renderRows() {
  const body = $("rows");
  body.replaceChildren(...live.rows.map(rowNode));
  $("empty").hidden = live.rows.length > 0 || live.cursors.length > 0;
  const first = live.rows.length ? live.rows[0].seq : 0;
  const shown = live.rows.length;
  $("matched").textContent = live.matched
    ? `${live.matched} matching message${live.matched === 1 ? "" : "s"}` + (live.matched > shown ? `, ${shown} shown` : "")
    : "";
  $("newer").hidden = live.cursors.length === 0;
  $("older").hidden = !(live.rows.length >= PAGE && live.rows[live.rows.length - 1].seq > live.keptFrom);
  $("fresh").hidden = live.fresh === 0;
  $("fresh").textContent = `${live.fresh} newer`;
  return first;
}

function noteRoutes(rows) {
  let added = false;
  for (const r of rows) {
    if (!live.routes.has(r.route)) { live.routes.add(r.route); added = true; }
  }
  if (!added) return;
  const select = $("f-route");
  const current = select.value;
  const services = new Set([...live.routes].map((r) => r.split(".")[0]));
  const options = [...[...services].sort(), ...[...live.routes].sort()];
  select.replaceChildren(el("option", {value: ""}, "all"),
    ...options.map((v) => el("option", {value: v}, services.has(v) ? `${v} (all)` : v)));
  select.value = current;
}

function showCounts(c) {
  if (!c) return;
  $("counts").textContent = `${c.received} received · ${c.delivered} delivered · ${c.dropped} dropped` +
    (c.pending ? ` · ${c.pending} queued` : "");
}

function connect() {
  if (live.source) live.source.close();
  const params = filterQuery();
  const source = new EventSource(`${API}/stream?${params}`);
  live.source = source;
  source.addEventListener("open", () => { $("conn").textContent = "live"; $("conn").className = "conn on"; });
  source.addEventListener("error", () => { $("conn").textContent = "reconnecting…"; $("conn").className = "conn off"; });
  source.addEventListener("page", (e) => {
    const page = JSON.parse(e.data);
    live.matched = page.matched;
    live.fresh = 0;
    live.cursors = [];            // on connect, or after a reset: the newest page
    live.rows = page.rows;
    live.keptFrom = page.kept_from;
    if (page.epoch !== live.epoch) live.open.clear();    // a reset: the seqs start again
    live.epoch = page.epoch;
    noteRoutes(page.rows);
    showCounts(page.counts);
    renderRows();
  });
  source.addEventListener("rows", (e) => {
    const batch = JSON.parse(e.data);
    live.matched += batch.matched;
    live.keptFrom = batch.kept_from;
    if (!$("view-people").hidden) refreshPeopleSoon();
    noteRoutes(batch.rows);
    showCounts(batch.counts);
    if (live.cursors.length === 0) {
      live.rows = batch.rows.concat(live.rows).slice(0, PAGE);
    } else {
      live.fresh += batch.matched;
    }
    renderRows();
  });
}

async function loadPage(before) {
  const params = filterQuery();
  params.set("limit", PAGE);
  if (before) params.set("before", before);
  const page = await getJSON(`${API}/messages?${params}`);
  live.rows = page.rows;
  live.keptFrom = page.kept_from;
  if (!before) live.matched = page.matched;    // an older page counts only what is older
  noteRoutes(page.rows);
  showCounts(page.counts);
  renderRows();
}

function older() {
  if (!live.rows.length) return;
  live.cursors.push(live.rows[live.rows.length - 1].seq);
  loadPage(live.cursors[live.cursors.length - 1]).catch(showError);
}

function newest() {
  live.cursors = [];
  live.fresh = 0;
  connect();
}

let filterTimer = null;
function filtersChanged() {
  clearTimeout(filterTimer);
  filterTimer = setTimeout(() => { live.cursors = []; live.rows = []; connect(); }, 150);
}

// --- people ----------------------------------------------------------------------

const people = {offset: 0, total: 0, size: 50, timer: null};

function refreshPeopleSoon() {      // new messages may have made or changed people
  if (people.timer) return;
  people.timer = setTimeout(() => { people.timer = null; loadPeople().catch(showError); }, 500);
}

async function loadPeople() {
  const params = new URLSearchParams({offset: people.offset});
  const q = $("p-q").value.trim();
  if (q) params.set("q", q);
  const data = await getJSON(`${API}/people?${params}`);
  people.total = data.total;
  people.size = data.page_size;
  $("people-rows").replaceChildren(...data.people.map((p) => el("tr", {"data-cio-id": p.cio_id},
    el("td", {}, el("a", {href: `#people/${encodeURIComponent(p.cio_id)}`},
      p.id != null ? p.id : (p.email != null ? p.email : `cio_${p.cio_id}`)),
      p.email != null && p.id != null ? el("span", {class: "sub"}, " " + p.email) : ""),
    el("td", {}, p.attributes), el("td", {}, p.activities), el("td", {}, p.devices))));
  $("people-count").textContent = `${data.total} ${data.total === 1 ? "person" : "people"}`;
  $("people-prev").hidden = people.offset === 0;
  $("people-next").hidden = people.offset + people.size >= people.total;
}

function kvTable(obj, cls) {
  const keys = Object.keys(obj || {}).sort();
  if (!keys.length) return el("p", {class: "empty"}, "none");
  return el("table", {class: "kv " + (cls || "")},
    el("tbody", {}, ...keys.map((k) => el("tr", {}, el("th", {}, k),
      el("td", {}, typeof obj[k] === "string" ? obj[k] : JSON.stringify(obj[k]))))));
}

async function showPerson(cioId) {
  const box = $("person");
  let data;
  try {
    data = await getJSON(`${API}/people/${encodeURIComponent(cioId)}`);
  } catch (err) {
    box.replaceChildren(el("p", {class: "empty"}, "This person is not in the sandbox (was it reset?)."));
    return;
  }
  const customer = data.attributes.customer || {};
  const activities = data.activities.activities || [];
  const devices = customer.devices || [];
  box.replaceChildren(
    el("h2", {}, customer.id != null ? customer.id : (customer.identifiers || {}).email || `cio_${cioId}`),
    el("p", {class: "sub"}, "as the App API answers GET /v1/customers/{id}/attributes and …/activities"),
    el("h3", {}, "Identifiers"), kvTable(customer.identifiers, "identifiers"),
    el("h3", {}, "Attributes"), kvTable(customer.attributes, "attributes"),
    customer.unsubscribed ? el("p", {class: "badge dropped"}, "unsubscribed") : "",
    el("h3", {}, `Devices (${devices.length})`),
    devices.length ? el("table", {class: "devices"},
      el("thead", {}, el("tr", {}, el("th", {}, "id"), el("th", {}, "platform"), el("th", {}, "last used"), el("th", {}, "attributes"))),
      el("tbody", {}, ...devices.map((d) => el("tr", {}, el("td", {class: "mono"}, d.id), el("td", {}, d.platform),
        el("td", {}, d.last_used == null ? "" : String(d.last_used)), el("td", {class: "mono"}, JSON.stringify(d.attributes || {}))))))
      : el("p", {class: "empty"}, "none"),
    el("h3", {}, `Activities (newest ${activities.length} of ${data.activities_total})`),
    activities.length ? el("table", {class: "activities"},
      el("thead", {}, el("tr", {}, el("th", {}, "timestamp"), el("th", {}, "type"), el("th", {}, "name"), el("th", {}, "data"))),
      el("tbody", {}, ...activities.map((a) => el("tr", {},
        el("td", {}, a.timestamp == null ? "" : new Date(a.timestamp * 1000).toISOString().replace(".000Z", "Z")),
        el("td", {}, a.type), el("td", {}, a.name == null ? "" : String(a.name)),
        el("td", {}, el("details", {}, el("summary", {}, "data"), el("pre", {}, pretty(a.data))))))))
      : el("p", {class: "empty"}, "none"),
    el("details", {class: "raw"}, el("summary", {}, "App API responses (JSON)"),
      el("pre", {}, pretty({attributes: data.attributes, activities: data.activities}))));
}

// --- summary ---------------------------------------------------------------------

async function loadSummary() {
  const s = await getJSON(`${API}/summary`);
  const routes = Object.entries(s.routes);
  const f = s.faults;
  const faults = [];
  if (!f.destination_connected) faults.push("Customer.io (Actions) destination not connected");
  if (f.fail_rate) faults.push(`fail-rate ${f.fail_rate} (status ${f.fail_status})`);
  if (f.throttle) faults.push(`throttle ${f.throttle} req/s`);
  if (f.latency) faults.push(`latency ${f.latency}s`);
  if (f.drop_connections) faults.push(`drop-connections ${f.drop_connections}`);
  const reasons = Object.entries(s.totals.drop_reasons).sort((a, b) => b[1] - a[1]);
  $("summary").replaceChildren(
    el("h2", {}, "Messages"),
    el("p", {}, `${s.totals.received} received, ${s.totals.delivered} delivered, ${s.totals.dropped} dropped` +
      (s.pending ? `, ${s.pending} queued` : "") + `; ${s.people} people; ${s.requests} requests.`),
    el("table", {class: "routes"},
      el("thead", {}, el("tr", {}, el("th", {}, "route"), el("th", {}, "delivered"), el("th", {}, "dropped"))),
      el("tbody", {}, ...routes.map(([route, c]) => el("tr", {"data-route": route},
        el("td", {}, route), el("td", {class: "num"}, c.delivered), el("td", {class: "num"}, c.dropped))))),
    s.kept < s.totals.delivered + s.totals.dropped
      ? el("p", {class: "sub"}, `Per-route counts cover the newest ${s.kept} messages the sandbox keeps.`) : "",
    el("h3", {}, "Drop reasons"),
    reasons.length ? el("table", {class: "reasons"}, el("tbody", {}, ...reasons.map(([r, n]) =>
      el("tr", {}, el("td", {}, r), el("td", {class: "num"}, n))))) : el("p", {class: "empty"}, "none"),
    el("h2", {}, "Sandbox"),
    el("table", {class: "kv"}, el("tbody", {},
      el("tr", {}, el("th", {}, "Customer.io region"), el("td", {}, s.regions.customerio)),
      el("tr", {}, el("th", {}, "Segment region"), el("td", {}, s.regions.segment)),
      el("tr", {}, el("th", {}, "faults"), el("td", {}, faults.length ? faults.join(", ") : "none")),
      el("tr", {}, el("th", {}, "up for"), el("td", {}, `${Math.round(s.uptime_s)} s`)))),
    el("h3", {}, "Accepted credentials (masked)"),
    el("table", {class: "kv credentials"}, el("tbody", {}, ...s.credentials.map((c) =>
      el("tr", {}, el("th", {}, c.name), el("td", {class: "mono"}, c.masked), el("td", {class: "sub"}, c.source))))));
}

async function resetSandbox(e) {
  e.preventDefault();
  if (!confirm("Forget every person, message and request in this sandbox?")) return;
  const res = await fetch(`${API}/reset`, {method: "POST"});
  if (!res.ok) { showError(new Error(`reset: ${res.status}`)); return; }
  loadSummary().catch(showError);
}

// --- navigation -------------------------------------------------------------------

function showError(err) {
  $("conn").textContent = String(err.message || err);
  $("conn").className = "conn off";
}

let summaryTimer = null;
function route() {
  const hash = location.hash.replace(/^#/, "") || "live";
  const [view, ...rest] = hash.split("/");
  const name = ["live", "people", "summary"].includes(view) ? view : "live";
  for (const v of ["live", "people", "summary"]) {
    $(`view-${v}`).hidden = v !== name;
    $(`nav-${v}`).classList.toggle("current", v === name);
  }
  clearInterval(summaryTimer);
  if (name === "people") {
    loadPeople().catch(showError);
    if (rest.length) showPerson(decodeURIComponent(rest.join("/")));
  } else if (name === "summary") {
    loadSummary().catch(showError);
    summaryTimer = setInterval(() => loadSummary().catch(showError), 2000);
  }
}

document.addEventListener("DOMContentLoaded", () => {
  $("filters").addEventListener("submit", (e) => e.preventDefault());
  for (const id of ["f-route", "f-type", "f-fate"]) $(id).addEventListener("change", filtersChanged);
  $("f-q").addEventListener("input", filtersChanged);
  $("older").addEventListener("click", older);
  $("newer").addEventListener("click", newest);
  $("fresh").addEventListener("click", newest);
  $("p-q").addEventListener("input", () => { people.offset = 0; loadPeople().catch(showError); });
  $("people-prev").addEventListener("click", () => { people.offset = Math.max(0, people.offset - people.size); loadPeople().catch(showError); });
  $("people-next").addEventListener("click", () => { people.offset += people.size; loadPeople().catch(showError); });
  $("reset-form").addEventListener("submit", resetSandbox);
  window.addEventListener("hashchange", route);
  connect();
  route();
});
