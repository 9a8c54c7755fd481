"""The dashboard page: the summary drawn server-side as inline SVG. No script, no external URL."""
from __future__ import annotations

import math
from html import escape
from urllib.parse import urlencode

COLORS = {"success": "#2e7d32", "failed": "#c62828", "running": "#1565c0", "queued": "#9e9e9e",
          "none": "#bdbdbd"}
STATE_ORDER = ["success", "failed", "running", "queued"]


def _color(state: str) -> str:
    return COLORS.get(state, "#6d4c41")


def _states(found) -> list[str]:
    return [s for s in STATE_ORDER if s in found] + sorted(s for s in found if s not in STATE_ORDER)


def _legend(states: list[str]) -> str:
    return "".join(f'<span class="key"><i style="background:{_color(s)}"></i>{escape(s)}</span>' for s in states)


def runs_per_day_svg(rows: list[dict]) -> str:
    width, height, pad = 640, 220, 30
    top = max([sum(r["states"].values()) for r in rows] + [1])
    slot = (width - pad) / max(len(rows), 1)
    bar = max(slot * 0.7, 1)
    parts = [f'<svg class="panel-svg" id="runs-per-day" viewBox="0 0 {width} {height + 20}" role="img" '
             f'aria-label="Runs per day by state">',
             f'<text x="0" y="12" class="axis">{top}</text>',
             f'<line x1="{pad}" y1="{height}" x2="{width}" y2="{height}" stroke="#888"/>']
    for i, row in enumerate(rows):
        x, y = pad + i * slot, float(height)
        for state in _states(row["states"]):
            n = row["states"][state]
            h = (height - 16) * n / top
            y -= h
            parts.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar:.1f}" height="{h:.1f}" '
                         f'fill="{_color(state)}"><title>{escape(row["day"])} {escape(state)}: {n}</title></rect>')
        if len(rows) <= 14 or i % math.ceil(len(rows) / 14) == 0:
            parts.append(f'<text x="{x:.1f}" y="{height + 14}" class="axis">{escape(row["day"][5:])}</text>')
    parts.append("</svg>")
    return "".join(parts)


def donut_svg(by_state: dict[str, int], success_rate: float | None) -> str:
    total = sum(by_state.values())
    r, c = 70, 2 * math.pi * 70
    parts = ['<svg class="panel-svg" id="runs-by-state" viewBox="0 0 200 200" role="img" '
             'aria-label="Runs by state">',
             '<circle cx="100" cy="100" r="70" fill="none" stroke="#eee" stroke-width="28"/>']
    offset = 0.0
    for state in _states(by_state):
        length = c * by_state[state] / total if total else 0
        parts.append(f'<circle cx="100" cy="100" r="{r}" fill="none" stroke="{_color(state)}" stroke-width="28" '
                     f'stroke-dasharray="{length:.2f} {c - length:.2f}" stroke-dashoffset="{-offset:.2f}" '
                     f'transform="rotate(-90 100 100)"><title>{escape(state)}: {by_state[state]}</title></circle>')
        offset += length
    rate = "–" if success_rate is None else f"{success_rate:.0%}"
    parts.append(f'<text x="100" y="100" text-anchor="middle" class="big">{rate}</text>'
                 f'<text x="100" y="120" text-anchor="middle" class="axis">success rate</text></svg>')
    return "".join(parts)


def per_dag_svg(rows: list[dict]) -> str:
    width, line = 640, 22
    height = max(len(rows), 1) * line + 4
    top = max([r["total"] for r in rows] + [1])
    label = 230
    parts = [f'<svg class="panel-svg" id="runs-per-dag" viewBox="0 0 {width} {height}" role="img" '
             f'aria-label="Runs per DAG">']
    for i, row in enumerate(rows):
        y, x = i * line + 2, float(label)
        parts.append(f'<text x="{label - 6}" y="{y + 14}" text-anchor="end" class="axis">'
                     f'{escape(row["dag_id"])}</text>')
        for state in _states(row["states"]):
            w = (width - label - 50) * row["states"][state] / top
            parts.append(f'<rect x="{x:.1f}" y="{y}" width="{w:.1f}" height="{line - 6}" fill="{_color(state)}">'
                         f'<title>{escape(row["dag_id"])} {escape(state)}: {row["states"][state]}</title></rect>')
            x += w
        parts.append(f'<text x="{x + 4:.1f}" y="{y + 14}" class="axis">{row["total"]}</text>')
    parts.append("</svg>")
    return "".join(parts)


def gcp_line(gcp: dict | None) -> str:
    """Which GCP the DAGs use: the emulators or the learner's project (docs/gcp.md)."""
    if not gcp:
        return ""
    if gcp.get("mode") == "real":
        what = f'<b>real</b>: project {escape(gcp.get("project") or "(not set)")}'
    else:
        what = "<b>emulators</b> (local, offline)"
    return f'<p id="gcp-mode">GCP: {what}</p>'


def page(data: dict, base_path: str = "") -> str:
    window = data["window"]
    all_states = _states({s for r in data["runs_per_day"] for s in r["states"]} | set(data["runs_by_state"]))
    options = ['<option value="">all tags</option>'] + [
        f'<option value="{escape(t)}"{" selected" if t == window["tag"] else ""}>{escape(t)}</option>'
        for t in data["tags"]]
    next_rows = "".join(
        f'<tr><td>{escape(r["dag_id"])}</td><td>{escape(r["next_logical_date"] or "–")}</td>'
        f'<td>{escape(r["next_run_after"] or "–")}</td></tr>' for r in data["next_runs"]
    ) or '<tr><td colspan="3">no scheduled runs (unpaused DAGs with a schedule)</td></tr>'
    api = f'{base_path}/api/summary?{urlencode({"days": window["days"], "tag": window["tag"] or ""})}'
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Zoomcamp dashboard</title>
<style>
body{{font-family:system-ui,sans-serif;margin:1rem 2rem;color:#222}}
.grid{{display:grid;grid-template-columns:repeat(auto-fit,minmax(420px,1fr));gap:1rem}}
section{{border:1px solid #ddd;border-radius:6px;padding:.5rem 1rem}}
h2{{font-size:1rem;margin:.3rem 0}} .panel-svg{{width:100%;height:auto}}
.axis{{font-size:10px;fill:#555}} .big{{font-size:28px;font-weight:600}}
.key{{margin-right:1rem;font-size:.85rem}} .key i{{display:inline-block;width:10px;height:10px;margin-right:4px}}
table{{border-collapse:collapse;font-size:.85rem}} td,th{{padding:2px 8px;border-bottom:1px solid #eee;text-align:left}}
</style></head><body>
<h1>Zoomcamp runs dashboard</h1>
{gcp_line(data.get("gcp"))}
<form method="get"><label>Days <input name="days" type="number" min="1" max="366" value="{window["days"]}"></label>
<label>Tag <select name="tag">{"".join(options)}</select></label> <button>Show</button>
<small>{escape(window["start"][:10])} – {escape(window["end"][:16])} UTC · {data["total_runs"]} runs ·
<a href="{escape(api)}">JSON</a></small></form>
<p>{_legend(all_states)}</p>
<div class="grid">
<section><h2>Runs per day by state</h2>{runs_per_day_svg(data["runs_per_day"])}</section>
<section><h2>Runs by state · success rate: {data["runs_by_state"].get("success", 0)} successful
of {data["finished_runs"]} finished</h2>
{donut_svg(data["runs_by_state"], data["success_rate"])}</section>
<section><h2>Runs per DAG</h2>{per_dag_svg(data["runs_per_dag"])}</section>
<section><h2>Next scheduled runs</h2><table id="next-runs"><tr><th>DAG</th><th>next logical date</th>
<th>runs after</th></tr>{next_rows}</table></section>
</div></body></html>"""
