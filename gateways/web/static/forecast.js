// The forecast panel: GET /forecast as of the slider's instant, per month or quarter of the installation's zone,
// grouped by owner, team, region or pipeline; closed won, commit and best case stacked, the weighted pipeline
// beside them and the target as a line, with attainment and gap per row. Uses dashboard.js's helpers.
"use strict";

let forecastReport = null;
const SUMMED = ["deals", "closed_won_cents", "commit_cents", "best_case_cents", "pipeline_cents",
                "weighted_pipeline_cents"];

async function refreshForecast() {
  if (!$("token").value) return;
  const instant = asOf();
  const params = new URLSearchParams({ as_of: instant.toISOString(), grain: $("forecast-grain").value });
  if ($("forecast-by").value) params.set("by", $("forecast-by").value);
  panelStatus("forecast-status", "loading…");
  try {
    const report = await api(`/forecast?${params}`);
    forecastReport = report;
    zone = report.zone || zone;
    fillGroups(report);
    drawForecast(report);
    const unconverted = Object.keys(report.unconverted || {});
    $("forecast-caption").textContent = `as of ${localTime(report.as_of)} · ${report.currency}`;
    panelStatus("forecast-status", `${report.undated} open deal(s) without a close date` +
      (unconverted.length ? ` · without a rate: ${unconverted.join(", ")}` : ""));
    $("forecast").dataset.loaded = `${instant.toISOString()} ${report.grain} ${report.by ?? ""}`;
  } catch (error) {
    panelStatus("forecast-status", error.message, true);
  }
}

// The groups of the report in the Group list; the choice is kept while it still exists (else the header's Owner).
function fillGroups(report) {
  const select = $("forecast-group");
  const wanted = select.value || (report.by === "owner" ? $("owner").value.trim() : "");
  const groups = [...new Set(report.rows.map((r) => r.group).filter((g) => g !== null))].sort();
  select.replaceChildren(new Option("全部 / all", ""), ...groups.map((g) => new Option(g || "(none)", g)));
  select.value = groups.includes(wanted) ? wanted : "";
  select.disabled = report.by === null;
}

// One row per period: the chosen group's as the API gave it, or all groups added up (a target only where some
// group has one; the sum's attainment rounded here, the API's rows keep the API's half-even rounding).
function periodRows(report, group) {
  if (report.by === null || group !== "") return report.rows.filter((r) => report.by === null || r.group === group);
  const byPeriod = new Map();
  for (const row of report.rows) {
    const sum = byPeriod.get(row.period) || { ...row, group: group || null, target_cents: null,
                                              ...Object.fromEntries(SUMMED.map((k) => [k, 0])) };
    for (const key of SUMMED) sum[key] += row[key];
    if (row.target_cents !== null) sum.target_cents = (sum.target_cents || 0) + row.target_cents;
    byPeriod.set(row.period, sum);
  }
  return [...byPeriod.values()].map((r) => ({
    ...r,
    attainment_percent: r.target_cents ? (r.closed_won_cents / r.target_cents * 100).toFixed(1) : null,
    gap_cents: r.target_cents === null ? null : r.target_cents - r.closed_won_cents,
  }));
}

function drawForecast(report) {
  const group = $("forecast-group").value;
  const periods = periodRows(report, group);
  const x = periods.map((r) => r.period);
  const units = (key) => periods.map((r) => (r[key] === null ? null : r[key] / 100));
  const bar = (name, key, color) => ({ type: "bar", name, x, y: units(key), marker: { color } });
  Plotly.react("forecast-chart", [
    bar("已成交 / closed won", "closed_won_cents", "#2f855a"),
    bar("承诺 / commit", "commit_cents", "#3e7cb1"),
    bar("最佳情况 / best case", "best_case_cents", "#9cc3e6"),
    { type: "scatter", mode: "markers", name: "加权管道 / weighted pipeline", x, y: units("weighted_pipeline_cents"),
      marker: { symbol: "diamond", size: 11, color: "#d69e2e" } },
    { type: "scatter", mode: "lines+markers", name: "目标 / target", x, y: units("target_cents"),
      line: { color: "#b42318", dash: "dash", width: 2 }, connectgaps: false },
  ], { barmode: "stack", height: 340, margin: { l: 70, r: 20, t: 30, b: 40 },
       legend: { orientation: "h", y: -0.12 }, yaxis: { title: { text: report.currency } },
       title: { text: chartText(`${group || "all"} · ${report.grain} · ${report.zone}`), font: { size: 13 } } },
  { displayModeBar: false, responsive: true });
  fillForecastTable(report, group, periods);
}

// Every (period, group) row of the report, grouped ones followed by their period's total when "all" is chosen.
function fillForecastTable(report, group, totals) {
  const shown = [];
  for (const total of totals) {
    if (report.by !== null && group === "") {
      shown.push(...report.rows.filter((r) => r.period === total.period));
      shown.push({ ...total, group: "Σ", total: true });
    } else {
      shown.push(total);
    }
  }
  const trs = fillRows($("forecast-table").tBodies[0], shown.map((r) => [r.period, r.group ?? "", String(r.deals),
    money(r.closed_won_cents), money(r.commit_cents), money(r.best_case_cents), money(r.weighted_pipeline_cents),
    r.target_cents === null ? "–" : money(r.target_cents),
    r.attainment_percent === null ? "–" : `${r.attainment_percent}%`,
    r.gap_cents === null ? "–" : money(r.gap_cents)]));
  trs.forEach((tr, i) => {
    const row = shown[i];
    tr.dataset.period = row.period;
    tr.dataset.group = row.group ?? "";
    tr.classList.toggle("total", Boolean(row.total));
    tr.cells[0].title = `${localTime(row.start)} – ${localTime(row.end)}`; // the period's ends, in its zone
    if (row.gap_cents !== null) tr.cells[9].className = row.gap_cents > 0 ? "short" : "over";
  });
}

$("forecast-controls").addEventListener("submit", (event) => { event.preventDefault(); refreshForecast(); });
$("forecast-grain").addEventListener("change", refreshForecast);
$("forecast-by").addEventListener("change", refreshForecast);
$("forecast-group").addEventListener("change", () => forecastReport && drawForecast(forecastReport));
