//! `tasktrack-sim`: run one simulator as a standalone process.

use std::process::ExitCode;

use clap::Parser;
use tasktrack_sim::standalone::{serve, SimOptions, VendorName, CONTROL_API_HELP};

/// Runs one vendor simulator in the foreground so curl or any client can be
/// pointed at it.
#[derive(Parser, Debug)]
#[command(name = "tasktrack-sim", version, after_help = CONTROL_API_HELP)]
struct Args {
    /// Which vendor's API to speak.
    #[arg(long, value_enum)]
    vendor: VendorName,
    #[command(flatten)]
    options: SimOptions,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    serve(args.vendor, args.options).await
}
