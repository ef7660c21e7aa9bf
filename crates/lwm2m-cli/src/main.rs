//! `lwm2m`: one binary for the LwM2M server, bootstrap server, client, codec tools and benchmarks.
#![forbid(unsafe_code)]

mod bench_cmd;
mod bootstrap_cmd;
mod client_cmd;
mod codec;
mod pem;
mod serve;
mod server_cmd;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// lwm2m-rs: an OMA LightweightM2M 1.1 stack.
///
/// `lwm2m server` runs the LwM2M server with its REST API and web UI, `lwm2m bootstrap` the Bootstrap-Server
/// with its configuration UI, `lwm2m client` runs a demo device, `lwm2m codec` converts payloads between every
/// LwM2M content format and JSON, and `lwm2m bench` load-tests a running server.
#[derive(Parser, Debug)]
#[command(name = "lwm2m", version, about, long_about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Encode and decode LwM2M payloads in every 1.1 content format.
    Codec(codec::CodecArgs),
    /// Run the LwM2M 1.1 server with its REST API and web UI (CoAP 5683, CoAPS 5684, HTTP 8080).
    Server(server_cmd::ServerArgs),
    /// Run a demo LwM2M 1.1 device (objects 0-7 and a temperature sensor), driven from stdin.
    Client(client_cmd::ClientArgs),
    /// Run the LwM2M 1.1 Bootstrap-Server (CoAP 5783, CoAPS 5784, REST API and UI on HTTP 8081).
    Bootstrap(bootstrap_cmd::BootstrapArgs),
    /// Load-test a live LwM2M server: simulated devices Register, Update, answer reads and De-register.
    Bench(bench_cmd::BenchArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Codec(args) => codec::run(args),
        Command::Client(args) => client_cmd::run(args),
        Command::Server(args) => server_cmd::run(args),
        Command::Bootstrap(args) => bootstrap_cmd::run(args),
        Command::Bench(args) => bench_cmd::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line: the cause chain joined, so scripts can show it as is.
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
