//! Inline SVG charts for the self-contained HTML report: no script, no external asset, so the
//! page renders the same in any browser and in a headless screenshot.
//!
//! Each function returns one `<svg>` element. Labels are XML-escaped here, once.

use std::fmt::Write as _;

/// The palette, chosen to stay distinguishable for the common colour-vision deficiencies.
pub const PALETTE: [&str; 10] = [
    "#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#ff9da7",
    "#9c755f", "#bab0ac",
];

/// Escape text for XML content and attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const W: f64 = 760.0;
const H: f64 = 320.0;
const LEFT: f64 = 64.0;
const RIGHT: f64 = 150.0;
const TOP: f64 = 20.0;
const BOTTOM: f64 = 48.0;

fn open(title: &str, height: f64) -> String {
    format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {height}" width="{W}" height="{height}" role="img" aria-label="{t}" font-family="sans-serif" font-size="12"><title>{t}</title>"#,
        t = esc(title)
    )
}

/// A "nice" upper bound for an axis: 1, 2 or 5 times a power of ten, at least `max`.
fn nice_max(max: f64) -> f64 {
    if !max.is_finite() || max <= 0.0 {
        return 1.0;
    }
    let p = 10f64.powf(max.log10().floor());
    for m in [1.0, 2.0, 2.5, 5.0, 10.0] {
        if m * p >= max {
            return m * p;
        }
    }
    10.0 * p
}

fn fmt_tick(v: f64, percent: bool) -> String {
    if percent {
        format!("{:.0}%", v * 100.0)
    } else if v.abs() >= 1_000_000.0 {
        format!("{:.1}M", v / 1_000_000.0)
    } else if v.abs() >= 1_000.0 {
        let k = v / 1_000.0;
        if k.fract() == 0.0 {
            format!("{k:.0}k")
        } else {
            format!("{k:.1}k")
        }
    } else if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

fn y_axis(svg: &mut String, ymax: f64, percent: bool) {
    let plot_h = H - TOP - BOTTOM;
    for i in 0..=4 {
        let v = ymax * f64::from(i) / 4.0;
        let y = TOP + plot_h - plot_h * f64::from(i) / 4.0;
        let _ = write!(
            svg,
            r##"<line x1="{LEFT}" x2="{x2}" y1="{y:.1}" y2="{y:.1}" stroke="#ddd"/><text x="{tx}" y="{ty:.1}" text-anchor="end" fill="#555">{label}</text>"##,
            x2 = W - RIGHT,
            tx = LEFT - 6.0,
            ty = y + 4.0,
            label = esc(&fmt_tick(v, percent))
        );
    }
}

fn x_labels(svg: &mut String, labels: &[String], step: f64, offset: f64) {
    let every = (labels.len() / 12).max(1);
    for (i, l) in labels.iter().enumerate() {
        if i % every != 0 {
            continue;
        }
        let x = LEFT + offset + step * i as f64;
        let _ = write!(
            svg,
            r##"<text x="{x:.1}" y="{y}" text-anchor="middle" font-size="10" fill="#555">{l}</text>"##,
            y = H - BOTTOM + 18.0,
            l = esc(l)
        );
    }
}

fn legend(svg: &mut String, names: &[&str]) {
    for (i, n) in names.iter().enumerate() {
        let y = TOP + 8.0 + 18.0 * i as f64;
        let x = W - RIGHT + 12.0;
        let _ = write!(
            svg,
            r##"<rect x="{x}" y="{ry}" width="12" height="12" fill="{c}"/><text x="{tx}" y="{ty}" fill="#333">{n}</text>"##,
            ry = y - 10.0,
            c = PALETTE[i % PALETTE.len()],
            tx = x + 18.0,
            ty = y,
            n = esc(n)
        );
    }
}

/// One series of a chart: a name and one value per x label.
pub struct Series<'a> {
    /// Legend name.
    pub name: &'a str,
    /// Values, one per x label.
    pub values: Vec<f64>,
}

/// A line chart over categorical x labels (months, say). `percent` formats the y axis as %.
pub fn line_chart(title: &str, x: &[String], series: &[Series<'_>], percent: bool) -> String {
    let mut svg = open(title, H);
    let ymax = nice_max(
        series
            .iter()
            .flat_map(|s| s.values.iter().copied())
            .fold(0.0, f64::max),
    );
    y_axis(&mut svg, ymax, percent);
    let plot_w = W - LEFT - RIGHT;
    let plot_h = H - TOP - BOTTOM;
    let step = if x.len() > 1 {
        plot_w / (x.len() - 1) as f64
    } else {
        0.0
    };
    x_labels(&mut svg, x, step, 0.0);
    for (i, s) in series.iter().enumerate() {
        let pts: Vec<String> = s
            .values
            .iter()
            .enumerate()
            .map(|(j, v)| {
                format!(
                    "{:.1},{:.1}",
                    LEFT + step * j as f64,
                    TOP + plot_h - plot_h * (v / ymax)
                )
            })
            .collect();
        let c = PALETTE[i % PALETTE.len()];
        let _ = write!(
            svg,
            r#"<polyline fill="none" stroke="{c}" stroke-width="2.5" points="{}"/>"#,
            pts.join(" ")
        );
        for p in &pts {
            let (px, py) = p.split_once(',').unwrap_or(("0", "0"));
            let _ = write!(svg, r#"<circle cx="{px}" cy="{py}" r="3" fill="{c}"/>"#);
        }
    }
    legend(&mut svg, &series.iter().map(|s| s.name).collect::<Vec<_>>());
    svg.push_str("</svg>");
    svg
}

/// Stacked vertical bars: one bar per x label, one segment per series.
pub fn stacked_bars(title: &str, x: &[String], series: &[Series<'_>], percent: bool) -> String {
    let mut svg = open(title, H);
    let totals: Vec<f64> = (0..x.len())
        .map(|j| {
            series
                .iter()
                .map(|s| s.values.get(j).copied().unwrap_or(0.0).max(0.0))
                .sum()
        })
        .collect();
    let ymax = nice_max(totals.iter().copied().fold(0.0, f64::max));
    y_axis(&mut svg, ymax, percent);
    let plot_w = W - LEFT - RIGHT;
    let plot_h = H - TOP - BOTTOM;
    let step = plot_w / x.len().max(1) as f64;
    let bar = step * 0.7;
    x_labels(&mut svg, x, step, step / 2.0);
    for (j, label) in x.iter().enumerate() {
        let mut base = 0.0;
        for (i, s) in series.iter().enumerate() {
            let v = s.values.get(j).copied().unwrap_or(0.0).max(0.0);
            if v <= 0.0 {
                continue;
            }
            let h = plot_h * v / ymax;
            let y = TOP + plot_h - plot_h * base / ymax - h;
            let _ = write!(
                svg,
                r#"<rect x="{:.1}" y="{y:.1}" width="{bar:.1}" height="{h:.1}" fill="{}"><title>{}: {}</title></rect>"#,
                LEFT + step * j as f64 + (step - bar) / 2.0,
                PALETTE[i % PALETTE.len()],
                esc(label),
                esc(&format!("{} {}", s.name, fmt_tick(v, percent)))
            );
            base += v;
        }
    }
    legend(&mut svg, &series.iter().map(|s| s.name).collect::<Vec<_>>());
    svg.push_str("</svg>");
    svg
}

/// Horizontal bars with value labels (funnels, segment sizes, risk bands).
pub fn hbars(title: &str, labels: &[String], values: &[f64], percent: bool) -> String {
    let row = 26.0;
    let height = TOP + row * labels.len() as f64 + 16.0;
    let mut svg = open(title, height);
    let left = 190.0;
    let plot_w = W - left - 90.0;
    let vmax = values
        .iter()
        .copied()
        .fold(0.0, f64::max)
        .max(f64::MIN_POSITIVE);
    for (i, (l, v)) in labels.iter().zip(values).enumerate() {
        let y = TOP + row * i as f64;
        let w = plot_w * (v.max(0.0) / vmax);
        let _ = write!(
            svg,
            r##"<text x="{tx}" y="{ty:.1}" text-anchor="end" fill="#333">{l}</text><rect x="{left}" y="{y:.1}" width="{w:.1}" height="{h}" fill="{c}"/><text x="{vx:.1}" y="{ty:.1}" fill="#333">{v}</text>"##,
            tx = left - 8.0,
            ty = y + row * 0.55,
            l = esc(l),
            h = row - 6.0,
            c = PALETTE[i % PALETTE.len()],
            vx = left + w + 6.0,
            v = esc(&fmt_tick(*v, percent)),
        );
    }
    svg.push_str("</svg>");
    svg
}

/// A heat map of shares in [0, 1] (cohort retention): rows × columns, empty cells as `None`.
pub fn heatmap(
    title: &str,
    rows: &[String],
    cols: &[String],
    cells: &[Vec<Option<f64>>],
) -> String {
    let cell_w = ((W - 110.0) / cols.len().max(1) as f64).min(56.0);
    let cell_h = 22.0;
    let height = TOP + 20.0 + cell_h * rows.len() as f64 + 10.0;
    let mut svg = open(title, height);
    let left = 100.0;
    for (j, c) in cols.iter().enumerate() {
        let _ = write!(
            svg,
            r##"<text x="{:.1}" y="{}" text-anchor="middle" fill="#555">{}</text>"##,
            left + cell_w * (j as f64 + 0.5),
            TOP + 10.0,
            esc(c)
        );
    }
    for (i, r) in rows.iter().enumerate() {
        let y = TOP + 20.0 + cell_h * i as f64;
        let _ = write!(
            svg,
            r##"<text x="{}" y="{:.1}" text-anchor="end" fill="#333">{}</text>"##,
            left - 6.0,
            y + cell_h * 0.65,
            esc(r)
        );
        for (j, v) in cells.get(i).into_iter().flatten().enumerate() {
            let Some(v) = v else { continue };
            let v = v.clamp(0.0, 1.0);
            // White to the palette's blue; dark text on light cells, light text on dark ones.
            let (r0, g0, b0) = (255.0, 255.0, 255.0);
            let (r1, g1, b1) = (0x2f as f64, 0x5f as f64, 0x98 as f64);
            let mix = |a: f64, b: f64| (a + (b - a) * v).round() as u8;
            let fill = format!("#{:02x}{:02x}{:02x}", mix(r0, r1), mix(g0, g1), mix(b0, b1));
            let ink = if v > 0.5 { "#fff" } else { "#222" };
            let x = left + cell_w * j as f64;
            let _ = write!(
                svg,
                r##"<rect x="{x:.1}" y="{y:.1}" width="{:.1}" height="{:.1}" fill="{fill}" stroke="#fff"/><text x="{:.1}" y="{:.1}" text-anchor="middle" font-size="10" fill="{ink}">{:.0}%</text>"##,
                cell_w,
                cell_h,
                x + cell_w / 2.0,
                y + cell_h * 0.65,
                v * 100.0
            );
        }
    }
    svg.push_str("</svg>");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    fn months() -> Vec<String> {
        (1..=12).map(|m| format!("2026-{m:02}")).collect()
    }

    #[test]
    fn escapes_labels() {
        assert_eq!(esc(r#"<a & "b">"#), "&lt;a &amp; &quot;b&quot;&gt;");
        let svg = hbars("t", &["<x>".into()], &[1.0], false);
        assert!(svg.contains("&lt;x&gt;") && !svg.contains("<x>"));
    }

    #[test]
    fn charts_have_one_mark_per_value() {
        let x = months();
        let s = [Series {
            name: "a",
            values: (0..12).map(f64::from).collect(),
        }];
        let line = line_chart("l", &x, &s, false);
        assert_eq!(line.matches("<circle").count(), 12);
        let bars = stacked_bars(
            "b",
            &x,
            &[
                Series {
                    name: "a",
                    values: vec![1.0; 12],
                },
                Series {
                    name: "b",
                    values: vec![2.0; 12],
                },
            ],
            false,
        );
        assert_eq!(
            bars.matches("<rect").count(),
            24 + 2,
            "24 segments + 2 legend keys"
        );
        let heat = heatmap(
            "h",
            &["c1".into(), "c2".into()],
            &["0".into(), "1".into()],
            &[vec![Some(1.0), Some(0.5)], vec![Some(1.0), None]],
        );
        assert_eq!(heat.matches("<rect").count(), 3);
    }

    #[test]
    fn nice_axis_bounds() {
        assert_eq!(nice_max(0.0), 1.0);
        assert_eq!(nice_max(0.87), 1.0);
        assert_eq!(nice_max(130.0), 200.0);
        assert_eq!(nice_max(2400.0), 2500.0);
    }
}
