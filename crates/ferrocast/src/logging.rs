//! Log set-up shared by every subcommand: human lines by default, JSON lines with
//! `--log-format json`; the level comes from `RUST_LOG` (default `info`;
//! `warn` for `ferrocast up`).

use ferrocast_node::LogFormat;
use tracing_subscriber::EnvFilter;

pub fn init(format: LogFormat) {
    init_with_default(format, "info");
}

/// As `init`, with another level when `RUST_LOG` is unset (`ferrocast up` keeps its table in view).
pub fn init_with_default(format: LogFormat, level: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}
