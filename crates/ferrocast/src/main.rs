//! The `ferrocast` command: one binary for every part of the cluster. It parses the command line,
//! sets up logging and hands over to the crate that does the work.

mod index_cmd;
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
    Node(Box<node_cmd::NodeArgs>),
    /// Run the index server: cluster directory, viewer-to-edge scheduling, publish URLs.
    Index(Box<index_cmd::IndexArgs>),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Node(args) => node_cmd::run(*args),
        Command::Index(args) => index_cmd::run(*args),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ferrocast: error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
