/* global fetch, URL, URLSearchParams */
/**
 * A preview of the Agora dashboard without Grafana: every panel of
 * deploy/grafana/dashboards/agora.json, laid out on its grid, with its own PromQL queries run
 * against a real Prometheus, drawn as plain SVG into one HTML page. It is what docs/operations.md
 * shows (a headless Chromium screenshot of this page); Grafana itself draws the same queries.
 *
 *   node deploy/grafana/preview.mjs http://127.0.0.1:9090 15 > preview.html   # last 15 minutes
 *   node deploy/grafana/preview.mjs http://127.0.0.1:9090 5 2026-12-02T01:37:00Z > preview.html
 *   chromium --headless --screenshot=dashboard.png --window-size=1600,2100 preview.html
 *
 * `$__rate_interval` becomes 30s: what Grafana picks for a 5 s scrape interval and this range.
 */
import fs from "node:fs";

const [prometheus = "http://127.0.0.1:9090", minutes = "15", until] = process.argv.slice(2);
const dashboard = JSON.parse(
    fs.readFileSync(new URL("./dashboards/agora.json", import.meta.url), "utf8"),
);
// The window ends now, or at an ISO time given third (to show a moment of traffic).
const end = Math.floor((until ? Date.parse(until) : Date.now()) / 1000);
const start = end - Number(minutes) * 60;
const STEP = 10;
const COLORS = ["#3274d9", "#e0752d", "#56a64b", "#d44a3a", "#a352cc", "#f2cc0c", "#2fb5b5"];
const UNIT_PX = 64; // one of the 24 grid columns
const ROW_PX = 30; // one grid row

const escape = text =>
    String(text).replace(
        /[&<>"]/g,
        c => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c],
    );

async function query(expr, instant) {
    const promql = expr.replaceAll("$__rate_interval", "30s");
    const params = new URLSearchParams(
        instant ? { query: promql, time: String(end) } : { query: promql, start, end, step: STEP },
    );
    const response = await fetch(
        `${prometheus}/api/v1/${instant ? "query" : "query_range"}?${params}`,
    );
    const body = await response.json();
    if (body.status !== "success") throw new Error(`${promql}: ${body.error}`);
    return body.data.result;
}

function legend(format, metric) {
    if (!format) return Object.values(metric).join(" ") || "value";
    return format.replace(/\{\{\s*(\w+)\s*\}\}/g, (_, label) => metric[label] ?? "");
}

function formatValue(value, unit) {
    if (!Number.isFinite(value)) return "–";
    if (unit === "percentunit") return `${(value * 100).toFixed(1)} %`;
    if (unit === "s")
        return value < 1 ? `${(value * 1000).toFixed(0)} ms` : `${value.toFixed(2)} s`;
    if (unit === "ms") return `${value.toFixed(0)} ms`;
    if (unit === "ops" || unit === "reqps") return `${value.toFixed(2)}/s`;
    return Math.abs(value) >= 100 ? value.toFixed(0) : value.toFixed(2).replace(/\.?0+$/, "");
}

function timeseries(series, width, height, unit) {
    const values = series.flatMap(s => s.points.map(([, v]) => v)).filter(Number.isFinite);
    const max = Math.max(...values, 0) * 1.1 || 1;
    const x = t => 50 + ((t - start) / (end - start)) * (width - 60);
    const y = v => 10 + (1 - v / max) * (height - 30);
    const lines = series.map(
        (s, i) =>
            `<polyline fill="none" stroke="${COLORS[i % COLORS.length]}" stroke-width="1.6" points="${s.points
                .filter(([, v]) => Number.isFinite(v))
                .map(([t, v]) => `${x(t).toFixed(1)},${y(v).toFixed(1)}`)
                .join(" ")}"/>`,
    );
    const grid = [0, 0.5, 1].map(
        f =>
            `<line x1="50" x2="${width - 10}" y1="${y(max * f)}" y2="${y(max * f)}" stroke="#333"/>` +
            `<text x="46" y="${y(max * f) + 4}" text-anchor="end">${escape(formatValue(max * f, unit))}</text>`,
    );
    const times = [0, 0.5, 1].map(f => {
        const t = start + f * (end - start);
        const label = new Date(t * 1000).toISOString().slice(11, 16);
        return `<text x="${x(t)}" y="${height - 4}" text-anchor="middle">${label}</text>`;
    });
    return `<svg width="${width}" height="${height}">${grid.join("")}${times.join("")}${lines.join("")}</svg>`;
}

async function renderPanel(panel) {
    const width = panel.gridPos.w * UNIT_PX - 16;
    const height = panel.gridPos.h * ROW_PX - 16;
    const style = `left:${panel.gridPos.x * UNIT_PX}px;top:${panel.gridPos.y * ROW_PX}px;width:${width}px;height:${height}px`;
    if (panel.type === "row") {
        return `<div class="row" style="${style}">${escape(panel.title)}</div>`;
    }
    const unit = panel.fieldConfig?.defaults?.unit;
    const instant = panel.type === "stat";
    const series = [];
    for (const target of panel.targets ?? []) {
        for (const result of await query(target.expr, instant)) {
            series.push({
                name: legend(target.legendFormat, result.metric),
                points: (result.values ?? [result.value]).map(([t, v]) => [t, Number(v)]),
            });
        }
    }
    let body;
    if (instant) {
        body = `<div class="stat">${series
            .map(
                s =>
                    `<div><b>${escape(formatValue(s.points[0][1], unit))}</b><span>${escape(s.name)}</span></div>`,
            )
            .join("")}</div>`;
    } else {
        const legendRows = series
            .map(
                (s, i) =>
                    `<span><i style="background:${COLORS[i % COLORS.length]}"></i>${escape(s.name)}</span>`,
            )
            .join("");
        body =
            timeseries(series, width - 16, height - 70, unit) +
            `<div class="legend">${legendRows}</div>`;
    }
    return `<div class="panel" style="${style}"><h3>${escape(panel.title)}</h3>${body}</div>`;
}

const panels = await Promise.all(dashboard.panels.map(renderPanel));
const bottom = Math.max(...dashboard.panels.map(p => (p.gridPos.y + p.gridPos.h) * ROW_PX));
process.stdout
    .write(`<!doctype html><html><head><meta charset="utf-8"><title>${escape(dashboard.title)}</title>
<style>
body{margin:0;background:#111217;color:#ccccdc;font:12px "DejaVu Sans",sans-serif}
header{padding:10px 16px;font-size:16px}
header small{color:#8e8e9e;margin-left:12px;font-size:12px}
main{position:relative;height:${bottom}px;margin:0 8px}
.panel,.row{position:absolute;box-sizing:border-box}
.panel{background:#181b1f;border:1px solid #2c3235;border-radius:3px;padding:6px 8px;overflow:hidden}
.row{font-size:14px;font-weight:bold;padding-top:6px}
h3{margin:0 0 4px;font-size:12px;font-weight:600}
svg text{fill:#8e8e9e;font-size:10px}
.stat{display:flex;flex-wrap:wrap;gap:12px;align-items:center;height:80%}
.stat div{display:flex;flex-direction:column}.stat b{font-size:26px;color:#73bf69}
.legend{display:flex;flex-wrap:wrap;gap:4px 12px;font-size:10px;margin-top:2px}
.legend i{display:inline-block;width:10px;height:3px;margin-right:4px;vertical-align:middle}
</style></head><body>
<header>${escape(dashboard.title)}<small>preview of deploy/grafana/dashboards/agora.json: its queries on ${escape(prometheus)}, ${escape(new Date(start * 1000).toISOString())} to ${escape(new Date(end * 1000).toISOString())}</small></header>
<main>${panels.join("\n")}</main></body></html>
`);
