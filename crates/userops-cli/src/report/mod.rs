//! The demo's HTML report: one self-contained page (inline CSS and SVG, no script, no external
//! asset) with a summary table and one section per analysis.

pub mod collect;
pub mod pages;
pub mod svg;

use std::path::{Path, PathBuf};

use svg::esc;

/// One section of the report: a heading, a sentence saying how to read it, and a chart or table.
pub struct Section {
    /// The section's heading (plain text: escaped when written).
    pub title: String,
    /// How to read it (plain text).
    pub note: String,
    /// The body: an `<svg>` element or an HTML table (already escaped).
    pub body: String,
}

/// The whole report.
pub struct Report {
    /// Page title.
    pub title: String,
    /// Key figures, as (label, value) rows.
    pub summary: Vec<(String, String)>,
    /// The sections, in order.
    pub sections: Vec<Section>,
}

impl Report {
    /// Render the page.
    pub fn to_html(&self) -> String {
        let mut html = String::with_capacity(64 * 1024);
        html.push_str(&format!(
            r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{t}</title>
<style>
body {{ font-family: -apple-system, "Segoe UI", Roboto, sans-serif; margin: 2em auto; max-width: 820px; color: #222; }}
h1 {{ font-size: 1.6em; }} h2 {{ font-size: 1.2em; margin-top: 2em; border-bottom: 1px solid #ddd; }}
p.note {{ color: #555; }} table {{ border-collapse: collapse; }}
td, th {{ padding: 3px 10px; border-bottom: 1px solid #eee; text-align: left; }}
td.num {{ text-align: right; font-variant-numeric: tabular-nums; }}
figure {{ margin: 0; }}
</style></head><body><h1>{t}</h1><table class="summary">"#,
            t = esc(&self.title)
        ));
        for (k, v) in &self.summary {
            html.push_str(&format!(
                r#"<tr><th>{}</th><td class="num">{}</td></tr>"#,
                esc(k),
                esc(v)
            ));
        }
        html.push_str("</table>");
        for s in &self.sections {
            // Charts and tables are told apart by class: the Chromium check counts the charts.
            let class = if s.body.starts_with("<svg") {
                "chart"
            } else {
                "table"
            };
            html.push_str(&format!(
                r#"<section><h2>{}</h2><p class="note">{}</p><figure class="{class}">{}</figure></section>"#,
                esc(&s.title),
                esc(&s.note),
                s.body
            ));
        }
        html.push_str("</body></html>\n");
        html
    }

    /// Write `index.html` into `dir` (created if needed); returns its path.
    pub fn write(&self, dir: &Path) -> std::io::Result<PathBuf> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join("index.html");
        std::fs::write(&path, self.to_html())?;
        Ok(path)
    }
}

/// An HTML table from a header and rows of cells (escaped here); numeric-looking cells align right.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut h = String::from("<table><tr>");
    for c in header {
        h.push_str(&format!("<th>{}</th>", esc(c)));
    }
    h.push_str("</tr>");
    for r in rows {
        h.push_str("<tr>");
        for c in r {
            let numeric = c
                .chars()
                .all(|ch| ch.is_ascii_digit() || ".,%-+".contains(ch))
                && !c.is_empty();
            let class = if numeric { r#" class="num""# } else { "" };
            h.push_str(&format!("<td{class}>{}</td>", esc(c)));
        }
        h.push_str("</tr>");
    }
    h.push_str("</table>");
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_is_self_contained_and_escaped() {
        let r = Report {
            title: "T <1>".into(),
            summary: vec![("users".into(), "10".into())],
            sections: vec![Section {
                title: "S".into(),
                note: "n & m".into(),
                body: svg::hbars("b", &["a".into()], &[1.0], false),
            }],
        };
        let html = r.to_html();
        assert!(html.contains("T &lt;1&gt;") && html.contains("n &amp; m"));
        assert!(!html.contains("<script") && !html.contains("src=\"http"));
        assert_eq!(html.matches("<svg").count(), 1);
    }
}
