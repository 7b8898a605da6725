//! The `ferrocast` command: one binary for every part of the cluster. It parses the command line,
//! sets up logging and hands over to the crate that does the work.

mod logging;
mod node_cmd;

use clap::{Parser, Subcommand};

/// Ferrocast: a live-streaming cluster that speaks SRS's HTTP API and callbacks.
#[derive(Parser, Debug)]
#[command(name = "ferrocast", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run a media node: RTMP publish and play, HTTP-FLV, and the SRS HTTP API v1.
    Node(node_cmd::NodeArgs),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Node(args) => node_cmd::run(args),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ferrocast: error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
