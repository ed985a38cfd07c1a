//! The committed generated code must be exactly what the generator produces from the specs
//! today: run `cargo xtask codegen` and commit when this fails.

use std::path::{Path, PathBuf};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[test]
fn generated_code_is_fresh() {
    let root = repo_root();
    let files = xtask::codegen::generate(&root).expect("generator failed");
    let mut stale = Vec::new();
    for f in &files {
        let on_disk = std::fs::read_to_string(root.join(&f.path)).unwrap_or_default();
        if on_disk != f.content {
            stale.push(f.path.display().to_string());
        }
    }
    // Files no spec produces any more must be gone too.
    let out = root.join(xtask::codegen::OUT_DIR);
    for group in ["messages", "internal_records"] {
        for entry in std::fs::read_dir(out.join(group)).expect("generated dir") {
            let rel = Path::new(xtask::codegen::OUT_DIR)
                .join(group)
                .join(entry.expect("entry").file_name());
            if !files.iter().any(|f| f.path == rel) {
                stale.push(format!("{} (no longer generated)", rel.display()));
            }
        }
    }
    assert!(
        stale.is_empty(),
        "generated code is stale, run `cargo xtask codegen`: {stale:?}"
    );
    // Every spec became a module: 88 requests, 88 responses, 2 headers, data messages.
    assert!(files.len() > 200, "only {} files generated", files.len());
}
