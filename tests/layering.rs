//! The tree shows the layers: the core (`src/runtime/`) never names a feature module
//! (`chan`, `sync`, `net`, `hooks`, `dump`, …); features stand on the core, and `sys` is the
//! ground floor. This test reads `src/**/*.rs`, resolves every `crate::…` path to the file
//! that defines it, and fails on a core file that names anything outside the core, `sys`
//! and the loom facade, except for the exceptions listed below with their reasons.
//!
//! It also prints the import cycles (strongly connected components of the file graph built
//! from `crate::` paths), the measure of how tangled the tree is:
//!
//! ```text
//! cargo test --test layering -- --nocapture
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Core files that may name a feature module, and why.
const EXCEPTIONS: &[(&str, &str, &str)] = &[
    (
        "runtime/scheduler/monitor.rs",
        "dump",
        "the monitor thread writes the dump asked for with SIGQUIT (WEFT_DUMP_SIGNAL): it is \
         the one thread that never blocks, and the dump only reads core data",
    ),
    (
        "runtime/scheduler/monitor.rs",
        "stats",
        "the monitor thread writes the WEFT_SCHEDTRACE line from weft::stats(), a read-only \
         view of core counters",
    ),
];

/// Top-level names a core file may use besides `runtime` itself.
const GROUND: &[&str] = &["runtime", "sys", "loom"];

struct Source {
    /// Path relative to `src/`, with `/`.
    rel: String,
    /// The code, without comments and without a trailing `#[cfg(test…)] mod`.
    code: String,
}

fn sources() -> Vec<Source> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut paths = Vec::new();
    walk(&root, &mut paths);
    paths.sort();
    paths
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path).unwrap();
            let rel = path
                .strip_prefix(&root)
                .unwrap()
                .to_string_lossy()
                .replace('\\', "/");
            Source {
                rel,
                code: strip(&text),
            }
        })
        .collect()
}

/// Drops line comments (docs included) and the test module at the end of a file.
fn strip(text: &str) -> String {
    let mut out = String::new();
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("#[cfg(")
            && trimmed.contains("test")
            && lines
                .peek()
                .is_some_and(|next| next.trim_start().starts_with("mod "))
        {
            break;
        }
        let code = match line.find("//") {
            // Not inside a string literal such as "http://": good enough for this tree.
            Some(at) if !line[..at].contains('"') => &line[..at],
            _ => line,
        };
        out.push_str(code);
        out.push('\n');
    }
    out
}

/// The module path of a file: `runtime/scheduler/mod.rs` is `runtime::scheduler`.
fn module_path(rel: &str) -> Vec<String> {
    let mut parts: Vec<String> = rel
        .trim_end_matches(".rs")
        .split('/')
        .map(String::from)
        .collect();
    if matches!(parts.last().map(String::as_str), Some("mod" | "lib")) {
        parts.pop();
    }
    parts
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Every `crate::a::b::…` path in `code`, as its segments; a `crate::{a, b::c}` group gives
/// one path per item.
fn crate_paths(code: &str) -> Vec<Vec<String>> {
    let mut paths = Vec::new();
    let mut rest = code;
    while let Some(at) = rest.find("crate::") {
        let before = rest[..at].chars().last();
        rest = &rest[at + "crate::".len()..];
        if before.is_some_and(|c| is_ident(c) || c == '$') {
            continue; // `$crate::` in a macro, or part of a longer name
        }
        if let Some(group) = rest.strip_prefix('{') {
            let end = group
                .find("};")
                .or_else(|| group.find('}'))
                .unwrap_or(group.len());
            for item in group[..end].split(',') {
                let segments = segments(item.trim());
                if !segments.is_empty() {
                    paths.push(segments);
                }
            }
            continue;
        }
        let segments = segments(rest);
        if !segments.is_empty() {
            paths.push(segments);
        }
    }
    paths
}

fn segments(mut text: &str) -> Vec<String> {
    let mut out = Vec::new();
    loop {
        let len = text.find(|c: char| !is_ident(c)).unwrap_or(text.len());
        if len == 0 {
            break;
        }
        out.push(text[..len].to_owned());
        match text[len..].strip_prefix("::") {
            Some(next) if next.starts_with(|c: char| is_ident(c)) => text = next,
            _ => break,
        }
    }
    out
}

/// The file that defines the longest module prefix of `path`; `lib.rs` for root items.
fn resolve<'a>(path: &[String], modules: &'a BTreeMap<Vec<String>, String>) -> &'a str {
    (1..=path.len())
        .rev()
        .find_map(|n| modules.get(&path[..n]))
        .or_else(|| modules.get(&Vec::new()))
        .map(String::as_str)
        .unwrap()
}

fn graph(sources: &[Source]) -> BTreeMap<String, BTreeSet<String>> {
    let modules: BTreeMap<Vec<String>, String> = sources
        .iter()
        .map(|s| (module_path(&s.rel), s.rel.clone()))
        .collect();
    sources
        .iter()
        .map(|s| {
            let targets = crate_paths(&s.code)
                .iter()
                .map(|path| resolve(path, &modules).to_owned())
                .filter(|target| *target != s.rel)
                .collect();
            (s.rel.clone(), targets)
        })
        .collect()
}

/// Tarjan's strongly connected components with more than one file.
fn cycles(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    struct State<'a> {
        graph: &'a BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on_stack: BTreeSet<&'a str>,
        out: Vec<Vec<String>>,
    }
    fn visit<'a>(s: &mut State<'a>, v: &'a str) {
        let i = s.index.len();
        s.index.insert(v, i);
        s.low.insert(v, i);
        s.stack.push(v);
        s.on_stack.insert(v);
        for w in s.graph.get(v).into_iter().flatten() {
            let w = w.as_str();
            if !s.graph.contains_key(w) {
                continue;
            }
            if !s.index.contains_key(w) {
                visit(s, w);
                let low = s.low[v].min(s.low[w]);
                s.low.insert(v, low);
            } else if s.on_stack.contains(w) {
                let low = s.low[v].min(s.index[w]);
                s.low.insert(v, low);
            }
        }
        if s.low[v] == s.index[v] {
            let mut component = Vec::new();
            loop {
                let w = s.stack.pop().unwrap();
                s.on_stack.remove(w);
                component.push(w.to_owned());
                if w == v {
                    break;
                }
            }
            if component.len() > 1 {
                component.sort();
                s.out.push(component);
            }
        }
    }
    let mut state = State {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        out: Vec::new(),
    };
    for v in graph.keys() {
        if !state.index.contains_key(v.as_str()) {
            visit(&mut state, v);
        }
    }
    state.out
}

#[test]
fn the_core_names_no_feature_module() {
    let sources = sources();
    let mut violations = Vec::new();
    for source in sources.iter().filter(|s| s.rel.starts_with("runtime/")) {
        for path in crate_paths(&source.code) {
            let top = path[0].as_str();
            if GROUND.contains(&top) {
                continue;
            }
            if EXCEPTIONS
                .iter()
                .any(|(file, name, _)| *file == source.rel && *name == top)
            {
                continue;
            }
            violations.push(format!("{} names crate::{}", source.rel, path.join("::")));
        }
    }
    violations.sort();
    violations.dedup();
    assert!(
        violations.is_empty(),
        "the core (src/runtime/) must not name feature modules; move the data into the core \
         and let the feature read it, or add an exception with its reason:\n{}",
        violations.join("\n")
    );
}

#[test]
fn exceptions_are_still_needed() {
    // An exception nobody uses any more is a stale promise: remove it.
    let sources = sources();
    for (file, name, _) in EXCEPTIONS {
        let source = sources
            .iter()
            .find(|s| s.rel == *file)
            .unwrap_or_else(|| panic!("no file {file}"));
        assert!(
            crate_paths(&source.code).iter().any(|p| p[0] == *name),
            "{file} no longer names crate::{name}: drop the exception"
        );
    }
}

#[test]
fn import_cycles_are_printed_and_none_spans_core_and_features() {
    let graph = graph(&sources());
    let cycles = cycles(&graph);
    println!("import cycles over src/ (from crate:: paths):");
    for cycle in &cycles {
        println!("  {} files: {}", cycle.len(), cycle.join(" "));
    }
    for cycle in &cycles {
        let core = cycle.iter().filter(|f| f.starts_with("runtime/")).count();
        assert!(
            core == 0 || core == cycle.len(),
            "a cycle mixes the core and features: {cycle:?}"
        );
    }
}
