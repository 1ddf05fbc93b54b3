/**
 * The admin dashboard: one static page (no build step, no data of its own)
 * that calls the admin API from the browser with the token the operator
 * types in (kept in the tab's `sessionStorage`): an instance's counts, its
 * jobs with filters and actions, the start-drift histogram and outcomes over
 * time (from the metrics, polled), its crons and its pools.
 */

/** The page, for an API under `prefix`. */
export const page = (prefix: string): string => `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>@lunora/scheduler</title>
<style>
  :root { font: 14px/1.4 system-ui, sans-serif; color: #1d2330; background: #f6f7f9; }
  body { margin: 0 auto; max-width: 1200px; padding: 16px 24px; }
  h1 { font-size: 20px; margin: 0 0 12px; } h2 { font-size: 15px; margin: 0 0 8px; }
  form, .bar { display: flex; gap: 8px; align-items: center; flex-wrap: wrap; margin-bottom: 12px; }
  input, select, button { font: inherit; padding: 4px 8px; border: 1px solid #c4c9d4; border-radius: 4px; background: #fff; }
  button { cursor: pointer; } button.primary { background: #2d5bd7; color: #fff; border-color: #2d5bd7; }
  section { background: #fff; border: 1px solid #e0e3ea; border-radius: 6px; padding: 12px 16px; margin-bottom: 16px; }
  .grid { display: grid; grid-template-columns: 1fr 1fr; gap: 16px; }
  table { border-collapse: collapse; width: 100%; } th, td { text-align: left; padding: 4px 8px; border-bottom: 1px solid #eef0f4; }
  th { font-weight: 600; color: #5a6275; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
  .stats { display: flex; gap: 12px; flex-wrap: wrap; } .stat { padding: 8px 12px; border-radius: 6px; background: #f0f2f7; min-width: 90px; }
  .stat b { display: block; font-size: 20px; } .state { padding: 1px 6px; border-radius: 8px; background: #eef0f4; font-size: 12px; }
  .state.deadLettered, .state.failed { background: #fde2e1; } .state.success { background: #dff5e3; } .state.inProgress { background: #e1ebff; }
  .bars { display: flex; align-items: flex-end; gap: 3px; height: 120px; } .bars div { flex: 1; background: #2d5bd7; min-height: 1px; position: relative; }
  .bars div span { position: absolute; bottom: -18px; left: 0; font-size: 10px; color: #5a6275; white-space: nowrap; }
  .fill { height: 8px; background: #eef0f4; border-radius: 4px; overflow: hidden; min-width: 80px; } .fill div { height: 100%; background: #2d5bd7; }
  #error { color: #b3261e; } .muted { color: #5a6275; }
</style>
</head>
<body>
<h1>@lunora/scheduler</h1>
<form id="connect">
  <label>Token <input id="token" type="password" autocomplete="off" required></label>
  <label>Instance <input id="instance" value="default" required></label>
  <button class="primary" type="submit">Load</button>
  <span id="error" role="alert"></span>
</form>
<section><h2>Jobs held</h2><div class="stats" id="stats"><span class="muted">not loaded</span></div></section>
<section>
  <h2>Jobs</h2>
  <div class="bar">
    <label>State <select id="state"><option value="">any</option><option>pending</option><option>inProgress</option>
      <option>success</option><option>failed</option><option>canceled</option><option>deadLettered</option></select></label>
    <label>Function <input id="functionPath" placeholder="namespace:function"></label>
    <button id="more" type="button" hidden>More</button>
  </div>
  <table><thead><tr><th>Id</th><th>State</th><th>Function</th><th>Scheduled for</th><th>Attempt</th><th>Last error</th><th></th></tr></thead>
  <tbody id="jobs"></tbody></table>
</section>
<div class="grid">
  <section><h2>Start drift (ms)</h2><div class="bars" id="drift"></div><p class="muted" id="driftNote"></p></section>
  <section><h2>Outcomes over time</h2><div class="bars" id="outcomes"></div><table><tbody id="outcomeTable"></tbody></table></section>
</div>
<section><h2>Crons</h2><table><thead><tr><th>Name</th><th>Function</th><th>Next run</th><th>Last run</th><th>Last outcome</th><th></th></tr></thead><tbody id="crons"></tbody></table></section>
<section><h2>Pools</h2><table><thead><tr><th>Name</th><th>Fill</th><th>In flight</th><th>Cap</th><th>Queued</th><th>Dead letters</th><th>Paused</th><th></th></tr></thead><tbody id="pools"></tbody></table></section>
<script>
"use strict";
const prefix = ${JSON.stringify(prefix)};
const $ = (id) => document.getElementById(id);
let cursor = null;
let history = [];
let timer;
$("token").value = sessionStorage.getItem("lunora-token") ?? "";
$("instance").value = sessionStorage.getItem("lunora-instance") ?? "default";
const text = (value) => { const span = document.createElement("span"); span.textContent = value == null ? "" : String(value); return span.innerHTML; };
const when = (iso) => (iso ? new Date(iso).toLocaleString() : "");
async function api(method, path, body) {
  const response = await fetch(prefix + "/instances/" + encodeURIComponent($("instance").value) + path, {
    method,
    headers: { authorization: "Bearer " + $("token").value, ...(body === undefined ? {} : { "content-type": "application/json" }) },
    body: body === undefined ? undefined : JSON.stringify(body)
  });
  const answer = (response.headers.get("content-type") ?? "").includes("json") ? await response.json() : await response.text();
  if (!response.ok) throw new Error((answer && answer._tag ? answer._tag + ": " : "") + (answer && answer.message ? answer.message : response.status));
  return answer;
}
function act(label, run) {
  const button = document.createElement("button");
  button.type = "button";
  button.textContent = label;
  button.dataset.action = label.toLowerCase();
  button.onclick = async () => { try { button.disabled = true; await run(); await refresh(); } catch (e) { $("error").textContent = e.message; } };
  return button;
}
function row(cells, actions) {
  const tr = document.createElement("tr");
  tr.innerHTML = cells.map((cell) => "<td" + (typeof cell === "number" ? ' class="num"' : "") + ">" + (cell && cell.html ? cell.html : text(cell)) + "</td>").join("") + "<td></td>";
  for (const button of actions) tr.lastChild.append(button);
  return tr;
}
async function loadJobs(append) {
  const params = new URLSearchParams({ limit: "50" });
  if ($("state").value) params.set("state", $("state").value);
  if ($("functionPath").value) params.set("functionPath", $("functionPath").value);
  if (append && cursor) params.set("cursor", cursor);
  const page = await api("GET", "/jobs?" + params);
  if (!append) $("jobs").replaceChildren();
  for (const job of page.jobs) {
    const actions = [];
    if (job.state === "pending" || job.state === "inProgress") actions.push(act("Cancel", () => api("POST", "/jobs/" + job.id + "/cancel")));
    if (job.state === "deadLettered" || job.state === "failed") actions.push(act("Replay", () => api("POST", "/jobs/" + job.id + "/replay")));
    const tr = row([job.id, { html: '<span class="state ' + text(job.state) + '">' + text(job.state) + "</span>" }, job.functionPath, when(job.scheduledFor), job.attempt + " / " + job.maxAttempts, job.lastError ?? ""], actions);
    tr.dataset.job = job.id;
    $("jobs").append(tr);
  }
  cursor = page.cursor;
  $("more").hidden = cursor == null;
}
function bars(element, values, labels) {
  const most = Math.max(1, ...values);
  element.replaceChildren(...values.map((value, i) => {
    const bar = document.createElement("div");
    bar.style.height = (100 * value / most) + "%";
    bar.title = labels[i] + ": " + value;
    bar.innerHTML = i % 3 === 0 ? "<span>" + text(labels[i]) + "</span>" : "";
    return bar;
  }));
}
function drawMetrics(report) {
  const samples = report.shards.flatMap((shard) => shard.samples);
  const drift = samples.filter((s) => s.name === "lunora_scheduler_start_drift_ms");
  if (drift.length > 0) {
    const bounds = drift[0].buckets.map(([bound]) => bound);
    const cumulative = bounds.map((_, i) => drift.reduce((n, s) => n + s.buckets[i][1], 0));
    const counts = cumulative.map((n, i) => n - (i === 0 ? 0 : cumulative[i - 1]));
    bars($("drift"), counts, bounds.map((b) => (b === null ? "+Inf" : "≤" + b)));
    $("driftNote").textContent = drift.reduce((n, s) => n + s.count, 0) + " attempts started";
  } else $("driftNote").textContent = "no attempts yet (or metrics are off)";
  const outcomes = samples.filter((s) => s.name === "lunora_scheduler_outcomes_total");
  const total = outcomes.reduce((n, s) => n + s.value, 0);
  history.push({ at: new Date(), total });
  history = history.slice(-30);
  bars($("outcomes"), history.map((h, i) => (i === 0 ? 0 : Math.max(0, h.total - history[i - 1].total))), history.map((h) => h.at.toLocaleTimeString()));
  $("outcomeTable").replaceChildren(...outcomes.map((s) => row([s.labels.function_path, s.labels.result, s.value], [])));
}
async function refresh() {
  $("error").textContent = "";
  const [stats, crons, pools, report] = await Promise.all([api("GET", "/stats"), api("GET", "/crons"), api("GET", "/pools"), api("GET", "/metrics")]);
  $("stats").innerHTML = Object.entries(stats.jobs).map(([state, n]) => '<div class="stat" data-state="' + state + '"><b>' + n + "</b>" + state + "</div>").join("");
  await loadJobs(false);
  drawMetrics(report);
  $("crons").replaceChildren(...crons.map((cron) => row([cron.name, cron.functionPath, when(cron.nextRunAt), when(cron.lastRunAt), cron.lastOutcome ?? ""],
    [act("Trigger", () => api("POST", "/crons/trigger", { name: cron.name }))])));
  $("pools").replaceChildren(...pools.map((pool) => row([pool.name,
    { html: '<div class="fill"><div style="width:' + Math.min(100, 100 * pool.inFlight / pool.maxConcurrency) + '%"></div></div>' },
    pool.inFlight, pool.maxConcurrency, pool.queued, pool.deadLettered, pool.paused ? "yes" : "no"],
    [pool.paused ? act("Resume", () => api("POST", "/pools/" + pool.name + "/resume")) : act("Pause", () => api("POST", "/pools/" + pool.name + "/pause"))])));
  document.body.dataset.loaded = String(Date.now());
}
$("connect").onsubmit = async (event) => {
  event.preventDefault();
  sessionStorage.setItem("lunora-token", $("token").value);
  sessionStorage.setItem("lunora-instance", $("instance").value);
  history = [];
  clearInterval(timer);
  try { await refresh(); timer = setInterval(() => refresh().catch((e) => { $("error").textContent = e.message; }), 10000); }
  catch (e) { $("error").textContent = e.message; }
};
$("state").onchange = $("functionPath").onchange = () => loadJobs(false).catch((e) => { $("error").textContent = e.message; });
$("more").onclick = () => loadJobs(true).catch((e) => { $("error").textContent = e.message; });
</script>
</body>
</html>
`
