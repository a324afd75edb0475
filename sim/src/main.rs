#![forbid(unsafe_code)]
//! `whisk-sim`: runs one simulated OpenWhisk controller until interrupted.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Parser;
use whisk_sim::{Flavor, SimConfig, Simulator};

#[derive(Parser)]
#[command(version, about = "A simulated Apache OpenWhisk controller (REST API on HTTP/1.1)")]
struct Args {
    /// Port to listen on (0 picks a free one and prints it).
    #[arg(long, default_value_t = 3233)]
    port: u16,
    /// Address to bind.
    #[arg(long, default_value = "127.0.0.1")]
    host: std::net::IpAddr,
    /// legacy (Kafka path) or scheduler (FPC); overrides the profile's flavor.
    #[arg(long, value_parser = parse_flavor)]
    flavor: Option<Flavor>,
    /// JSON file with a simulator config (actions, latency, errors, auth, throttles).
    #[arg(long)]
    profile: Option<PathBuf>,
}

fn parse_flavor(text: &str) -> Result<Flavor, String> {
    match text {
        "legacy" => Ok(Flavor::Legacy),
        "scheduler" => Ok(Flavor::Scheduler),
        _ => Err(format!("unknown flavor `{text}` (expected legacy or scheduler)")),
    }
}

fn main() {
    let args = Args::parse();
    let mut config = match &args.profile {
        None => SimConfig::default(),
        Some(path) => {
            let text = std::fs::read_to_string(path).unwrap_or_else(|e| fail(&format!("{}: {e}", path.display())));
            serde_json::from_str(&text).unwrap_or_else(|e| fail(&format!("{}: {e}", path.display())))
        }
    };
    if let Some(flavor) = args.flavor {
        config.flavor = flavor;
    }
    let flavor = config.flavor;
    let sim = Simulator::start(config, SocketAddr::new(args.host, args.port))
        .unwrap_or_else(|e| fail(&format!("cannot listen on {}:{}: {e}", args.host, args.port)));
    println!("whisk-sim ({}) listening on http://{}", flavor.as_str(), sim.addr());
    sim.wait();
}

fn fail(message: &str) -> ! {
    eprintln!("whisk-sim: {message}");
    std::process::exit(2);
}
