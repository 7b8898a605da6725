//! `ferrocast srs-config`: writes a valid SRS (5/6/7) config for an origin or an edge that joins a
//! Ferrocast index: HTTP API and server, HTTP-FLV (`http_remux`), HLS, `cluster { mode remote; }` on
//! edges, `http_hooks` pointed at the index and a `heartbeat` that registers the node.
//!
//! SRS refuses to start on any directive it does not know (`illegal vhost.cluster.enabled`), and
//! only the literal `on` turns a default-off switch on, so this writes exactly SRS's grammar — not
//! the `cluster { enabled true; nodes {...} }` that many guides show (see srs.md §3.9).

use std::fmt::Write;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, ValueEnum};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum SrsRole {
    Origin,
    Edge,
}

#[derive(Args, Debug, Clone)]
pub struct SrsConfigArgs {
    /// origin (accepts publishers) or edge (pulls from --origin).
    #[arg(long, value_enum)]
    pub role: SrsRole,
    /// The index server's base URL, e.g. http://10.0.0.9:8000: hooks and heartbeat go there.
    #[arg(long, value_name = "URL")]
    pub index: String,
    /// The node's name at the index (SRS `heartbeat.device_id`).
    #[arg(long)]
    pub name: String,
    /// Region label the index schedules by.
    #[arg(long)]
    pub region: Option<String>,
    /// Origin to pull from (edges; repeatable, tried in order), HOST:PORT of its RTMP port.
    #[arg(long = "origin", value_name = "HOST:PORT")]
    pub origins: Vec<String>,
    /// RTMP listen port [default: 1935].
    #[arg(long, default_value_t = 1935)]
    pub rtmp_port: u16,
    /// HTTP server port (HTTP-FLV, HLS) [default: 8080].
    #[arg(long, default_value_t = 8080)]
    pub http_port: u16,
    /// HTTP API port, polled by the index [default: 1985].
    #[arg(long, default_value_t = 1985)]
    pub api_port: u16,
    /// Shared secret the index expects in hook URLs (`?secret=`), if it has one.
    #[arg(long)]
    pub hook_secret: Option<String>,
    /// The index's registration secret (its --register-secret), put in the heartbeat URL
    /// (`?secret=`); needed unless the index takes heartbeats from this node's network
    /// (--register-allow).
    #[arg(long)]
    pub register_secret: Option<String>,
    /// Heartbeat interval in whole seconds (SRS reads it with atoi) [default: 5].
    #[arg(long, default_value_t = 5)]
    pub heartbeat_s: u32,
    /// HLS segment duration in whole seconds [default: 2].
    #[arg(long, default_value_t = 2)]
    pub hls_fragment_s: u32,
    /// Write to this file instead of standard output.
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,
}

/// A value safe to write unquoted or inside SRS's double quotes.
fn checked<'a>(what: &str, v: &'a str) -> anyhow::Result<&'a str> {
    if v.is_empty() || v.chars().any(|c| c.is_whitespace() || matches!(c, '"' | '\'' | ';' | '{' | '}' | '#')) {
        anyhow::bail!("{what} {v:?} must be non-empty, without spaces, quotes, ';', '{{', '}}' or '#'");
    }
    Ok(v)
}

/// The config text.
pub fn render(a: &SrsConfigArgs) -> anyhow::Result<String> {
    let index = checked("--index", a.index.trim_end_matches('/'))?;
    let url = reqwest::Url::parse(index).with_context(|| format!("--index {index:?} is not a URL"))?;
    if url.scheme() != "http" && url.scheme() != "https" {
        anyhow::bail!("--index must be an http:// or https:// URL, not {index:?}");
    }
    let name = checked("--name", &a.name)?;
    let role = match a.role {
        SrsRole::Origin => "origin",
        SrsRole::Edge => "edge",
    };
    if a.role == SrsRole::Edge && a.origins.is_empty() {
        anyhow::bail!("an edge needs at least one --origin HOST:PORT to pull from");
    }
    if a.role == SrsRole::Origin && !a.origins.is_empty() {
        anyhow::bail!("--origin is for edges; an origin does not list other nodes");
    }
    for o in &a.origins {
        checked("--origin", o)?;
    }
    let mut register = format!("{index}/api/v1/srs/register?role={role}");
    if let Some(r) = &a.region {
        let _ = write!(register, "&region={}", checked("--region", r)?);
    }
    if let Some(s) = &a.register_secret {
        let _ = write!(register, "&secret={}", checked("--register-secret", s)?);
    }
    let mut hook = format!("{index}/api/v1/hooks");
    if let Some(s) = &a.hook_secret {
        let _ = write!(hook, "?secret={}", checked("--hook-secret", s)?);
    }
    let mut c = String::new();
    let _ = writeln!(c, "# SRS {role} \"{name}\", written by `ferrocast srs-config` for SRS 5, 6 and 7.");
    let _ = writeln!(c, "# It registers with the Ferrocast index at {index} and sends it its http_hooks.");
    let _ = writeln!(c, "listen              {};", a.rtmp_port);
    let _ = writeln!(c, "max_connections     1000;");
    let _ = writeln!(c, "daemon              off;");
    let _ = writeln!(c, "srs_log_tank        console;");
    let _ = writeln!(
        c,
        "http_api {{\n    enabled         on;\n    listen          {};\n    crossdomain     on;\n}}",
        a.api_port
    );
    let _ = writeln!(
        c,
        "http_server {{\n    enabled         on;\n    listen          {};\n    dir             ./objs/nginx/html;\n    crossdomain     on;\n}}",
        a.http_port
    );
    let _ = writeln!(
        c,
        "heartbeat {{\n    enabled         on;\n    interval        {};\n    url             \"{register}\";\n    device_id       \"{name}\";\n    summaries       on;\n    ports           on;\n}}",
        a.heartbeat_s.max(1)
    );
    let _ = writeln!(c, "vhost __defaultVhost__ {{");
    match a.role {
        SrsRole::Edge => {
            let _ = writeln!(
                c,
                "    cluster {{\n        mode        remote;\n        origin      {};\n    }}",
                a.origins.join(" ")
            );
        }
        SrsRole::Origin => {
            // Origin cluster: a player (an edge) asking for a stream this origin lacks is
            // redirected (RTMP 302) to the origin the index's /api/v1/clusters names.
            let coworker = format!(
                "{}:{}",
                url.host_str().context("--index has no host")?,
                url.port_or_known_default().context("--index has no port")?
            );
            let _ = writeln!(
                c,
                "    cluster {{\n        mode            local;\n        origin_cluster  on;\n        coworkers       {};\n    }}",
                checked("--index", &coworker)?
            );
        }
    }
    let _ = writeln!(
        c,
        "    http_remux {{\n        enabled     on;\n        mount       [vhost]/[app]/[stream].flv;\n    }}"
    );
    let _ = writeln!(
        c,
        "    hls {{\n        enabled     on;\n        hls_fragment {};\n        hls_window  {};\n    }}",
        a.hls_fragment_s.max(1),
        a.hls_fragment_s.max(1) * 6
    );
    let _ = writeln!(c, "    http_hooks {{\n        enabled     on;");
    // On an edge the pull itself runs no hooks; its viewers (and publishers) do.
    for h in ["on_publish", "on_unpublish", "on_play", "on_stop"] {
        let _ = writeln!(c, "        {h:<12} \"{hook}\";");
    }
    let _ = writeln!(c, "    }}\n}}");
    Ok(c)
}

pub fn run(a: SrsConfigArgs) -> anyhow::Result<()> {
    let text = render(&a)?;
    match &a.output {
        Some(path) => std::fs::write(path, &text).with_context(|| format!("cannot write {}", path.display()))?,
        None => print!("{text}"),
    }
    Ok(())
}

#[cfg(test)]
mod tests;
