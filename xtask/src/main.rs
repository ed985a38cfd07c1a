//! `cargo xtask <task>`: project automation.
//!
//! Tasks:
//! - `codegen`: regenerate `crates/protocol/src/generated/` from the Kafka message specs.

use std::path::PathBuf;
use std::process::ExitCode;

fn repo_root() -> PathBuf {
    // xtask/ sits at the repository root.
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."))
}

fn main() -> ExitCode {
    let task = std::env::args().nth(1);
    match task.as_deref() {
        Some("codegen") => match xtask::codegen::run(&repo_root()) {
            Ok(count) => {
                println!("codegen: {count} files in {}", xtask::codegen::OUT_DIR);
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("codegen failed: {e}");
                ExitCode::FAILURE
            }
        },
        _ => {
            eprintln!("usage: cargo xtask codegen");
            ExitCode::FAILURE
        }
    }
}
