//! The harness's report: a markdown table of every figure beside its target, and an SVG chart
//! of throughput and latency (plain SVG text: no image or font crates, opens in any browser).

use std::fmt::Write;
use std::path::Path;

use anyhow::Context;

use super::Results;

fn status(met: bool) -> &'static str {
    if met {
        "met"
    } else {
        "**not met**"
    }
}

fn n(v: f64) -> String {
    let s = format!("{:.0}", v);
    let (sign, digits) = s.split_at(usize::from(s.starts_with('-')));
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    format!("{sign}{out}")
}

/// The markdown report: targets first, then the detail of each phase.
pub fn markdown(r: &Results) -> String {
    let mut md = String::new();
    let _ = writeln!(md, "Machine: {}\n", r.machine);
    let _ = writeln!(md, "| Measure | Result | Target | Status |");
    let _ = writeln!(md, "| --- | --- | --- | --- |");
    if let Some(k) = &r.kafka {
        if let (Some(l), Some(e)) = (&k.limit, &k.embedded) {
            let ratio = e.per_s / l.per_s;
            let _ = writeln!(md, "| Pipeline -> embedded store vs bare consumer, {} events | {} vs {} events/s = {:.0}% | >= 90% of the limit | {} |", n(e.messages as f64), n(e.per_s), n(l.per_s), ratio * 100.0, status(ratio >= 0.9));
        }
        if let (Some(l), Some(c)) = (&k.limit, &k.clickhouse) {
            let _ = writeln!(md, "| Pipeline -> ClickHouse vs bare consumer | {} vs {} events/s = {:.0}% | (reported) | - |", n(c.per_s), n(l.per_s), 100.0 * c.per_s / l.per_s);
        }
        if let Some(f) = &k.freshness {
            let _ = writeln!(md, "| Freshness at {} events/s (produce -> score visible in the API), {} probes | p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms, {} timed out | p99 < 500 ms | {} |", n(f64::from(f.rate)), f.probes, f.p50_ms, f.p99_ms, f.max_ms, f.timed_out, status(f.p99_ms < 500.0 && f.timed_out == 0));
            if let Some((p50, p99)) = f.ack_ms {
                let _ = writeln!(md, "| The same probes, produce -> acked by the broker (acks=all) | p50 {p50:.0} ms, p99 {p99:.0} ms | (reported) | - |");
            }
        }
        if let Some(f) = &k.freshness_limit {
            let _ = writeln!(md, "| Freshness limit: the same stream and probes, produce -> received by a bare consumer, no pipeline running, {} probes | p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms, {} not seen | (the broker's share) | - |", f.probes, f.p50_ms, f.p99_ms, f.max_ms, f.timed_out);
        }
    }
    if let Some(e) = &r.engine {
        let _ = writeln!(md, "| Engine alone, {} contacts, {} events in memory | {} events/s | >= 300,000 events/s | {} |", n(e.contacts as f64), n(e.events as f64), n(e.events_per_s), status(e.events_per_s >= 300_000.0));
    }
    for a in &r.api {
        let _ = writeln!(md, "| API `{}` at {} req/s{} | p50 {:.2} ms, p99 {:.2} ms, {} errors, {} shed ({} req/s answered) | p99 < 10 ms, 0 errors | {} |", a.route, n(f64::from(a.target_rps)), r.engine.as_ref().map_or(String::new(), |e| format!(", {} contacts", n(e.contacts as f64))), a.p50_ms, a.p99_ms, a.errors, a.shed, n(a.achieved_rps), status(a.p99_ms < 10.0 && a.errors == 0 && a.shed == 0));
    }
    if let [one, ten, hundred] = r.growth.as_slice() {
        let cost = |x: &super::engine::EngineResult| 1.0 - x.events_per_s / one.events_per_s;
        let _ = writeln!(
            md,
            "| Retained window x10: throughput cost | {:.0}% ({} -> {} events/s) | < 20% | {} |",
            cost(ten) * 100.0,
            n(one.events_per_s),
            n(ten.events_per_s),
            status(cost(ten) < 0.2)
        );
        let _ = writeln!(
            md,
            "| Retained window x100: throughput cost | {:.0}% ({} events/s) | (reported) | - |",
            cost(hundred) * 100.0,
            n(hundred.events_per_s)
        );
        let worst = r
            .growth
            .iter()
            .map(|g| g.bytes_per_retained_event)
            .fold(0.0, f64::max);
        let _ = writeln!(md, "| Memory per retained event (x1 / x10 / x100) | {} / {} / {} bytes | < 300 bytes | {} |", n(one.bytes_per_retained_event), n(ten.bytes_per_retained_event), n(hundred.bytes_per_retained_event), status(worst < 300.0));
    }
    if let Some(b) = &r.rebuild {
        let ten_m = 10_000_000.0 / b.events_per_s;
        let _ = writeln!(md, "| Rebuild of state from the store | {} events in {:.1} s ({} events/s; 10M events: {:.0} s at this rate) | 10M events < 60 s | {} |", n(b.events as f64), b.rebuild_seconds, n(b.events_per_s), ten_m, status(ten_m < 60.0));
        let _ = writeln!(md, "| Opening the store before the rebuild (profiles and activity into the read model) | {:.1} s | (reported) | - |", b.open_seconds);
        let _ = writeln!(md, "| First evaluation of every contact after the rebuild | {} contacts in {:.1} s | (reported) | - |", n(b.contacts as f64), b.evaluate_seconds);
    }
    if let Some(a) = &r.analyst {
        let best = a.refresh_ms.iter().copied().fold(f64::INFINITY, f64::min);
        let fresh = r
            .kafka
            .as_ref()
            .and_then(|k| k.freshness.as_ref())
            .map_or(String::from("n/a"), |f| format!("{:.0} ms", f.p99_ms));
        let _ = writeln!(md, "| Analyst instead: ClickHouse recompute of every lead score from `events`, {} contacts, {} events | {:.0} ms per refresh (best of {}; all: {}) vs KeyFlow freshness p99 {fresh} | (comparison) | - |", n(a.contacts as f64), n(a.events as f64), best, a.refresh_ms.len(), a.refresh_ms.iter().map(|m| format!("{m:.0}")).collect::<Vec<_>>().join(", "));
    } else if let Some(e) = &r.analyst_error {
        let _ = writeln!(
            md,
            "| Analyst ClickHouse recompute | skipped: {e} | (comparison) | - |"
        );
    }

    let _ = writeln!(md, "\n### Detail\n");
    if let Some(e) = &r.engine {
        let _ = writeln!(md, "- Engine ({} contacts): generated in {:.1} s; {} batches; decode + state {:.1} s, evaluation {:.1} s, waiting for the previous write {:.1} s; store writes busy {:.1} s, each beside the next batch; {} profiles written; RSS {:.0} MB with the input in memory, {:.0} MB at the end.", n(e.contacts as f64), e.generate_seconds, e.batches, e.decode_seconds, e.evaluate_seconds, e.write_wait_seconds, e.write_seconds, n(e.profiles_written as f64), e.rss_generated_mb, e.rss_end_mb);
    }
    if let Some(m) = &r.memory {
        if let Some(k) = &m.retained {
            let per = |mb: f64| n(mb * 1024.0 * 1024.0 / m.accepted.max(1) as f64);
            let held = |h: &super::engine::Held| {
                format!(
                    "{:.0} MB of pages ({} bytes per event), {:.0} MB of heap ({} bytes per event)",
                    h.rss_mb,
                    per(h.rss_mb),
                    h.heap_mb,
                    per(h.heap_mb)
                )
            };
            let _ = writeln!(md, "- Memory at the end of an engine run ({} contacts, {} accepted events; each owner dropped in turn, the RSS and the heap bytes held read after each, mimalloc purging at once): engine state's facts (bookings, invoices, tasks, notes) {}; the rest of the engine state {}; read model's recent activity {}; read model's profiles {}; the generated input {}; what stays (runtime, plans, allocator) {:.0} MB.", n(m.contacts as f64), n(m.accepted as f64), k.engine_facts.as_ref().map_or("not measured".into(), held), held(&k.engine_state), held(&k.activity), held(&k.profiles), held(&k.input), k.rest_mb);
        }
    }
    for g in &r.growth {
        let _ = writeln!(md, "- Window x{}: {} contacts, {} events, {} events/s (evaluation {:.1} s of {:.1} s), RSS +{:.0} MB = {} bytes per retained event.", g.window_scale, n(g.contacts as f64), n(g.events as f64), n(g.events_per_s), g.evaluate_seconds, g.seconds, g.rss_end_mb - g.rss_generated_mb, n(g.bytes_per_retained_event));
    }
    if let Some(b) = &r.rebuild {
        let _ = writeln!(
            md,
            "- Rebuild: {} partitions, {} contacts, RSS {:.0} MB at the end.",
            b.partitions,
            n(b.contacts as f64),
            b.rss_end_mb
        );
    }
    if let Some(rss) = r.api_server_rss_mb {
        let peak = r
            .api_server_peak_rss_mb
            .map_or(String::new(), |p| format!(", peak {p:.0} MB during it"));
        let _ = writeln!(md, "- API server process (store index of every contact loaded): RSS {rss:.0} MB after the load{peak}.");
    }
    for a in &r.api {
        let _ = writeln!(
            md,
            "- API `{}`: {} requests over {}, {} ok, {} shed (503 overloaded), p99.9 {:.2} ms, max {:.1} ms{}.",
            a.route,
            n(a.requests as f64),
            match a.connections {
                0 => "a new connection whenever none was idle".to_owned(),
                c => format!("{c} keep-alive connections"),
            },
            n(a.ok as f64),
            n(a.shed as f64),
            a.p999_ms,
            a.max_ms,
            a.first_error
                .as_ref()
                .map_or(String::new(), |e| format!(", first error: {e}"))
        );
    }
    if let Some(k) = &r.kafka {
        if let Some(p) = &k.produce {
            let _ = writeln!(md, "- Produce of the broker phase's input: {} events at {} events/s (acks=all, linger 20 ms).", n(p.messages as f64), n(p.per_s));
        }
        for t in [&k.embedded, &k.clickhouse].into_iter().flatten() {
            if !t.busy.is_empty() {
                let _ = writeln!(
                    md,
                    "- {}: {:.2} s; the processor's time by stage: {}.",
                    t.what,
                    t.seconds,
                    super::kafka::show_busy(&t.busy)
                );
            }
        }
        if let Some(e) = &k.clickhouse_error {
            let _ = writeln!(md, "- ClickHouse pipeline skipped: {e}");
        }
        if let Some(f) = &k.freshness {
            let _ = writeln!(
                md,
                "- Freshness: {} live events acknowledged by the broker during the phase, in {} micro-batches; the processor's time by stage: {}.",
                n(f.produced as f64),
                f.batches,
                super::kafka::show_busy(&f.busy)
            );
        }
    }
    if let Some(a) = &r.analyst {
        let _ = writeln!(
            md,
            "- Analyst table filled server-side in {:.1} s; the query returned {} rows.",
            a.load_seconds,
            n(a.rows as f64)
        );
    }
    md
}

/// Escapes text for SVG.
fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Width and height of one panel of the chart, in SVG units.
const PANEL: (f64, f64) = (600.0, 560.0);

/// One bar panel at horizontal offset `x0`: a bar per item with its value above it, the unit on
/// the y axis, and a red line at the target if there is one.
fn bars(
    svg: &mut String,
    x0: f64,
    title: &str,
    unit: &str,
    items: &[(String, f64)],
    target: Option<(f64, &str)>,
) {
    if items.is_empty() {
        return;
    }
    let top = items
        .iter()
        .map(|i| i.1)
        .chain(target.map(|t| t.0))
        .filter(|v| v.is_finite())
        .fold(1.0, f64::max)
        * 1.15;
    let (left, right, top_y, bottom) = (x0 + 90.0, x0 + PANEL.0 - 20.0, 60.0, PANEL.1 - 80.0);
    let y = |v: f64| bottom - (v.max(0.0) / top) * (bottom - top_y);
    let _ = writeln!(
        svg,
        r#"<text x="{:.1}" y="32" font-size="22" text-anchor="middle">{}</text>"#,
        x0 + PANEL.0 / 2.0,
        esc(title)
    );
    let _ = writeln!(
        svg,
        r#"<line x1="{left}" y1="{bottom}" x2="{right}" y2="{bottom}" stroke="black"/><line x1="{left}" y1="{top_y}" x2="{left}" y2="{bottom}" stroke="black"/>"#
    );
    for i in 0..=4 {
        let v = top * f64::from(i) / 4.0;
        let _ = writeln!(
            svg,
            r#"<text x="{:.1}" y="{:.1}" font-size="12" text-anchor="end">{}</text>"#,
            left - 6.0,
            y(v) + 4.0,
            n(v)
        );
    }
    let _ = writeln!(
        svg,
        r#"<text x="{:.1}" y="{:.1}" font-size="13" transform="rotate(-90 {:.1} {:.1})" text-anchor="middle">{}</text>"#,
        x0 + 20.0,
        (top_y + bottom) / 2.0,
        x0 + 20.0,
        (top_y + bottom) / 2.0,
        esc(unit)
    );
    let slot = (right - left) / items.len() as f64;
    for (i, (label, v)) in items.iter().enumerate() {
        let v = if v.is_finite() { *v } else { 0.0 };
        let (bx, bw) = (left + slot * i as f64 + 10.0, (slot - 20.0).max(2.0));
        let cx = bx + bw / 2.0;
        let _ = writeln!(
            svg,
            r#"<rect x="{bx:.1}" y="{:.1}" width="{bw:.1}" height="{:.1}" fill="rgb(60,110,180)"/>"#,
            y(v),
            bottom - y(v)
        );
        let _ = writeln!(
            svg,
            r#"<text x="{cx:.1}" y="{:.1}" font-size="13" text-anchor="middle">{}</text>"#,
            y(v) - 6.0,
            n(v)
        );
        let _ = writeln!(
            svg,
            r#"<text x="{cx:.1}" y="{:.1}" font-size="13" text-anchor="middle">{}</text>"#,
            bottom + 20.0,
            esc(label)
        );
    }
    if let Some((t, label)) = target {
        let _ = writeln!(
            svg,
            r#"<line x1="{left}" y1="{:.1}" x2="{right}" y2="{:.1}" stroke="red" stroke-width="2"/><text x="{:.1}" y="{:.1}" font-size="13" fill="red" text-anchor="end">{}</text>"#,
            y(t),
            y(t),
            right,
            y(t) - 6.0,
            esc(label)
        );
    }
}

/// Throughput (events/s), API latency p99 (ms) and freshness (ms), side by side, as SVG.
pub fn chart(r: &Results, file: &Path) -> anyhow::Result<()> {
    let mut svg = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="sans-serif"><rect width="100%" height="100%" fill="white"/>"#,
        w = PANEL.0 * 3.0,
        h = PANEL.1
    );
    svg.push('\n');
    let mut tput = Vec::new();
    if let Some(k) = &r.kafka {
        for (name, t) in [
            ("bare consumer", &k.limit),
            ("-> embedded", &k.embedded),
            ("-> ClickHouse", &k.clickhouse),
        ] {
            if let Some(t) = t {
                tput.push((name.to_string(), t.per_s));
            }
        }
    }
    if let Some(e) = &r.engine {
        tput.push((format!("engine {}k", e.contacts / 1000), e.events_per_s));
    }
    for g in &r.growth {
        tput.push((format!("window x{}", g.window_scale), g.events_per_s));
    }
    bars(&mut svg, 0.0, "Throughput", "events/s", &tput, None);
    let api: Vec<(String, f64)> = r
        .api
        .iter()
        .map(|a| (a.route.replace("search ", ""), a.p99_ms))
        .collect();
    let rate = r.api.first().map_or(0, |a| a.target_rps);
    bars(
        &mut svg,
        PANEL.0,
        &format!("API p99 at {rate} req/s"),
        "ms",
        &api,
        Some((10.0, "target 10 ms")),
    );
    let mut fresh = Vec::new();
    if let Some(f) = r.kafka.as_ref().and_then(|k| k.freshness.as_ref()) {
        fresh.push(("freshness p50".to_string(), f.p50_ms));
        fresh.push(("freshness p99".to_string(), f.p99_ms));
    }
    if let Some(f) = r.kafka.as_ref().and_then(|k| k.freshness_limit.as_ref()) {
        fresh.push(("broker alone p99".to_string(), f.p99_ms));
    }
    if let Some(a) = &r.analyst {
        let best = a.refresh_ms.iter().copied().fold(f64::INFINITY, f64::min);
        fresh.push(("ClickHouse recompute".to_string(), best));
    }
    bars(
        &mut svg,
        2.0 * PANEL.0,
        "Freshness vs analyst refresh",
        "ms",
        &fresh,
        Some((500.0, "target p99 500 ms")),
    );
    svg.push_str("</svg>\n");
    std::fs::write(file, svg).with_context(|| format!("writing {}", file.display()))?;
    Ok(())
}
