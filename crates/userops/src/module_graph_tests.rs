//! The import graph of the crate's top-level modules, read from the source: modules are rooms
//! with doors (CONTRIBUTING.md). Only the engine (and the shared engine above it) may name the
//! engine, and leaving out the closed command/output registry (`command`, which names every
//! module's commands and outputs) the graph has no cycle.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use petgraph::algo::tarjan_scc;
use petgraph::graphmap::DiGraphMap;

/// Modules that may depend on `engine`.
const ABOVE_ENGINE: [&str; 2] = ["engine", "shared"];
/// The closed registry: it names every module and every module names its `Output`.
const REGISTRY: &str = "command";

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every `.rs` file under `dir`, recursively.
fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let p = entry.unwrap().path();
        if p.is_dir() {
            files(&p, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
}

/// The source without comments and without `#[cfg(test)]` items: a `mod x;` line is dropped
/// (and its file reported in `test_files`), a braced item up to the closing brace at its own
/// indentation.
fn non_test_code(text: &str, test_files: &mut BTreeSet<String>) -> String {
    let mut out = String::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        let t = line.trim_start();
        if t.starts_with("//") {
            continue;
        }
        if t.starts_with("#[cfg(test)]") {
            let indent = line.len() - t.len();
            let mut item = lines.next().unwrap_or_default();
            while item.trim_start().starts_with("#[") {
                item = lines.next().unwrap_or_default();
            }
            let it = item.trim();
            if let Some(name) = it.strip_prefix("mod ").and_then(|r| r.strip_suffix(';')) {
                test_files.insert(name.to_owned());
                continue;
            }
            if it.ends_with(';') {
                continue;
            }
            let close = format!("{}}}", " ".repeat(indent));
            for l in lines.by_ref() {
                if l.trim_end() == close {
                    break;
                }
            }
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// The top-level modules a piece of code names: `crate::x`, `crate::{x, y::z}`, and re-exports
/// of the crate root (`crate::Engine` names `engine`).
fn named_modules(code: &str, reexports: &BTreeMap<String, String>) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut name = |n: &str| {
        if let Some(m) = reexports.get(n) {
            out.insert(m.clone());
        } else if n.chars().next().is_some_and(|c| c.is_ascii_lowercase()) {
            out.insert(n.to_owned());
        }
    };
    let ident = |s: &str| -> String {
        s.chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect()
    };
    for (i, _) in code.match_indices("crate::") {
        let rest = &code[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            // Top-level names of the group: after `{` and after each `,` at depth 0.
            let mut depth = 0;
            let mut start = true;
            for (j, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => start = true,
                    c if start && !c.is_whitespace() => {
                        name(&ident(&group[j..]));
                        start = false;
                    }
                    _ => {}
                }
            }
        } else {
            name(&ident(rest));
        }
    }
    out
}

/// The crate root's `pub use m::{A, B}` re-exports: name → module.
fn reexports(lib: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let flat = lib.replace('\n', " ");
    for part in flat.split("pub use ").skip(1) {
        let stmt = part.split(';').next().unwrap_or_default();
        let Some((module, names)) = stmt.split_once("::") else {
            continue;
        };
        let names = names.trim().trim_start_matches('{').trim_end_matches('}');
        for n in names.split(',') {
            let n = n.trim();
            if !n.is_empty() {
                out.insert(n.to_owned(), module.trim().to_owned());
            }
        }
    }
    out
}

/// module → the other top-level modules its non-test code names.
fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let root = src();
    let lib = std::fs::read_to_string(root.join("lib.rs")).unwrap();
    let reexports = reexports(&lib);
    let mut all = Vec::new();
    files(&root, &mut all);
    let mut test_files = BTreeSet::new();
    let mut code: BTreeMap<PathBuf, String> = BTreeMap::new();
    for f in &all {
        let text = std::fs::read_to_string(f).unwrap();
        code.insert(f.clone(), non_test_code(&text, &mut test_files));
    }
    let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (f, text) in code {
        let rel = f.strip_prefix(&root).unwrap();
        let stem = rel.file_stem().unwrap().to_string_lossy().into_owned();
        if rel == Path::new("lib.rs") || test_files.contains(&stem) {
            continue;
        }
        let module = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy()
            .trim_end_matches(".rs")
            .to_owned();
        let mut names = named_modules(&text, &reexports);
        // `super::` in a top-level module's own file is the crate root.
        if rel.components().count() == 1 || rel.file_name().is_some_and(|n| n == "mod.rs") {
            for (i, _) in text.match_indices("super::") {
                let rest = &text[i + "super::".len()..];
                names.extend(named_modules(&format!("crate::{rest}"), &reexports));
            }
        }
        names.remove(&module);
        g.entry(module).or_default().extend(names);
    }
    g
}

#[test]
fn the_parser_sees_what_a_module_names() {
    let re: BTreeMap<String, String> = [("Engine".to_owned(), "engine".to_owned())].into();
    let code =
        "use crate::{error::Error, ids::{OneId, IdKind}, Engine};\nfn f() { crate::tags::x(); }";
    let got = named_modules(code, &re);
    let want: BTreeSet<String> = ["engine", "error", "ids", "tags"].map(String::from).into();
    assert_eq!(got, want);
    let mut tf = BTreeSet::new();
    let src = "use crate::a;\n#[cfg(test)]\nmod t;\n#[cfg(test)]\nmod tests {\n    use crate::b;\n}\n// crate::c\nuse crate::d;\n";
    let kept = non_test_code(src, &mut tf);
    assert_eq!(
        named_modules(&kept, &re),
        ["a", "d"].map(String::from).into()
    );
    assert!(tf.contains("t"));
}

#[test]
fn only_the_engine_and_the_shared_engine_name_the_engine() {
    let g = graph();
    assert!(g.len() > 15, "the walk found the modules: {:?}", g.keys());
    let offenders: Vec<&String> = g
        .iter()
        .filter(|(m, names)| !ABOVE_ENGINE.contains(&m.as_str()) && names.contains("engine"))
        .map(|(m, _)| m)
        .collect();
    assert!(
        offenders.is_empty(),
        "these modules name the engine (a module's door is engine/<module>.rs): {offenders:?}"
    );
}

#[test]
fn the_module_graph_has_no_cycle_but_the_registry() {
    let g = graph();
    let mut dg: DiGraphMap<&str, ()> = DiGraphMap::new();
    for (m, names) in &g {
        dg.add_node(m.as_str());
        for n in names.iter().filter(|n| g.contains_key(*n)) {
            if m != REGISTRY && n != REGISTRY {
                dg.add_edge(m.as_str(), n.as_str(), ());
            }
        }
    }
    let cycles: Vec<Vec<&str>> = tarjan_scc(&dg)
        .into_iter()
        .filter(|c| c.len() > 1)
        .map(|mut c| {
            c.sort_unstable();
            c
        })
        .collect();
    assert!(
        cycles.is_empty(),
        "modules that depend on each other in a cycle: {cycles:?} (edges: {:?})",
        cycles
            .iter()
            .flatten()
            .map(|m| (m, &g[*m]))
            .collect::<Vec<_>>()
    );
}
