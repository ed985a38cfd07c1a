//! `freshet group`: being written this session (see issue 5).

#[derive(clap::Args)]
pub struct GroupArgs {}

pub fn run(_args: GroupArgs) -> anyhow::Result<()> {
    anyhow::bail!("`freshet group` is not available in this build yet")
}
