//! The `ferrocast` command: one binary for every part of the cluster. It parses the command line,
//! sets up logging and hands over to the crate that does the work.

mod index_cmd;
mod logging;
mod node_cmd;
mod push_cmd;
mod srs_config_cmd;
mod token_cmd;
mod up;

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
    /// Run a whole cluster on this machine: an origin, two edges (eu, us), the index server with
    /// access control on, and a looping demo stream (live/demo). Prints the URLs to play it.
    Up(Box<up::UpArgs>),
    /// Run a media node (origin or edge): RTMP publish and play, HTTP-FLV, HLS, the SRS HTTP API v1
    /// and http_hooks.
    Node(Box<node_cmd::NodeArgs>),
    /// Run the index server: cluster directory, viewer-to-edge scheduling, publish URLs, signed
    /// tokens and hook checks, live events, the dashboard.
    Index(Box<index_cmd::IndexArgs>),
    /// Publish a file or feed with FFmpeg to the origin the index names, restarting it and moving
    /// to a backup origin when it fails; or to fixed RTMP URLs with --to.
    Push(Box<push_cmd::PushArgs>),
    /// Mint a signed publish or play token offline and print it.
    Token(Box<token_cmd::TokenArgs>),
    /// Write a valid SRS 5/6/7 config for an origin or an edge that joins a Ferrocast index.
    SrsConfig(Box<srs_config_cmd::SrsConfigArgs>),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Up(args) => up::run(*args),
        Command::Node(args) => node_cmd::run(*args),
        Command::Index(args) => index_cmd::run(*args),
        Command::Push(args) => push_cmd::run(*args),
        Command::Token(args) => token_cmd::run(*args),
        Command::SrsConfig(args) => srs_config_cmd::run(*args),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ferrocast: error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
