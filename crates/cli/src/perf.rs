//! `freshet perf`: being written this session (see issue 6).

#[derive(clap::Args)]
pub struct PerfArgs {}

pub fn run(_args: PerfArgs) -> anyhow::Result<()> {
    anyhow::bail!("`freshet perf` is not available in this build yet")
}
