// Pipeline inspection and win/loss: GET /inspection/slippage — deals whose expected close moved in the window
// (the last N days up to the slider's instant: "changes since last week"), pushed out of their period or pulled
// in — and GET /winloss as of the slider's instant, grouped by stage, owner, team, product, period, pipeline or
// competitor, with the loss reasons. Deals by title and customer; a click opens the deal's audit trail.
"use strict";

const DIRECTIONS = { pushed: "推迟 / pushed", pulled_in: "提前 / pulled in", within: "期内 / within", set: "新设 / set" };

async function refreshSlippage() {
  if (!$("token").value) return;
  const to = asOf();
  const from = new Date(to.getTime() - Number($("slippage-days").value) * DAY_MS);
  const params = new URLSearchParams({ from: from.toISOString(), to: to.toISOString(),
                                       grain: $("slippage-grain").value });
  if ($("owner").value.trim()) params.set("owner", $("owner").value.trim());
  try {
    const report = await api(`/inspection/slippage?${params}`);
    zone = report.time_zone || zone;
    const counts = report.counts;
    $("slippage-caption").textContent = `${localTime(report.from)} – ${localTime(report.to)}`;
    $("slippage-counts").className = "caption";
    $("slippage-counts").textContent = Object.entries(DIRECTIONS).map(([key, label]) => `${label} ${counts[key]}`)
      .join(" · ");
    drawSlippage(report.deals);
    $("slippage-panel").dataset.loaded = `${to.toISOString()} ${report.grain}`;
  } catch (error) {
    $("slippage-counts").className = "caption error";
    $("slippage-counts").textContent = error.message;
  }
}

function drawSlippage(deals) {
  const shown = deals.slice(0, 50);
  const trs = fillRows($("slippage").tBodies[0], shown.map((d) => [d.deal, d.customer || "–", d.owner,
    `${d.old_close || "–"} → ${d.new_close || "–"}`, `${d.old_period || "–"} → ${d.new_period || "–"}`,
    DIRECTIONS[d.direction] || d.direction, `${money(d.amount_cents)} ${d.currency}`]));
  trs.forEach((tr, i) => {
    tr.dataset.direction = shown[i].direction;
    tr.addEventListener("click", () => showAudit({ kind: "deal", item_id: shown[i].deal_id, item: shown[i].deal,
                                                   customer: shown[i].customer }));
  });
}

async function refreshWinloss() {
  if (!$("token").value) return;
  const instant = asOf();
  const params = new URLSearchParams({ as_of: instant.toISOString(), by: $("winloss-by").value });
  if ($("owner").value.trim()) params.set("owner", $("owner").value.trim());
  try {
    const report = await api(`/winloss?${params}`);
    zone = report.time_zone || zone;
    const t = report.totals;
    $("winloss-caption").className = "caption";
    $("winloss-caption").textContent = `as of ${localTime(report.as_of)} · won ${t.won} (${money(t.won_cents)}) · ` +
      `lost ${t.lost} (${money(t.lost_cents)}) · win rate ${t.win_rate_percent === null ? "–" : `${t.win_rate_percent}%`}` +
      ` · ${report.currency}`;
    drawWinloss(report);
    $("winloss-panel").dataset.loaded = `${instant.toISOString()} ${report.by}`;
  } catch (error) {
    $("winloss-caption").className = "caption error";
    $("winloss-caption").textContent = error.message;
  }
}

function drawWinloss(report) {
  const groups = report.groups;
  const x = groups.map((g) => chartText(g.group || "(none)"));
  const reasons = report.totals.reasons.slice(0, 10).reverse();
  Plotly.react("winloss-chart", [
    { type: "bar", name: "赢单 / won", x, y: groups.map((g) => g.won), marker: { color: "#2f855a" } },
    { type: "bar", name: "输单 / lost", x, y: groups.map((g) => g.lost), marker: { color: "#c05621" } },
    { type: "bar", orientation: "h", name: "输单原因 / loss reasons", xaxis: "x2", yaxis: "y2",
      x: reasons.map((r) => r.deals), y: reasons.map((r) => chartText(r.reason || "(none)")), marker: { color: "#9b2c2c" } },
  ], { barmode: "stack", height: 320, margin: { l: 150, r: 20, t: 20, b: 60 }, legend: { orientation: "h", y: -0.25 },
       grid: { rows: 1, columns: 2, pattern: "independent" }, xaxis: { domain: [0, 0.45] },
       xaxis2: { domain: [0.72, 1] }, yaxis: { title: { text: "deals" } } },
  { displayModeBar: false, responsive: true });
  fillRows($("winloss").tBodies[0], groups.map((g) => [g.group || "(none)", String(g.won), money(g.won_cents),
    String(g.lost), money(g.lost_cents), g.win_rate_percent === null ? "–" : `${g.win_rate_percent}%`,
    g.reasons.length ? `${g.reasons[0].reason} (${g.reasons[0].deals})` : "–"]));
}

$("slippage-days").addEventListener("change", refreshSlippage);
$("slippage-grain").addEventListener("change", refreshSlippage);
$("winloss-by").addEventListener("change", refreshWinloss);
