// The dashboard: asks the API for the funnel, the forecast and the open reminders as of the slider's instant
// and draws them; a click on a stuck deal or a reminder opens that item's audit trail. Plain JS, plotly.js
// (served locally) for the charts; every displayed time carries its zone (the installation's, CRM_TIME_ZONE,
// as the API names it).
"use strict";

const $ = (id) => document.getElementById(id);
const DAY_MS = 86400000;
let pending = null;
let zone = "UTC"; // the installation's zone, as the last report named it

function asOf() {
  const days = Number($("as-of").value);
  const instant = new Date(Date.now() + days * DAY_MS);
  instant.setUTCSeconds(0, 0);
  return instant;
}

function query() {
  const params = new URLSearchParams({ pipeline: $("pipeline").value, as_of: asOf().toISOString(),
                                       stuck_days: $("stuck-days").value || "30" });
  for (const name of ["owner", "region", "industry", "channel", "segment"]) {
    const value = $(name).value.trim();
    if (value) params.set(name, value);
  }
  return params;
}

async function api(path) {
  const response = await fetch(path, { headers: { Authorization: `Bearer ${$("token").value}` } });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(body.error || `${response.status} ${response.statusText}`);
  return body;
}

const percent = (v) => (v === null || v === undefined ? "–" : `${(v * 100).toFixed(1)}%`);
// A missing rate says why (its reason's first clause), never a made-up 0 % or 100 %.
const rate = (v, note) => (v === null && note ? `n/a (${note.split(":")[0]})` : percent(v));
const days = (v) => (v === null || v === undefined ? "–" : v.toFixed(1));
const money = (cents) => (cents / 100).toLocaleString("zh-CN", { maximumFractionDigits: 0 });
const items = (list) => (Array.isArray(list) ? list : (list && list.items) || []);
const formats = new Map(); // zone → its formatter
// An instant as the business sees it: in the installation's zone, which is named ("2026-11-30 22:37 Asia/Shanghai").
function localTime(iso) {
  if (!iso) return "–";
  if (!formats.has(zone)) {
    formats.set(zone, new Intl.DateTimeFormat("sv-SE", { timeZone: zone, year: "numeric", month: "2-digit",
                                                         day: "2-digit", hour: "2-digit", minute: "2-digit",
                                                         hourCycle: "h23" }));
  }
  return `${formats.get(zone).format(new Date(iso))} ${zone}`;
}

// Every panel's month / quarter list (`data-first`: the one chosen at first), said once here.
for (const select of document.querySelectorAll("select.grain")) {
  const grains = [["quarter", "季度 / Quarter"], ["month", "月 / Month"]];
  if (select.dataset.first === "month") grains.reverse();
  select.replaceChildren(...grains.map(([value, text]) => new Option(text, value)));
}

// A panel's own status line: a failing panel says why and leaves the others shown.
function panelStatus(id, text, error = false) {
  $(id).className = error ? "panel-status error" : "panel-status";
  $(id).textContent = text;
}

// Text from the data (names, reasons, competitors, campaigns) as a chart label: plotly reads labels as a small
// HTML (<a href>, <b>…), so a competitor named `<a href="…">` would show as a link; its entities show as text.
function chartText(text) {
  return String(text).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

function cell(text) {
  const td = document.createElement("td");
  td.textContent = text;
  return td;
}

function fillRows(tbody, rows) {
  tbody.replaceChildren(...rows.map((cells) => {
    const tr = document.createElement("tr");
    tr.append(...cells.map(cell));
    return tr;
  }));
  return [...tbody.children];
}

function draw(report) {
  const rows = report.rows;
  Plotly.react("chart", [{
    type: "funnel", y: rows.map((r) => chartText(r.label)), x: rows.map((r) => r.reached),
    textinfo: "value+percent initial", marker: { color: "#3e7cb1" },
  }], { margin: { l: 190, r: 20, t: 30, b: 20 }, height: 380,
        title: { text: `${report.pipeline} · won ${report.won} · lost ${report.lost}`, font: { size: 14 } } },
  { displayModeBar: false, responsive: true });
  fillRows($("stages").tBodies[0], rows.map((r) => [r.label, String(r.items), money(r.value_cents),
    String(r.reached), rate(r.conversion_to_next, r.conversion_note), days(r.median_days), days(r.p90_days)]));
  $("summary").textContent = `open ${report.open_items} · won ${report.won} · lost ${report.lost} · ` +
    `win rate ${rate(report.win_rate, report.win_rate_note)} · avg cycle ${days(report.average_cycle_days)} d · ` +
    `bottleneck ${report.bottleneck || "–"}`;
  const stuck = items(report.stuck);
  const total = report.stuck && report.stuck.total !== undefined ? report.stuck.total : stuck.length;
  $("stuck-count").textContent = `(${stuck.length} of ${total})`;
  const trs = fillRows($("stuck").tBodies[0], stuck.slice(0, 50).map((s) => ["…", "", s.stage, s.owner,
    days(s.days_in_stage)]));
  trs.forEach((tr, i) => {
    tr.dataset.itemId = stuck[i].item_id;
    tr.addEventListener("click", async () => showAudit({ kind: "deal", item_id: stuck[i].item_id,
                                                         ...await dealName(stuck[i].item_id).catch(() => ({ item: stuck[i].item_id })) }));
  });
  nameRows(trs); // the funnel names no item: each row's deal title and customer, asked for once each
}

async function refresh() {
  // the funnel and the forecast name the zone the other panels' times are shown in
  await Promise.allSettled([refreshFunnel(), refreshForecast()]);
  await Promise.allSettled([refreshReminders(), refreshSlippage(), refreshWinloss(), refreshCampaigns(),
                            refreshBacktest()]);
}

let funnelAsked = 0; // the latest funnel request: an earlier one's answer arriving after it is dropped

async function refreshFunnel() {
  const asked = ++funnelAsked;
  const instant = asOf();
  const offset = Number($("as-of").value);
  $("as-of-days").textContent = offset === 0 ? "today" : `${-offset} days ago`;
  $("as-of-label").textContent = `as of ${instant.toISOString().slice(0, 16).replace("T", " ")} UTC`;
  $("as-of-label").dataset.instant = instant.toISOString();
  if (!$("token").value) {
    $("status").textContent = "Enter a bearer token to load the funnel.";
    return;
  }
  $("status").className = "";
  $("status").textContent = "loading…";
  try {
    const report = await api(`/funnel?${query()}`);
    if (asked !== funnelAsked) return; // the slider moved on while this was asked (a slow answer came late)
    draw(report);
    // The instant as the API shows it: in the installation's time zone (CRM_TIME_ZONE), named.
    zone = report.time_zone || zone;
    $("as-of-label").textContent = `as of ${localTime(report.as_of)}`;
    $("status").textContent = "";
    document.body.dataset.loadedAsOf = instant.toISOString();
  } catch (error) {
    $("status").className = "error";
    $("status").textContent = error.message;
  }
}

function refreshSoon() {
  clearTimeout(pending);
  pending = setTimeout(refresh, 150);
}

$("controls").addEventListener("submit", (event) => { event.preventDefault(); refresh(); });
$("as-of").addEventListener("input", refreshSoon);
$("pipeline").addEventListener("change", refresh);
$("segment").addEventListener("change", refresh);
// after forecast.js and reminders.js (loaded after this file) have defined their panels' functions
document.addEventListener("DOMContentLoaded", refresh);
