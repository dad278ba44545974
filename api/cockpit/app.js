// KeyFlow's reference Cockpit: plain JavaScript over the API. Every value from the API is put
// in the page as text (never as HTML). The key lives in session storage and travels only as a
// bearer header; the demo's link carries it in the URL fragment, which is removed at once.
"use strict";

const $ = (id) => document.getElementById(id);
const state = {
  key: null, business: null, cursor: null, stream: null, seen: new Set(),
  highlights: null, spotlightTab: "leadScore",
  queue: { kind: null, offset: 0, size: 8 }, actioned: new Map(),
  services: [], servicesBy: "revenue", timelineFilter: null,
};

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") e.className = v;
    else if (k === "text") e.textContent = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (v !== undefined && v !== null) e.setAttribute(k, v);
  }
  for (const c of children) if (c !== null && c !== undefined) e.append(c);
  return e;
}

function money(cents) {
  return (cents / 100).toLocaleString(undefined, { style: "currency", currency: "EUR" });
}

function timeOf(iso) {
  const d = new Date(iso);
  return { hm: d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" }),
           day: d.toLocaleDateString([], { month: "short", day: "numeric" }) };
}

function toast(text) {
  const t = $("toast");
  t.textContent = text;
  t.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => (t.hidden = true), 2600);
}

// ---- API -------------------------------------------------------------------------------

function base() { return `/v1/businesses/${encodeURIComponent(state.business)}`; }

function showFreshness(res) {
  const upTo = res.headers.get("x-keyflow-complete-up-to");
  const lag = res.headers.get("x-keyflow-consumer-lag");
  if (!upTo) return;
  const when = upTo === "unknown" ? "not yet" : new Date(upTo).toLocaleTimeString();
  $("freshness").textContent = `complete up to ${when} · lag ${lag}`;
}

async function api(path, options = {}) {
  const res = await fetch(path, {
    ...options,
    headers: { Authorization: `Bearer ${state.key}`, "Content-Type": "application/json" },
  });
  showFreshness(res);
  if (res.status === 401) { logout("That key was not accepted."); throw new Error("unauthorized"); }
  const body = await res.json().catch(() => ({}));
  if (!res.ok) throw new Error(body.error ? body.error.message : `HTTP ${res.status}`);
  return body;
}

// ---- pieces ------------------------------------------------------------------------------

// Charts are inline SVG built here (no library, no build step): horizontal bars, one per row,
// every label set as text.
const SVGNS = "http://www.w3.org/2000/svg";
function svgEl(tag, attrs = {}, text) {
  const e = document.createElementNS(SVGNS, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

function shortText(s, n) { return s.length > n ? `${s.slice(0, n - 1)}…` : s; }

function barChart(box, rows, label) {
  const W = 600, rowH = 28, labelW = 180, valueW = 120;
  const H = Math.max(1, rows.length) * rowH;
  const max = Math.max(1, ...rows.map((r) => r.value));
  const svg = svgEl("svg", { viewBox: `0 0 ${W} ${H}`, width: "100%", role: "img", "aria-label": label });
  rows.forEach((r, i) => {
    const y = i * rowH;
    const w = Math.max(2, ((W - labelW - valueW) * r.value) / max);
    svg.append(svgEl("text", { x: 0, y: y + 18, class: "lbl" }, shortText(r.label, 24)));
    const bar = svgEl("rect", { x: labelW, y: y + 6, width: w, height: rowH - 12, rx: 4,
                                class: "bar", fill: r.color || "#5b4de0", "data-value": String(r.value) });
    bar.append(svgEl("title", {}, `${r.label}: ${r.text}`));
    svg.append(bar, svgEl("text", { x: labelW + w + 8, y: y + 18, class: "val" }, r.text));
  });
  box.replaceChildren(rows.length ? svg : el("p", { class: "muted", text: "No data yet." }));
}

function tabs(container, attr, current, onPick) {
  for (const b of container.querySelectorAll("button")) {
    b.setAttribute("aria-selected", String(b.dataset[attr] === current));
    b.onclick = () => onPick(b.dataset[attr]);
  }
}

const PALETTE = ["#5b4de0", "#1f9d6b", "#d9822b", "#2a6fc9", "#c2417a", "#7a8797", "#11826f"];
function avatar(name, photoUrl, id) {
  const initials = (name || id || "?").split(/\s+/).map((w) => w[0]).join("").slice(0, 2).toUpperCase();
  let h = 0;
  for (const ch of id || name || "") h = (h * 31 + ch.charCodeAt(0)) >>> 0;
  const a = el("div", { class: "avatar", style: `background:${PALETTE[h % PALETTE.length]}` }, initials);
  if (photoUrl) {
    const img = el("img", { alt: "", src: photoUrl, onerror: () => img.remove() });
    a.textContent = "";
    a.append(img);
    img.addEventListener("error", () => (a.textContent = initials));
  }
  return a;
}

async function act(action, contactId, refId) {
  try {
    const ack = await api(`${base()}/crm/actions`, {
      method: "POST", body: JSON.stringify({ action, contactId, refId: refId || null }),
    });
    toast(`${action.replace(/_/g, " ")} → logged at ${ack.hookPoint} (stub)`);
  } catch (e) { toast(e.message); }
}

const ACTION_LABELS = { call: "Call", book: "Book", tag: "Tag", send_reminder: "Send reminder",
                        confirm_booking: "Confirm booking", mark_task_done: "Mark task done",
                        view_contact: "View contact" };

function actionButtons(actions, contactId, refId) {
  return el("div", { class: "actions" }, ...actions.map((a) =>
    el("button", { "data-action": a, onclick: (ev) => {
      ev.stopPropagation();
      if (a === "view_contact") openContact(contactId); else act(a, contactId, refId);
    } }, ACTION_LABELS[a] || a)));
}

function spotlightCard(c) {
  return el("div", { class: "card", "data-testid": "spotlight-card", "data-contact": c.contactId,
                     onclick: () => openContact(c.contactId) },
    el("div", { class: "who" }, avatar(c.name, c.photoUrl, c.contactId),
      el("div", {}, el("div", { class: "name", text: c.name || c.contactId }),
        el("span", { class: `badge ${c.status}`, text: c.status }))),
    el("div", { class: "score" }, el("b", { text: String(c.leadScore) }), el("span", { class: "muted", text: "lead score" })),
    el("div", { class: "bar" }, el("i", { style: `width:${Math.max(0, Math.min(100, c.leadScore))}%` })),
    el("div", { class: "row" }, el("span", { text: "Unpaid balance" }), el("strong", { text: money(c.unpaidBalance) })),
    el("div", { class: "actions" },
      el("button", { class: "cta", "data-testid": "spotlight-cta", "data-action": c.action,
                     onclick: (ev) => { ev.stopPropagation(); act(c.action, c.contactId); } },
        ACTION_LABELS[c.action] || c.action)));
}

// ---- panels ------------------------------------------------------------------------------

async function loadSpotlight() {
  state.highlights = await api(`${base()}/crm/highlights`);
  renderSpotlight();
}

function renderSpotlight() {
  const h = state.highlights;
  if (!h) return;
  tabs($("spotlight-tabs"), "tab", state.spotlightTab, (t) => { state.spotlightTab = t; renderSpotlight(); });
  const cards = h.spotlights[state.spotlightTab] || [];
  $("spotlight").replaceChildren(...(cards.length ? cards.map(spotlightCard)
    : [el("p", { class: "muted", text: "Nobody here yet." })]));
  // Days and "this week" are the business's own: say which calendar they are in.
  $("spotlight-note").textContent = `days in ${h.calendar.timezone}, weeks from ${h.calendar.weekStartsOn}`;
}

// ---- Next Action queue -------------------------------------------------------------------

const KIND_LABELS = { invoice_overdue: "Overdue invoice", booking_unconfirmed: "Unconfirmed booking",
                      task_stale: "Stale task", lead_stale: "Stale lead" };
const DONE_LABELS = { send_reminder: "Reminder sent", confirm_booking: "Confirmation sent",
                      mark_task_done: "Marked done", call: "Call logged" };

async function loadQueue() {
  const q = state.queue;
  const params = new URLSearchParams({ limit: String(q.size), offset: String(q.offset) });
  if (q.kind) params.set("kind", q.kind);
  const r = await api(`${base()}/crm/next-actions?${params}`);
  if (!r.items.length && q.offset > 0 && r.total > 0) {
    q.offset = Math.floor((r.total - 1) / q.size) * q.size;
    return loadQueue();
  }
  const all = Object.values(r.kinds).reduce((a, b) => a + b, 0);
  const chip = (kind, label, n) => el("span", {
    class: `chip${q.kind === kind ? " on" : ""}`, "data-testid": "queue-filter", "data-kind": kind || "",
    onclick: () => { q.kind = kind; q.offset = 0; loadQueue().catch((e) => toast(e.message)); },
  }, label, el("b", { text: String(n) }));
  $("queue-filter").replaceChildren(chip(null, "All", all),
    ...Object.entries(r.kinds).map(([k, n]) => chip(k, KIND_LABELS[k] || k, n)));
  $("queue").replaceChildren(...(r.items.length ? r.items.map(queueItem)
    : [el("li", { class: "muted", text: "Nothing waiting." })]));
  $("queue-meta").textContent = r.total
    ? `${r.offset + 1}–${r.offset + r.items.length} of ${r.total} · highest priority first` : "";
  $("queue-prev").disabled = q.offset === 0;
  $("queue-next").disabled = r.offset + r.items.length >= r.total;
}

function queueItem(a) {
  const key = `${a.kind}|${a.refId}`;
  const done = state.actioned.get(key);
  const button = el("button", { class: "cta", "data-testid": "queue-action", "data-action": a.action },
    done || ACTION_LABELS[a.action] || a.action);
  const li = el("li", { class: done ? "done" : "", "data-testid": "queue-item", "data-kind": a.kind,
                        "data-ref": a.refId, "data-contact": a.contactId, "data-state": done ? "actioned" : "open" },
    el("span", { class: `q-kind k-${a.kind}`, text: KIND_LABELS[a.kind] || a.kind }),
    el("div", { class: "q-main" },
      el("div", { class: "q-msg", text: a.message }),
      el("span", { class: "contact", text: a.contactName || a.contactId, onclick: () => openContact(a.contactId) })),
    el("div", { class: "q-num", title: "local days since it started" }, el("b", { text: String(a.ageDays) }), el("span", { text: a.ageDays === 1 ? "day" : "days" })),
    el("div", { class: "q-num", title: "age × (1 + lead score / 100)" }, el("b", { text: a.priority.toFixed(1) }), el("span", { text: "priority" })),
    button);
  button.disabled = Boolean(done);
  button.onclick = async () => {
    button.disabled = true;
    try {
      const ack = await api(`${base()}/crm/actions`, {
        method: "POST", body: JSON.stringify({ action: a.action, contactId: a.contactId, refId: a.refId }),
      });
      const label = `✓ ${DONE_LABELS[a.action] || "Logged"}`;
      state.actioned.set(key, label);
      button.textContent = label;
      li.classList.add("done");
      li.dataset.state = "actioned";
      toast(`${ACTION_LABELS[a.action]} → logged at ${ack.hookPoint} (stub); the item leaves the queue when the CRM reports it done`);
    } catch (e) { button.disabled = false; toast(e.message); }
  };
  return li;
}

// ---- services and tiers ----------------------------------------------------------------------

async function loadServices() {
  const r = await api(`${base()}/crm/services`);
  state.services = r.services;
  renderServices();
}

function renderServices() {
  const by = state.servicesBy;
  tabs($("services-tabs"), "by", by, (b) => { state.servicesBy = b; renderServices(); });
  const list = [...state.services].sort((a, b) =>
    by === "revenue" ? a.revenueRank - b.revenueRank : a.volumeRank - b.volumeRank);
  barChart($("service-chart"), list.map((s) => ({
    label: s.name || s.serviceId,
    value: by === "revenue" ? s.revenue : s.bookings,
    text: by === "revenue" ? money(s.revenue) : `${s.bookings} bookings`,
    color: by === "revenue" ? "#1f9d6b" : "#2a6fc9",
  })), by === "revenue" ? "Revenue by service" : "Bookings by service");
  const total = list.reduce((sum, s) => sum + s.revenue, 0);
  $("services-meta").textContent = `${list.length} services · ${money(total)} revenue`;
  $("services").replaceChildren(...list.map((s) =>
    el("li", { "data-testid": "service-row", "data-service": s.serviceId, "data-revenue": String(s.revenue),
               "data-bookings": String(s.bookings) },
      el("div", {}, el("b", { text: s.name || s.serviceId }),
        el("span", { class: "muted", text: ` ${money(s.revenue)} · ${s.bookings} bookings · ${s.completed} completed` })),
      el("div", { class: "chips fans" }, el("span", { class: "muted", text: "Top fans:" }),
        ...(s.topFans.length ? s.topFans.map((f) => el("span", { class: "chip", "data-testid": "fan", "data-contact": f.contactId,
          onclick: () => openContact(f.contactId), text: f.name || f.contactId })) : [el("span", { class: "muted", text: "none yet" })])))));
}

const TIERS = [["gold", "#c9962b"], ["silver", "#8a94a6"], ["bronze", "#b0703a"]];
function renderTiers(segments) {
  const by = Object.fromEntries(segments.map((s) => [s.segment, s]));
  barChart($("tier-chart"), TIERS.filter(([t]) => by[t]).map(([t, color]) => ({
    label: `${t} (${by[t].definition})`, value: by[t].size, text: `${by[t].size} contacts`, color,
  })), "Contacts by lead-score tier");
}

async function loadAiCards() {
  const r = await api(`${base()}/crm/ai/next-actions`);
  const cards = r.cards.slice(0, 3).map((c) =>
    el("div", { class: "ai-card", "data-testid": "ai-card" },
      el("div", { class: "title", text: c.title }),
      el("div", { class: "body", text: c.body }),
      el("div", { class: "row" }, el("span", { class: "contact", text: c.contactName || c.contactId }),
        el("span", { class: "stub", text: `stub · ${c.hookPoint}` }))));
  $("ai-cards").replaceChildren(...(cards.length ? cards : [el("p", { class: "muted", text: "Nothing waiting." })]));
}

async function loadCues() {
  const { cues } = await api(`${base()}/crm/cues`);
  const items = [
    [cues.paidInvoices, `invoices paid (${money(cues.paidAmount)})`],
    [cues.bookingsPendingConfirmation, "bookings to confirm"],
    [cues.overdueInvoices, "overdue invoices"],
    [cues.overdueTasks, "overdue tasks"],
    [cues.promotionsSuggested, "leads ready to promote"],
  ];
  $("cues").replaceChildren(...items.map(([n, label]) => el("div", { class: "cue" }, el("b", { text: String(n) }), el("span", { text: label }))));
}

async function loadSegments() {
  const { segments } = await api(`${base()}/crm/segments`);
  renderTiers(segments);
  $("segments").replaceChildren(...segments.filter((s) => s.size > 0).map((s) =>
    el("span", { class: `chip ${s.segment}`, title: s.definition, onclick: () => runSearch(`#segment:${s.segment}`) },
      s.segment, el("b", { text: String(s.size) }))));
}

const BADGES = ["contact", "note", "task", "booking", "invoice", "payment"];
function renderTimelineFilter() {
  const f = state.timelineFilter;
  $("timeline-filter").replaceChildren(...[null, ...BADGES].map((b) =>
    el("span", { class: `chip${f === b ? " on" : ""}`, "data-badge": b || "",
                 onclick: () => { state.timelineFilter = b; renderTimelineFilter(); applyTimelineFilter(); } },
      b || "all")));
}

function applyTimelineFilter() {
  for (const li of $("timeline").children) li.hidden = Boolean(state.timelineFilter) && li.dataset.badge !== state.timelineFilter;
}

function timelineItem(a, fresh) {
  const t = timeOf(a.occurredAt);
  return el("li", { class: fresh ? "fresh" : "", "data-testid": "timeline-item", "data-event": a.eventId,
                    "data-badge": a.badge, hidden: state.timelineFilter && state.timelineFilter !== a.badge ? "" : null },
    el("time", { datetime: a.occurredAt }, t.hm, el("br"), t.day),
    el("div", { class: "what" },
      el("div", { class: "line" }, el("span", { class: `t-badge t-${a.badge}`, text: a.badge }),
        el("span", { class: "title", text: a.title, title: a.title })),
      el("span", { class: "contact", text: a.contactName || a.contactId, onclick: () => openContact(a.contactId) }),
      actionButtons(a.actions, a.contactId, a.data.task_id || a.data.invoice_id)));
}

async function loadTimeline() {
  const t = await api(`${base()}/crm/timeline?limit=60`);
  state.seen = new Set(t.items.map((a) => a.eventId));
  $("timeline").replaceChildren(...t.items.map((a) => timelineItem(a, false)));
  renderTimelineFilter();
  state.cursor = t.cursor;
  streamTimeline();
}

// Server-Sent Events read with fetch, so the key goes in a header (EventSource cannot send one).
async function streamTimeline() {
  if (state.stream) state.stream.abort();
  const ctrl = new AbortController();
  state.stream = ctrl;
  const business = state.business;
  while (!ctrl.signal.aborted && business === state.business) {
    try {
      const res = await fetch(`${base()}/crm/timeline/stream?after=${encodeURIComponent(state.cursor)}`,
        { headers: { Authorization: `Bearer ${state.key}` }, signal: ctrl.signal });
      if (!res.ok) throw new Error(`stream HTTP ${res.status}`);
      $("live").className = "live";
      $("live").textContent = "● live";
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      let buf = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += value;
        let cut;
        while ((cut = buf.indexOf("\n\n")) >= 0) {
          handleSse(buf.slice(0, cut));
          buf = buf.slice(cut + 2);
        }
      }
    } catch (e) {
      if (ctrl.signal.aborted) return;
    }
    $("live").className = "live off";
    $("live").textContent = "● reconnecting";
    await new Promise((r) => setTimeout(r, 1000));
  }
}

function handleSse(chunk) {
  let event = "message", data = "", id = null;
  for (const line of chunk.split("\n")) {
    if (line.startsWith("event:")) event = line.slice(6).trim();
    else if (line.startsWith("data:")) data += line.slice(5).trim();
    else if (line.startsWith("id:")) id = line.slice(3).trim();
  }
  if (id) state.cursor = id;
  if (event !== "activity") return;
  const a = JSON.parse(data);
  if (state.seen.has(a.eventId)) return;
  state.seen.add(a.eventId);
  const list = $("timeline");
  list.prepend(timelineItem(a, true));
  while (list.children.length > 200) list.lastChild.remove();
  clearTimeout(handleSse.refresh);
  handleSse.refresh = setTimeout(refreshPanels, 1500);
}

// ---- search ------------------------------------------------------------------------------

async function runSearch(q) {
  $("search").value = q;
  hideSuggest();
  const panel = $("results");
  panel.hidden = false;
  try {
    const r = await api(`${base()}/crm/search?q=${encodeURIComponent(q)}&limit=25`);
    $("results-meta").textContent = `${r.total} match${r.total === 1 ? "" : "es"} for ${q}`;
    $("results-list").replaceChildren(...r.items.map((c) =>
      el("li", { "data-testid": "search-result", "data-score": String(c.meta.leadScore), tabindex: "0",
        onclick: () => openContact(c.contactId), onkeydown: (ev) => { if (ev.key === "Enter") openContact(c.contactId); } },
        avatar(c.name, c.photoUrl, c.contactId),
        el("div", {}, el("div", { class: "name", text: c.name || c.contactId }),
          el("div", { class: "muted", text: `${c.status} · ${money(c.meta.outstandingBalance)} unpaid · ${c.segments.map((s) => s.segment).join(", ")}` })),
        el("span", { class: "score-pill", text: String(c.meta.leadScore) }))));
  } catch (e) {
    $("results-meta").textContent = e.message;
    $("results-list").replaceChildren();
  }
}

let suggestIndex = -1;
function hideSuggest() { $("suggest").hidden = true; suggestIndex = -1; }

async function updateSuggest() {
  const q = $("search").value;
  try {
    const r = await api(`${base()}/crm/search/suggest?q=${encodeURIComponent(q)}`);
    if ($("search").value !== q) return;
    const ul = $("suggest");
    ul.replaceChildren(...r.items.map((s) =>
      el("li", { role: "option", "data-value": s.value, "data-kind": s.kind, "data-contact": s.contactId || "",
        onmousedown: (ev) => { ev.preventDefault(); choose(s.value, s.contactId); } },
        el("span", { class: "kind", text: s.kind }), el("code", { text: s.value }), el("span", { class: "muted", text: s.label }))));
    ul.hidden = r.items.length === 0;
    suggestIndex = -1;
  } catch (e) { hideSuggest(); }
}

function pick(value) {
  $("search").value = value;
  $("search").focus();
  if (/[<>=]$|:$/.test(value)) updateSuggest(); else hideSuggest();
}

// A contact completion opens that contact; any other completes the query.
function choose(value, contactId) {
  if (contactId) { hideSuggest(); openContact(contactId); } else pick(value);
}

function wireSearch() {
  const input = $("search");
  input.addEventListener("input", () => { clearTimeout(wireSearch.t); wireSearch.t = setTimeout(updateSuggest, 120); });
  input.addEventListener("focus", updateSuggest);
  input.addEventListener("blur", () => setTimeout(hideSuggest, 150));
  input.addEventListener("keydown", (ev) => {
    const items = [...$("suggest").children];
    if (ev.key === "ArrowDown" || ev.key === "ArrowUp") {
      ev.preventDefault();
      if (!items.length) return;
      suggestIndex = (suggestIndex + (ev.key === "ArrowDown" ? 1 : items.length - 1)) % items.length;
      items.forEach((li, i) => li.classList.toggle("active", i === suggestIndex));
    } else if (ev.key === "Enter") {
      ev.preventDefault();
      if (suggestIndex >= 0 && !$("suggest").hidden) {
        const li = items[suggestIndex];
        choose(li.dataset.value, li.dataset.contact);
      }
      else if (input.value.trim()) runSearch(input.value.trim());
    } else if (ev.key === "Escape") hideSuggest();
  });
  $("results-close").addEventListener("click", () => ($("results").hidden = true));
}

// ---- contact drawer ------------------------------------------------------------------------

async function openContact(id) {
  const drawer = $("drawer");
  drawer.classList.add("open");
  drawer.setAttribute("aria-hidden", "false");
  const body = $("drawer-body");
  body.replaceChildren(el("p", { class: "muted", text: "Loading…" }));
  const path = `${base()}/contacts/${encodeURIComponent(id)}`;
  let c, history;
  try {
    [c, history] = await Promise.all([api(`${path}?limit=10`),
      api(`${path}/score-history?limit=50`).catch((e) => ({ error: e.message }))]);
  }
  catch (e) { body.replaceChildren(el("p", { class: "error", text: e.message })); return; }
  const m = c.meta;
  const maxPts = Math.max(1, ...c.factors.map((f) => Math.abs(f.points)));
  body.replaceChildren(
    el("div", { class: "who", "data-testid": "drawer-contact" }, avatar(c.name, c.photoUrl, c.contactId),
      el("div", {}, el("h2", { text: c.name || c.contactId }),
        el("div", { class: "muted", text: [c.email, c.phone].filter(Boolean).join(" · ") }))),
    el("div", { class: "chips", style: "margin-top:10px" },
      el("span", { class: `badge ${c.status}`, text: c.status }),
      ...c.tags.map((t) => el("span", { class: "chip", text: `#${t}` })),
      ...c.segments.map((s) => el("span", { class: `chip ${s.segment}`, title: s.reason, text: s.segment }))),
    actionButtons(["call", "book", "tag"], c.contactId),
    el("h3", { text: "Metrics" }),
    el("div", { class: "meta" },
      ...[["Lead score", m.leadScore], ["Unpaid", money(m.outstandingBalance)],
          ["Payment reliability", m.paymentReliability === null ? "–" : `${m.paymentReliability}%`],
          ["Avg days late", m.avgDaysLate ?? "–"], ["Top service", m.topService ? m.topService.name || m.topService.serviceId : "–"],
          ["Last interaction", m.lastInteractionAt ? new Date(m.lastInteractionAt).toLocaleDateString() : "–"],
          ["Median gap (days)", m.medianGapDays ?? "–"], ["Bookings this week", m.recentBookings], ["Revenue", money(m.revenue)]]
        .map(([k, v]) => el("div", {}, el("span", { text: k }), String(v)))),
    el("h3", { text: `Why ${m.leadScore}: score factors` }),
    el("div", { class: "factors", "data-testid": "factors" }, ...c.factors.map((f) =>
      el("div", { class: "factor" }, el("span", { text: `${f.factor} ×${f.count}` }),
        el("div", { class: "bar" }, el("i", { class: f.points < 0 ? "neg" : "", style: `width:${(Math.abs(f.points) / maxPts) * 100}%` })),
        el("b", { text: `${f.points > 0 ? "+" : ""}${f.points}` })))),
    el("h3", { text: "Lead score over time" }),
    scoreHistory(history),
    section("Next actions", c.nextActions, (a) => [a.message, `priority ${a.priority.toFixed(1)}`]),
    section("Invoices", c.invoices.items, (i) => [`${i.invoiceId} · ${i.amountCents === null ? "" : money(i.amountCents)}`, i.status]),
    section("Bookings", c.bookings.items, (b) => [`${b.serviceName || b.serviceId || b.bookingId} · ${b.startsAt ? new Date(b.startsAt).toLocaleDateString() : ""}`, b.status]),
    section("Tasks", c.tasks.items, (t) => [t.title || t.taskId, t.status]),
    section("Notes", c.notes.items, (n) => [n.body, n.createdAt ? new Date(n.createdAt).toLocaleDateString() : ""]),
    section("Recent events", c.events.items, (e) => [e.title, timeOf(e.occurredAt).day]));
}

// The lead score over time as a step line up to now, one dot per stored change, and the last
// changes with the factors that moved them (from `score-history`).
function movedText(p) {
  return p.moved.map((m) => `${m.factor} ${m.delta > 0 ? "+" : ""}${m.delta}`).join(", ") || "no factor moved";
}

function scoreHistory(h) {
  const box = el("div", { class: "history", "data-testid": "score-history" });
  if (h.error) { box.append(el("p", { class: "error", text: h.error })); return box; }
  const pts = h.points;
  if (!pts.length) { box.append(el("p", { class: "muted", text: "No score change stored yet." })); return box; }
  const W = 600, H = 160, padL = 36, padR = 12, padT = 12, padB = 24;
  const times = pts.map((p) => Date.parse(p.at));
  // The last score holds until now: the line runs on to the right edge.
  const t0 = Math.min(...times), t1 = Math.max(...times, Date.now(), t0 + 1);
  const scores = pts.map((p) => p.score);
  const lo = Math.min(0, ...scores), hi = Math.max(10, ...scores);
  const x = (t) => padL + ((t - t0) / (t1 - t0)) * (W - padL - padR);
  const y = (v) => padT + (1 - (v - lo) / (hi - lo)) * (H - padT - padB);
  const svg = svgEl("svg", { viewBox: `0 0 ${W} ${H}`, width: "100%", role: "img",
                             "aria-label": `Lead score over time, ${pts.length} changes` });
  for (const v of [lo, Math.round((lo + hi) / 2), hi]) {
    svg.append(svgEl("line", { x1: padL, x2: W - padR, y1: y(v), y2: y(v), class: "gridline" }),
      svgEl("text", { x: padL - 6, y: y(v) + 4, class: "axis", "text-anchor": "end" }, String(v)));
  }
  svg.append(svgEl("text", { x: padL, y: H - 6, class: "axis" }, new Date(t0).toLocaleDateString()),
    svgEl("text", { x: W - padR, y: H - 6, class: "axis", "text-anchor": "end" }, new Date(t1).toLocaleDateString()));
  let d = "";
  pts.forEach((p, i) => {
    d += i === 0 ? `M${x(times[i])},${y(p.score)}` : `H${x(times[i])}V${y(p.score)}`;
  });
  svg.append(svgEl("path", { d: `${d}H${x(t1)}`, class: "line" }));
  pts.forEach((p, i) => {
    const dot = svgEl("circle", { cx: x(times[i]), cy: y(p.score), r: 4, class: "pt",
                                  "data-score": String(p.score), "data-at": p.at });
    dot.append(svgEl("title", {}, `${p.score} on ${new Date(p.at).toLocaleString()}: ${movedText(p)}`));
    svg.append(dot);
  });
  box.append(svg, el("ul", { class: "list" }, ...pts.slice(-4).reverse().map((p) =>
    el("li", {}, el("span", { text: `${p.previous === null ? "" : `${p.previous} → `}${p.score}: ${movedText(p)}` }),
      el("span", { class: "muted", text: timeOf(p.at).day })))));
  return box;
}

function section(title, items, row) {
  const frag = el("div", {}, el("h3", { text: title }));
  if (!items.length) frag.append(el("p", { class: "muted", text: "None." }));
  else frag.append(el("ul", { class: "list" }, ...items.map((i) => {
    const [left, right] = row(i);
    return el("li", {}, el("span", { text: left }), el("span", { class: "muted", text: right }));
  })));
  return frag;
}

// ---- start -------------------------------------------------------------------------------

async function refreshPanels() {
  await Promise.allSettled([loadSpotlight(), loadQueue(), loadServices(), loadAiCards(), loadCues(), loadSegments()]);
}

async function selectBusiness(b) {
  state.business = b;
  state.queue.offset = 0;
  state.queue.kind = null;
  state.actioned.clear();
  sessionStorage.setItem("keyflow.business", b);
  $("results").hidden = true;
  await refreshPanels();
  await loadTimeline().catch((e) => toast(e.message));
}

function logout(message) {
  sessionStorage.removeItem("keyflow.key");
  $("app").hidden = true;
  $("login").hidden = false;
  $("login-error").textContent = message || "";
}

async function start() {
  const hash = new URLSearchParams(location.hash.slice(1));
  if (hash.get("key")) sessionStorage.setItem("keyflow.key", hash.get("key"));
  if (hash.get("business")) sessionStorage.setItem("keyflow.business", hash.get("business"));
  if (location.hash) history.replaceState(null, "", location.pathname);
  state.key = sessionStorage.getItem("keyflow.key");
  if (!state.key) { logout(); return; }
  let list;
  try { list = (await api("/v1/businesses")).businesses; } catch (e) { return; }
  $("login").hidden = true;
  $("app").hidden = false;
  const wanted = sessionStorage.getItem("keyflow.business");
  const select = $("business");
  select.replaceChildren(...list.map((b) => el("option", { value: b, text: b })));
  const first = list.includes(wanted) ? wanted : list[0];
  if (!first) { toast("No business has data yet."); return; }
  select.value = first;
  select.onchange = () => selectBusiness(select.value);
  await selectBusiness(first);
  setInterval(refreshPanels, 30000);
}

$("login").addEventListener("submit", (ev) => {
  ev.preventDefault();
  sessionStorage.setItem("keyflow.key", $("key").value.trim());
  start();
});
function closeDrawer() { $("drawer").classList.remove("open"); $("drawer").setAttribute("aria-hidden", "true"); }
$("drawer-close").addEventListener("click", closeDrawer);
// "/" anywhere but in a field focuses the search; Escape closes the drawer.
document.addEventListener("keydown", (ev) => {
  const typing = ["INPUT", "TEXTAREA", "SELECT"].includes(document.activeElement?.tagName);
  if (ev.key === "/" && !typing) { ev.preventDefault(); $("search").focus(); }
  else if (ev.key === "Escape" && $("drawer").classList.contains("open")) closeDrawer();
});
$("queue-prev").addEventListener("click", () => {
  state.queue.offset = Math.max(0, state.queue.offset - state.queue.size);
  loadQueue().catch((e) => toast(e.message));
});
$("queue-next").addEventListener("click", () => {
  state.queue.offset += state.queue.size;
  loadQueue().catch((e) => toast(e.message));
});
wireSearch();
start();
