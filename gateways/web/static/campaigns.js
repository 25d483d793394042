// The campaign panel: a campaign's A/B test as of the slider's instant (GET /campaigns/{id}/variants: each
// variant's funnel and rate at the chosen step, each comparison's difference with its interval, p-value,
// probability to beat the control, the sample still needed and the verdict — "not enough data" stays that), and
// won revenue credited under every attribution model side by side (GET /reports/attribution, one per model).
"use strict";

const MODELS = ["first_touch", "last_touch", "linear", "u_shaped", "w_shaped", "time_decay"];
const MODEL_COLORS = ["#3e7cb1", "#805ad5", "#2f855a", "#d69e2e", "#c05621", "#718096"];
const share = (v) => (v === null || v === undefined ? "–" : `${(v * 100).toFixed(1)}%`);

async function refreshCampaigns() {
  if (!$("token").value) return;
  const instant = asOf();
  try {
    const report = await api(`/reports/campaigns?as_of=${encodeURIComponent(instant.toISOString())}&limit=500`);
    fillCampaigns(items(report.campaigns));
    await Promise.allSettled([refreshVariants(), refreshAttribution()]);
  } catch (error) {
    $("variants-caption").className = "caption error";
    $("variants-caption").textContent = error.message;
  }
}

// The campaigns in the list, latest planned first; the choice is kept while it exists.
function fillCampaigns(campaigns) {
  const select = $("campaign");
  const wanted = select.value;
  const sorted = [...campaigns].sort((a, b) => (a.planned_at < b.planned_at ? 1 : -1));
  select.replaceChildren(...sorted.map((c) => new Option(`${c.name} · ${c.channel} · ${c.status}`, c.campaign_id)));
  if (sorted.some((c) => c.campaign_id === wanted)) select.value = wanted;
}

async function refreshVariants() {
  const campaign = $("campaign").value;
  if (!campaign) return;
  const instant = asOf();
  const params = new URLSearchParams({ as_of: instant.toISOString(), step: $("variant-step").value });
  try {
    const report = await api(`/campaigns/${campaign}/variants?${params}`);
    $("variants-caption").className = "caption";
    $("variants-caption").textContent = report.variants.length === 0 ? "no variants defined by then" :
      `rate = ${report.step} / exposures · control ${report.baseline}` +
      (report.chi_square_p === null ? "" : ` · χ² p = ${report.chi_square_p.toPrecision(3)}`) +
      (report.winner ? ` · winner declared: ${report.winner.variant} (${report.winner.reason})` : "");
    drawVariants(report);
    $("campaign-panel").dataset.variantsLoaded = `${instant.toISOString()} ${campaign} ${report.step}`;
  } catch (error) {
    $("variants-caption").className = "caption error";
    $("variants-caption").textContent = error.message;
  }
}

function drawVariants(report) {
  const variants = report.variants;
  fillRows($("variants").tBodies[0], variants.map((v) => [`${v.key} · ${v.name || ""}`,
    [v.copy, v.channel, v.landing_page, v.offer].filter(Boolean).join(" · ") || "–", String(v.exposures),
    String(v.responses), String(v.leads), String(v.won), money(v.revenue_cents), share(v.rate),
    v.stopped ? `stopped: ${v.stopped.reason}` : ""]));
  const trs = fillRows($("comparisons").tBodies[0], report.comparisons.map((c) => [`${c.variant} vs ${c.control}`,
    c.difference === null ? "–" : `${(c.difference * 100).toFixed(1)} pp`,
    c.interval ? `[${(c.interval[0] * 100).toFixed(1)}, ${(c.interval[1] * 100).toFixed(1)}] pp` : "–",
    c.p_value === null ? "–" : c.p_value.toPrecision(3),
    c.probability_to_beat === null ? "–" : share(c.probability_to_beat),
    c.needed_per_arm === null ? "–" : String(c.needed_per_arm), c.verdict, c.reason || ""]));
  trs.forEach((tr, i) => { tr.dataset.verdict = report.comparisons[i].verdict; });
}

async function refreshAttribution() {
  const instant = asOf();
  const by = $("attribution-by").value;
  try {
    const reports = await Promise.all(MODELS.map((model) => api(`/reports/attribution?${new URLSearchParams({
      as_of: instant.toISOString(), model, by })}`)));
    drawAttribution(reports, by);
    $("attribution-caption").className = "caption";
    $("attribution-caption").textContent = `${reports[0].won_deals} won deals, ${money(reports[0].won_revenue_cents)} ` +
      `${reports[0].currency}, credited by each model (time decay: half-life ${reports[0].half_life_days} days)`;
    $("campaign-panel").dataset.attributionLoaded = `${instant.toISOString()} ${by}`;
  } catch (error) {
    $("attribution-caption").className = "caption error";
    $("attribution-caption").textContent = error.message;
  }
}

// What a credit goes to; a won deal without any touch is credited to no campaign (campaign_id null).
function creditKey(row, by) {
  const campaign = row.campaign_id === null ? "(无活动 / no campaign)" : row.name;
  if (by === "channel") return row.channel || "(none)";
  return by === "variant" ? `${campaign} · ${row.variant || "–"}` : campaign;
}

function drawAttribution(reports, by) {
  const keys = [...new Set(reports.flatMap((r) => r.rows.map((row) => creditKey(row, by))))].sort();
  const credited = reports.map((r) => new Map(r.rows.map((row) => [creditKey(row, by), row.credited_cents])));
  Plotly.react("attribution-chart", MODELS.map((model, i) => ({
    type: "bar", name: model, x: keys.map(chartText), y: keys.map((k) => (credited[i].get(k) || 0) / 100),
    marker: { color: MODEL_COLORS[i] } })),
  { barmode: "group", height: 320, margin: { l: 70, r: 20, t: 20, b: 90 }, legend: { orientation: "h", y: 1.15 },
    yaxis: { title: { text: reports[0].currency } } }, { displayModeBar: false, responsive: true });
  fillRows($("attribution").tBodies[0], keys.map((k) => [k, ...credited.map((m) => money(m.get(k) || 0))]))
    .forEach((tr, i) => { tr.dataset.key = keys[i]; });
}

$("campaign").addEventListener("change", refreshVariants);
$("variant-step").addEventListener("change", refreshVariants);
$("attribution-by").addEventListener("change", refreshAttribution);
