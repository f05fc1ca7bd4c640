//! `hybridlab list [--filter TEXT] [--format json]`: the scenario ids of the catalogue
//! (`./scenarios`, or the one embedded in the binary), each with its direction, tags and title.
//!
//! Exit codes: 0 listed, 2 a file that does not load (the others are still listed) or no match.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use harness::scenario::load;

use super::catalogue::Catalogue;

/// How `hybridlab list` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Format {
    /// One line per scenario: id, direction, tags, title.
    Human,
    /// A JSON array of `{id, path, direction, tags, title}`.
    Json,
}

/// Arguments of `hybridlab list`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Only scenarios whose id, path or tags contain TEXT (as `run --filter`).
    #[arg(long, value_name = "TEXT")]
    filter: Option<String>,
    /// How to print: one line per scenario or JSON.
    #[arg(long, value_enum, default_value = "human")]
    format: Format,
    /// The catalogue folder (default: ./scenarios when it is there, else the embedded one).
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
}

/// One scenario as listed.
struct Entry {
    id: String,
    path: String,
    direction: &'static str,
    tags: Vec<String>,
    title: String,
}

pub(crate) fn run(args: Args) -> anyhow::Result<ExitCode> {
    let cat = Catalogue::open(args.dir.as_deref())?;
    let mut entries = Vec::new();
    let mut broken = 0usize;
    for f in cat.files()? {
        let rel = relative(cat.root(), &f);
        match load(&f) {
            Ok(s) => entries.push(Entry {
                id: s.scenario.id,
                path: rel,
                direction: s.scenario.direction.as_str(),
                tags: s.scenario.tags,
                title: s.scenario.title,
            }),
            Err(e) => {
                broken += 1;
                eprintln!("hybridlab: {e}");
            }
        }
    }
    if let Some(f) = &args.filter {
        let f = f.to_ascii_lowercase();
        entries.retain(|e| {
            e.id.to_ascii_lowercase().contains(&f)
                || e.path.to_ascii_lowercase().contains(&f)
                || e.tags.iter().any(|t| t.to_ascii_lowercase().contains(&f))
        });
        if entries.is_empty() {
            anyhow::bail!("no scenario in {} matches `{f}`", cat.describe());
        }
    }
    let text = match args.format {
        Format::Human => human(&entries),
        Format::Json => json(&entries),
    };
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()?;
    Ok(if broken > 0 {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    })
}

/// `f` relative to the catalogue root, with `/`.
fn relative(root: &Path, f: &Path) -> String {
    let rel = f.strip_prefix(root).unwrap_or(f);
    rel.components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join("/")
}

fn human(entries: &[Entry]) -> String {
    let id_w = entries.iter().map(|e| e.id.len()).max().unwrap_or(2).max(2);
    let tag_text: Vec<String> = entries.iter().map(|e| e.tags.join(",")).collect();
    let tag_w = tag_text.iter().map(String::len).max().unwrap_or(4).max(4);
    let mut s = format!(
        "{:<id_w$}  {:<13}  {:<tag_w$}  TITLE\n",
        "ID", "DIRECTION", "TAGS"
    );
    for (e, tags) in entries.iter().zip(&tag_text) {
        s.push_str(&format!(
            "{:<id_w$}  {:<13}  {:<tag_w$}  {}\n",
            e.id, e.direction, tags, e.title
        ));
    }
    let n = entries.len();
    s.push_str(&format!("{n} scenario{}\n", if n == 1 { "" } else { "s" }));
    s
}

fn json(entries: &[Entry]) -> String {
    let v: Vec<serde_json::Value> = entries
        .iter()
        .map(|e| {
            serde_json::json!({
                "id": e.id,
                "path": e.path,
                "direction": e.direction,
                "tags": e.tags,
                "title": e.title,
            })
        })
        .collect();
    let mut s = serde_json::to_string_pretty(&v).unwrap_or_else(|_| "[]".into());
    s.push('\n');
    s
}
