//! The `freshet` binary: parses the command line and hands off to the crates; no logic of its own.

mod connect;
mod consume;
mod group;
mod output;
mod perf;
mod produce;
mod serve;
mod topic;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "freshet",
    version,
    about = "A Kafka-compatible streaming platform"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a broker (defaults: 127.0.0.1:9092, data in ./freshet-data).
    Serve(serve::ServeArgs),
    /// Create, list, describe, delete or alter topics.
    Topic(topic::TopicArgs),
    /// Write one record per line of standard input to a topic.
    Produce(produce::ProduceArgs),
    /// Print the records of a topic.
    Consume(consume::ConsumeArgs),
    /// List, describe, delete consumer groups and reset their offsets.
    Group(group::GroupArgs),
    /// Measure produce, consume and end-to-end performance against a cluster.
    Perf(perf::PerfArgs),
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => return usage_error(err),
    };
    let result = match cli.command {
        Command::Serve(args) => serve::run(args),
        Command::Topic(args) => topic::run(args),
        Command::Produce(args) => produce::run(args),
        Command::Consume(args) => consume::run(args),
        Command::Group(args) => group::run(args),
        Command::Perf(args) => perf::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            // One clear line, never a backtrace: the chain of causes joined by ": ".
            eprintln!("freshet: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// `--help` and `--version` print as clap renders them; a usage error becomes one line, like
/// every other error of this binary, and exit code 2, as clap's own.
fn usage_error(err: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    if matches!(
        err.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        let _ = err.print();
        return if err.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
            ExitCode::from(2)
        } else {
            ExitCode::SUCCESS
        };
    }
    // clap's first paragraph is the error (a list of missing arguments spans lines); usage
    // and tips follow a blank line.
    let rendered = err.render().to_string();
    let paragraph: Vec<&str> = rendered
        .lines()
        .take_while(|line| !line.trim().is_empty())
        .map(str::trim)
        .collect();
    let joined = paragraph.join(" ");
    let message = joined.strip_prefix("error: ").unwrap_or(&joined);
    eprintln!("freshet: {message} (see --help)");
    ExitCode::from(2)
}
