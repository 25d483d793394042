// The forecast backtest: GET /forecast/backtest — what each method forecast at an earlier instant T for the K
// periods after it, with its interval, against what actually closed by the slider's instant; and each method's
// error (MAE, MAPE, bias, interval coverage). A method without enough history says why instead of a line.
"use strict";

const METHOD_COLORS = { weighted: "#3e7cb1", pipeline_conversion: "#805ad5", seasonal: "#d69e2e", naive: "#718096" };
const units = (cents) => (cents === null || cents === undefined ? null : cents / 100);
const percentText = (v) => (v === null || v === undefined ? "–" : `${v}%`);

// T: the slider's instant moved back that many months (calendar months, as the UTC clock counts them).
function backtestInstant(until) {
  const made = new Date(until.getTime());
  made.setUTCMonth(made.getUTCMonth() - Number($("backtest-back").value));
  return made;
}

async function refreshBacktest() {
  if (!$("token").value) return;
  const until = asOf();
  const made = backtestInstant(until);
  const params = new URLSearchParams({ as_of: made.toISOString(), grain: $("backtest-grain").value,
                                       periods: $("backtest-periods").value, level: "80" });
  if (Number($("as-of").value) !== 0) params.set("actual_as_of", until.toISOString());
  try {
    const report = await api(`/forecast/backtest?${params}`);
    zone = report.zone || zone;
    $("backtest-caption").className = "caption";
    $("backtest-caption").textContent = `forecast made ${localTime(report.as_of)} · actual as of ` +
      `${localTime(report.actual_as_of)} · ${report.level_percent}% intervals · ${report.currency}`;
    drawBacktest(report);
    $("backtest-panel").dataset.loaded = `${until.toISOString()} ${made.toISOString()} ${report.grain}`;
  } catch (error) {
    $("backtest-caption").className = "caption error";
    $("backtest-caption").textContent = error.message;
  }
}

function drawBacktest(report) {
  const history = report.history.slice(-12); // the periods the methods fitted: the last twelve for context
  const traces = [{ type: "scatter", mode: "lines+markers", name: "实际 / actual",
                    x: [...history.map((p) => p.period), ...report.actuals.map((p) => p.period)],
                    y: [...history.map((p) => units(p.won_cents)), ...report.actuals.map((p) => units(p.won_cents))],
                    line: { color: "#1f2933", width: 3 } }];
  for (const method of report.methods.filter((m) => m.available)) {
    traces.push(...methodTraces(method));
  }
  Plotly.react("backtest-chart", traces, {
    height: 340, margin: { l: 70, r: 20, t: 20, b: 40 }, legend: { orientation: "h", y: -0.15 },
    yaxis: { title: { text: report.currency } },
    shapes: [{ type: "line", xref: "x", yref: "paper", x0: report.horizon[0].period, x1: report.horizon[0].period,
               y0: 0, y1: 1, line: { color: "#9aa5b1", dash: "dot" } }],
  }, { displayModeBar: false, responsive: true });
  fillRows($("backtest").tBodies[0], report.methods.map((m) => [m.label || m.method,
    m.available ? (m.basis || "") : `n/a (${m.reason})`,
    m.errors ? String(m.errors.periods_compared) : "–", m.errors ? moneyOrDash(m.errors.mae_cents) : "–",
    m.errors ? percentText(m.errors.mape_percent) : "–", m.errors ? moneyOrDash(m.errors.bias_cents) : "–",
    m.errors ? percentText(m.errors.coverage_percent) : "–"]))
    .forEach((tr, i) => { tr.dataset.method = report.methods[i].method; });
}

const moneyOrDash = (cents) => (cents === null || cents === undefined ? "–" : money(cents));

// A method's interval as a shaded band (upper, then lower filled up to it) and its forecast as a dashed line.
function methodTraces(method) {
  const color = METHOD_COLORS[method.method] || "#4a5568";
  const x = method.periods.map((p) => p.period);
  const band = method.periods.some((p) => p.lower_cents !== null);
  const traces = [];
  if (band) {
    traces.push({ type: "scatter", mode: "lines", x, y: method.periods.map((p) => units(p.upper_cents)),
                  line: { width: 0, color }, showlegend: false, hoverinfo: "skip", legendgroup: method.method });
    traces.push({ type: "scatter", mode: "lines", x, y: method.periods.map((p) => units(p.lower_cents)),
                  fill: "tonexty", fillcolor: `${color}33`, line: { width: 0, color }, hoverinfo: "skip",
                  name: `${method.method} interval`, legendgroup: method.method, showlegend: false });
  }
  traces.push({ type: "scatter", mode: "lines+markers", name: method.label || method.method, x,
                y: method.periods.map((p) => units(p.forecast_cents)), legendgroup: method.method,
                line: { color, dash: "dash" }, meta: method.method });
  return traces;
}

$("backtest-controls").addEventListener("change", refreshBacktest);
$("backtest-controls").addEventListener("submit", (event) => { event.preventDefault(); refreshBacktest(); });
