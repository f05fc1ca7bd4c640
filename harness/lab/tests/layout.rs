//! The workspace's size rules, checked on every `cargo test`: no crate over 12,000 lines of
//! non-test Rust, no non-test source file over 1,000 lines, no function over 150 lines.
//!
//! Counting is textual and deliberately simple: `#[cfg(test)] mod x { ... }` blocks, files named
//! `tests.rs` or `proptests.rs`, and everything under a `tests/` or `benches/` folder are test
//! code; a function runs from its `fn` line to the line where its braces balance (strings, char
//! literals and `//` comments are blanked first).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

const MAX_CRATE_LINES: usize = 12_000;
const MAX_FILE_LINES: usize = 1_000;
const MAX_FN_LINES: usize = 150;

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Every `.rs` file of the workspace's source folders (not tests, benches, target or samples).
fn source_files(dir: &Path, out: &mut Vec<PathBuf>, depth: usize) {
    assert!(
        depth < 20,
        "folder nesting deeper than 20 at {}",
        dir.display()
    );
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<_> = entries.filter_map(Result::ok).collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let name = e.file_name().to_string_lossy().to_string();
        let Ok(ty) = e.file_type() else { continue };
        if ty.is_dir() {
            if matches!(
                name.as_str(),
                "target" | "tests" | "benches" | ".git" | "scenarios" | "docs"
            ) || name.starts_with('.')
            {
                continue;
            }
            source_files(&e.path(), out, depth + 1);
        } else if ty.is_file()
            && name.ends_with(".rs")
            && name != "tests.rs"
            && name != "proptests.rs"
        {
            out.push(e.path());
        }
    }
}

/// The lines of `text` without `#[cfg(test)] mod name { ... }` blocks and `#[cfg(test)] mod x;`.
fn non_test_lines(text: &str) -> Vec<String> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let next = lines.get(i + 1).map(|l| l.trim_start()).unwrap_or("");
        let is_mod = next.starts_with("mod ") || next.starts_with("pub(crate) mod ");
        if lines[i].trim() == "#[cfg(test)]" && is_mod {
            if next.trim_end().ends_with(';') {
                i += 2;
                continue;
            }
            let mut depth: i64 = 0;
            let mut seen = false;
            let mut j = i + 1;
            while j < lines.len() {
                let code = blank_literals(lines[j]);
                depth += brace_delta(&code);
                seen |= code.contains('{');
                if seen && depth <= 0 {
                    break;
                }
                j += 1;
            }
            i = j + 1;
            continue;
        }
        out.push(lines[i].to_string());
        i += 1;
    }
    out
}

/// The line with string and char literals emptied and any `//` comment removed.
fn blank_literals(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                out.push('"');
                while let Some(d) = chars.next() {
                    if d == '\\' {
                        chars.next();
                    } else if d == '"' {
                        break;
                    }
                }
                out.push('"');
            }
            '\'' => {
                // a char literal ('x', '\n', '{') or a lifetime ('a)
                let rest: String = chars.clone().take(4).collect();
                let lit = rest.starts_with('\\') && rest[1..].contains('\'')
                    || rest.chars().nth(1) == Some('\'');
                if lit {
                    for d in chars.by_ref() {
                        if d == '\'' {
                            break;
                        }
                    }
                    out.push_str("' '");
                } else {
                    out.push('\'');
                }
            }
            '/' if chars.peek() == Some(&'/') => break,
            _ => out.push(c),
        }
    }
    out
}

fn brace_delta(code: &str) -> i64 {
    code.matches('{').count() as i64 - code.matches('}').count() as i64
}

/// `(name, lines)` of every function in `lines`.
fn functions(lines: &[String]) -> Vec<(String, usize, usize)> {
    let mut out = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        let t = l.trim_start();
        let t = t
            .strip_prefix("pub(crate) ")
            .or_else(|| t.strip_prefix("pub(super) "))
            .or_else(|| t.strip_prefix("pub "))
            .unwrap_or(t);
        let t = t.strip_prefix("const ").unwrap_or(t);
        let t = t.strip_prefix("async ").unwrap_or(t);
        let Some(rest) = t.strip_prefix("fn ") else {
            continue;
        };
        let name: String = rest
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        let mut depth = 0i64;
        let mut seen = false;
        for (j, line) in lines.iter().enumerate().skip(i) {
            let code = blank_literals(line);
            if !seen && code.contains(';') && !code.contains('{') {
                break; // a declaration without a body
            }
            depth += brace_delta(&code);
            seen |= code.contains('{');
            if seen && depth <= 0 {
                out.push((name.clone(), i + 1, j - i + 1));
                break;
            }
        }
    }
    out
}

/// The folder holding the `Cargo.toml` that owns `file`.
fn crate_of(file: &Path) -> PathBuf {
    let mut d = file.parent().expect("a file has a folder").to_path_buf();
    for _ in 0..20 {
        if d.join("Cargo.toml").exists() {
            return d;
        }
        if !d.pop() {
            break;
        }
    }
    panic!("{} belongs to no crate", file.display());
}

#[test]
fn crates_files_and_functions_stay_small() {
    let root = workspace_root();
    let mut files = Vec::new();
    for top in ["harness", "mock-eop", "benches"] {
        source_files(&root.join(top), &mut files, 0);
    }
    assert!(files.len() > 50, "found only {} source files", files.len());
    let mut crates: BTreeMap<PathBuf, usize> = BTreeMap::new();
    let mut problems = Vec::new();
    for f in &files {
        let text = std::fs::read_to_string(f).expect("source files are UTF-8");
        let lines = non_test_lines(&text);
        *crates.entry(crate_of(f)).or_default() += lines.len();
        let shown = f.strip_prefix(&root).unwrap_or(f).display().to_string();
        if lines.len() > MAX_FILE_LINES {
            problems.push(format!(
                "{shown}: {} non-test lines (max {MAX_FILE_LINES})",
                lines.len()
            ));
        }
        for (name, at, n) in functions(&lines) {
            if n > MAX_FN_LINES {
                problems.push(format!(
                    "{shown}:{at}: fn {name} has {n} lines (max {MAX_FN_LINES})"
                ));
            }
        }
    }
    for (c, n) in &crates {
        if *n > MAX_CRATE_LINES {
            let shown = c.strip_prefix(&root).unwrap_or(c).display().to_string();
            problems.push(format!(
                "crate {shown}: {n} non-test lines (max {MAX_CRATE_LINES})"
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_counter_sees_long_functions_and_skips_test_modules() {
    let body: String = (0..200)
        .map(|i| format!("    let x{i} = '{{';\n"))
        .collect();
    let src = format!(
        "fn long() {{\n{body}}}\n\n#[cfg(test)]\nmod tests {{\n    fn t() {{\n{body}    }}\n}}\n"
    );
    let lines = non_test_lines(&src);
    let fns = functions(&lines);
    assert_eq!(fns.len(), 1, "{fns:?}");
    assert_eq!(fns[0].0, "long");
    assert_eq!(fns[0].2, 202);
}
