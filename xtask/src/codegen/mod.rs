//! The protocol code generator: Kafka's JSON message specs in, Rust modules out.
//!
//! `generate` is pure apart from reading the specs and running rustfmt, so the protocol
//! crate's staleness test can run it in memory and compare with the committed files.

mod dispatch;
pub mod emit;
pub mod spec;

use spec::{Kind, Spec};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Where the specs live and where the output goes, relative to the repository root.
pub const SPEC_DIR: &str = "../shared/kafka-message-specs";
pub const OUT_DIR: &str = "crates/protocol/src/generated";

/// One generated file: its path relative to the repository root and its content.
pub struct GeneratedFile {
    pub path: PathBuf,
    pub content: String,
}

/// A parsed spec and the module it goes to.
pub struct Loaded {
    pub spec: Spec,
    /// "messages" or "internal_records".
    pub group: &'static str,
    /// Path of the spec relative to the repository root, for the file header.
    pub rel_path: String,
}

fn list_json(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    Ok(files)
}

/// Reads and parses every spec, sorted by group and name.
pub fn load_specs(repo_root: &Path) -> Result<Vec<Loaded>, String> {
    let base = repo_root.join(SPEC_DIR);
    let mut loaded = Vec::new();
    for (sub, group) in [("", "messages"), ("internal-records", "internal_records")] {
        for path in list_json(&base.join(sub))? {
            let file_name = path
                .file_name()
                .and_then(|n| n.to_str())
                .ok_or("bad file name")?
                .to_string();
            let text =
                std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            let spec = spec::parse_spec(&file_name, &text)?;
            let rel_path = if sub.is_empty() {
                format!("{SPEC_DIR}/{file_name}")
            } else {
                format!("{SPEC_DIR}/{sub}/{file_name}")
            };
            loaded.push(Loaded {
                spec,
                group,
                rel_path,
            });
        }
    }
    Ok(loaded)
}

/// Formats Rust source with the repository's rustfmt settings.
pub fn rustfmt(repo_root: &Path, source: &str) -> Result<String, String> {
    let mut child = Command::new(std::env::var("RUSTFMT").unwrap_or_else(|_| "rustfmt".into()))
        .args(["--edition", "2021", "--emit", "stdout"])
        .current_dir(repo_root)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run rustfmt: {e}"))?;
    let mut stdin = child.stdin.take().ok_or("no stdin")?;
    let input = source.to_string();
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let output = child.wait_with_output().map_err(|e| e.to_string())?;
    writer
        .join()
        .map_err(|_| "rustfmt writer panicked")?
        .map_err(|e| e.to_string())?;
    if !output.status.success() {
        return Err(format!(
            "rustfmt failed: {}\n--- source ---\n{}",
            String::from_utf8_lossy(&output.stderr),
            source.lines().take(40).collect::<Vec<_>>().join("\n")
        ));
    }
    String::from_utf8(output.stdout).map_err(|e| e.to_string())
}

/// Formats every file. One rustfmt process for all the message modules (starting one per file
/// costs most of the time); the `mod.rs` files go through stdin so that rustfmt does not go
/// looking for their child modules.
fn format_all(repo_root: &Path, files: &mut [GeneratedFile]) -> Result<(), String> {
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let scratch =
        std::env::temp_dir().join(format!("freshet-codegen-{}-{stamp}", std::process::id()));
    std::fs::create_dir_all(&scratch).map_err(|e| e.to_string())?;
    let result = format_in(repo_root, &scratch, files);
    let _ = std::fs::remove_dir_all(&scratch);
    result
}

fn format_in(repo_root: &Path, scratch: &Path, files: &mut [GeneratedFile]) -> Result<(), String> {
    let mut batch = Vec::new();
    for (i, f) in files.iter_mut().enumerate() {
        if f.path.file_name().is_some_and(|n| n == "mod.rs") {
            f.content =
                rustfmt(repo_root, &f.content).map_err(|e| format!("{}: {e}", f.path.display()))?;
        } else {
            let tmp = scratch.join(format!("f{i}.rs"));
            std::fs::write(&tmp, &f.content).map_err(|e| e.to_string())?;
            batch.push((i, tmp));
        }
    }
    let status = Command::new(std::env::var("RUSTFMT").unwrap_or_else(|_| "rustfmt".into()))
        .args(["--edition", "2021", "--config-path"])
        .arg(repo_root.join("rustfmt.toml"))
        .args(batch.iter().map(|(_, p)| p))
        .status()
        .map_err(|e| format!("cannot run rustfmt: {e}"))?;
    if !status.success() {
        return Err(format!(
            "rustfmt failed on generated code in {}",
            scratch.display()
        ));
    }
    for (i, tmp) in batch {
        files[i].content = std::fs::read_to_string(&tmp).map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// Generates every file, formatted.
pub fn generate(repo_root: &Path) -> Result<Vec<GeneratedFile>, String> {
    let loaded = load_specs(repo_root)?;
    let out = Path::new(OUT_DIR);
    let mut files = Vec::new();
    for l in &loaded {
        files.push(GeneratedFile {
            path: out
                .join(l.group)
                .join(format!("{}.rs", emit::module_name(&l.spec))),
            content: emit::emit_message(&l.spec, &l.rel_path),
        });
    }
    for group in ["messages", "internal_records"] {
        files.push(GeneratedFile {
            path: out.join(group).join("mod.rs"),
            content: dispatch::emit_group_mod(&loaded, group),
        });
    }
    files.push(GeneratedFile {
        path: out.join("api_key.rs"),
        content: dispatch::emit_api_key(&loaded)?,
    });
    files.push(GeneratedFile {
        path: out.join("dispatch.rs"),
        content: dispatch::emit_dispatch(&loaded)?,
    });
    files.push(GeneratedFile {
        path: out.join("mod.rs"),
        content: dispatch::emit_root_mod(&loaded),
    });
    format_all(repo_root, &mut files)?;
    Ok(files)
}

/// The design document whose API table `run` keeps up to date, between these markers.
pub const DOC_PATH: &str = "docs/design/protocol.md";
const TABLE_BEGIN: &str = "<!-- api-table:begin (cargo xtask codegen) -->\n";
const TABLE_END: &str = "<!-- api-table:end -->";

/// Replaces the API table in the design document, if the document has the markers.
fn update_doc_table(repo_root: &Path) -> Result<(), String> {
    let path = repo_root.join(DOC_PATH);
    let Ok(doc) = std::fs::read_to_string(&path) else {
        return Ok(());
    };
    let (Some(begin), Some(end)) = (doc.find(TABLE_BEGIN), doc.find(TABLE_END)) else {
        return Ok(());
    };
    let table = dispatch::api_table_markdown(&load_specs(repo_root)?)?;
    let updated = format!("{}{TABLE_BEGIN}{table}{}", &doc[..begin], &doc[end..]);
    if updated != doc {
        std::fs::write(&path, updated).map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// Writes the generated files and removes generated files that no spec produces any more.
pub fn run(repo_root: &Path) -> Result<usize, String> {
    update_doc_table(repo_root)?;
    let files = generate(repo_root)?;
    let out = repo_root.join(OUT_DIR);
    for group in ["messages", "internal_records"] {
        let dir = out.join(group);
        if let Ok(entries) = std::fs::read_dir(&dir) {
            for entry in entries.flatten() {
                let rel = Path::new(OUT_DIR).join(group).join(entry.file_name());
                if !files.iter().any(|f| f.path == rel) {
                    std::fs::remove_file(entry.path()).map_err(|e| e.to_string())?;
                }
            }
        }
    }
    for f in &files {
        let path = repo_root.join(&f.path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| e.to_string())?;
        }
        let unchanged = std::fs::read_to_string(&path).is_ok_and(|old| old == f.content);
        if !unchanged {
            std::fs::write(&path, &f.content).map_err(|e| format!("{}: {e}", path.display()))?;
        }
    }
    Ok(files.len())
}

/// Whether a spec is a request or response with an API key.
pub fn is_api(spec: &Spec) -> bool {
    matches!(spec.kind, Kind::Request | Kind::Response) && spec.api_key.is_some()
}
