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
    let cli = Cli::parse();
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
