//! The server's module layout, checked (issue 14): no route module reaches into another
//! (shared helpers live in `web` or `pipeline`), and the files of the crate do not import
//! each other in a circle. Both read the sources; comments are skipped.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn src_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every `.rs` file under `dir`, as paths relative to `src/`.
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            if let Ok(rel) = path.strip_prefix(src_dir()) {
                out.push(rel.to_path_buf());
            }
        }
    }
}

/// The code of a file without its comments (line comments, doc comments) and without its
/// test module (whose `super::` is the file itself; tests import what they test).
fn code_of(file: &Path) -> String {
    let text = std::fs::read_to_string(src_dir().join(file)).unwrap_or_default();
    let text = match text.find("#[cfg(test)]\nmod ") {
        Some(at) => &text[..at],
        None => &text,
    };
    text.lines()
        .map(|line| match line.find("//") {
            // `//` inside a string (a URL) is rare in paths that matter; cut only when what
            // precedes is not inside quotes.
            Some(at) if line[..at].matches('"').count() % 2 == 0 => &line[..at],
            _ => line,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The module path of a file: `routes/oidc/authorize.rs` → `["routes", "oidc", "authorize"]`,
/// `routes/mod.rs` → `["routes"]`, `lib.rs` → `[]`.
fn module_of(file: &Path) -> Vec<String> {
    let mut parts: Vec<String> = file
        .iter()
        .map(|p| p.to_string_lossy().trim_end_matches(".rs").to_owned())
        .collect();
    if parts
        .last()
        .is_some_and(|l| l == "mod" || l == "lib" || l == "main")
    {
        parts.pop();
    }
    parts
}

/// The file defining the longest prefix of `path` that is a module of the crate.
fn file_of(path: &[String], files: &BTreeSet<PathBuf>) -> PathBuf {
    for len in (1..=path.len()).rev() {
        let prefix = path[..len].join("/");
        for candidate in [format!("{prefix}.rs"), format!("{prefix}/mod.rs")] {
            let candidate = PathBuf::from(candidate);
            if files.contains(&candidate) {
                return candidate;
            }
        }
    }
    PathBuf::from("lib.rs")
}

/// The paths a file names from `crate::` and `super::`, resolved to module paths. Grouped
/// imports (`use crate::{a, b::{c, d}}`) are expanded.
fn referenced_paths(file: &Path, code: &str) -> Vec<Vec<String>> {
    let module = module_of(file);
    let mut out = Vec::new();
    let chars: Vec<char> = code.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let rest: String = chars[i..chars.len().min(i + 7)].iter().collect();
        let preceded_by_ident = i > 0 && (chars[i - 1].is_alphanumeric() || chars[i - 1] == '_');
        if !preceded_by_ident && (rest.starts_with("crate::") || rest.starts_with("super::")) {
            let (base, mut j) = if rest.starts_with("crate::") {
                (Vec::new(), i + 7)
            } else {
                // `super` is the parent of the module the file defines (`module_of` already
                // names a `mod.rs` file by its directory).
                let mut base = module.clone();
                let mut j = i + 7;
                base.pop();
                while chars[j..].iter().collect::<String>().starts_with("super::") {
                    base.pop();
                    j += 7;
                }
                (base, j)
            };
            let (paths, end) = parse_tree(&chars, &mut j, base);
            out.extend(paths);
            i = end.max(i + 1);
        } else {
            i += 1;
        }
    }
    out
}

/// Parses `a::b::{c, d::e}` (or a plain path) from `chars[*j..]` under `base`.
fn parse_tree(chars: &[char], j: &mut usize, base: Vec<String>) -> (Vec<Vec<String>>, usize) {
    let mut path = base;
    loop {
        if chars.get(*j) == Some(&'{') {
            return parse_group(chars, j, &path);
        }
        let start = *j;
        while *j < chars.len() && (chars[*j].is_alphanumeric() || chars[*j] == '_') {
            *j += 1;
        }
        if *j > start {
            path.push(chars[start..*j].iter().collect());
        }
        if chars[*j..].iter().take(2).collect::<String>() == "::" {
            *j += 2;
            continue;
        }
        return (vec![path], *j);
    }
}

/// Parses `{c, d::e as f}` from `chars[*j..]` (at the `{`) under `path`.
fn parse_group(chars: &[char], j: &mut usize, path: &[String]) -> (Vec<Vec<String>>, usize) {
    *j += 1;
    let mut all = Vec::new();
    loop {
        while chars
            .get(*j)
            .is_some_and(|c| c.is_whitespace() || *c == ',')
        {
            *j += 1;
        }
        if chars.get(*j).is_none_or(|c| *c == '}') {
            *j += 1;
            break;
        }
        let (inner, _) = parse_tree(chars, j, path.to_vec());
        all.extend(inner);
        // Skip `as alias` up to the next separator.
        while chars.get(*j).is_some_and(|c| *c != ',' && *c != '}') {
            *j += 1;
        }
    }
    (all, *j)
}

#[test]
fn no_route_module_imports_another() {
    let routes = src_dir().join("routes");
    let mut files = Vec::new();
    rust_files(&routes, &mut files);
    let mut offences = Vec::new();
    for file in &files {
        if file == Path::new("routes/mod.rs") {
            continue;
        }
        let code = code_of(file);
        if code.contains("crate::routes::") || code.contains("crate::routes::{") {
            offences.push(format!("{}: names crate::routes::", file.display()));
        }
        // `super::<sibling>::`: a module of the directory `super` designates.
        let is_mod_file = file.file_name().is_some_and(|n| n == "mod.rs");
        let mut dir = src_dir().join(file);
        dir.pop();
        if is_mod_file {
            dir.pop();
        }
        for (at, _) in code.match_indices("super::") {
            let name: String = code[at + 7..]
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            let names_module =
                dir.join(format!("{name}.rs")).exists() || dir.join(&name).join("mod.rs").exists();
            let followed_by_path = code[at + 7 + name.len()..].starts_with("::");
            if names_module && followed_by_path {
                offences.push(format!("{}: names super::{name}::", file.display()));
            }
        }
    }
    assert!(
        offences.is_empty(),
        "route modules importing each other:\n{}",
        offences.join("\n")
    );
}

#[test]
fn the_files_of_the_server_import_each_other_in_no_circle() {
    let mut list = Vec::new();
    rust_files(&src_dir(), &mut list);
    let files: BTreeSet<PathBuf> = list.iter().cloned().collect();
    let mut graph: BTreeMap<PathBuf, BTreeSet<PathBuf>> = BTreeMap::new();
    for file in &files {
        let code = code_of(file);
        let edges = graph.entry(file.clone()).or_default();
        for path in referenced_paths(file, &code) {
            let target = file_of(&path, &files);
            if &target != file {
                edges.insert(target);
            }
        }
    }
    // `lib.rs` declares the modules and wires the application from them: it is the root,
    // not a dependency; an edge into it (a file using something lib.rs defines) is an edge
    // like any other.
    let mut cycles = Vec::new();
    let mut state: BTreeMap<PathBuf, u8> = BTreeMap::new(); // 1 = on the stack, 2 = done
    fn visit(
        node: &PathBuf,
        graph: &BTreeMap<PathBuf, BTreeSet<PathBuf>>,
        state: &mut BTreeMap<PathBuf, u8>,
        stack: &mut Vec<PathBuf>,
        cycles: &mut Vec<String>,
    ) {
        state.insert(node.clone(), 1);
        stack.push(node.clone());
        for next in graph.get(node).into_iter().flatten() {
            match state.get(next) {
                Some(1) => {
                    let from = stack.iter().position(|n| n == next).unwrap_or(0);
                    let mut cycle: Vec<String> = stack[from..]
                        .iter()
                        .map(|p| p.display().to_string())
                        .collect();
                    cycle.push(next.display().to_string());
                    cycles.push(cycle.join(" → "));
                }
                Some(_) => {}
                None => visit(next, graph, state, stack, cycles),
            }
        }
        stack.pop();
        state.insert(node.clone(), 2);
    }
    for node in graph.keys() {
        if !state.contains_key(node) {
            visit(node, &graph, &mut state, &mut Vec::new(), &mut cycles);
        }
    }
    assert!(cycles.is_empty(), "import circles:\n{}", cycles.join("\n"));
}

#[test]
fn the_reader_resolves_grouped_and_relative_imports() {
    let file = Path::new("pipeline/session.rs");
    let paths = referenced_paths(
        file,
        "use crate::{web::{a, b as c}, pipeline::issue};\nuse super::entry::X;\nlet x = crate::routes::cas::f();",
    );
    let as_strings: Vec<String> = paths.iter().map(|p| p.join("::")).collect();
    assert_eq!(
        as_strings,
        vec![
            "web::a",
            "web::b",
            "pipeline::issue",
            "pipeline::entry::X",
            "routes::cas::f"
        ]
    );
    let files: BTreeSet<PathBuf> = ["web.rs", "pipeline/mod.rs", "pipeline/entry.rs"]
        .iter()
        .map(PathBuf::from)
        .collect();
    assert_eq!(
        file_of(&paths[3], &files),
        PathBuf::from("pipeline/entry.rs")
    );
    assert_eq!(file_of(&paths[4], &files), PathBuf::from("lib.rs"));
}
