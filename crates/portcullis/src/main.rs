//! The `portcullis` binary: parses the command line, validates the config before binding
//! anything, and hands a valid config to the proxy. Exit codes: 0 ok, 1 runtime failure,
//! 2 invalid config or usage.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Portcullis: an edge load balancer and API-security gateway.
#[derive(Debug, Parser)]
#[command(name = "portcullis", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the gateway.
    Run {
        /// A config file, or a directory whose *.yaml / *.yml files are merged.
        #[arg(long, short, default_value = "conf/")]
        config: PathBuf,
    },
    /// Validate a config without binding anything; exit 0 when valid, 2 otherwise.
    Check {
        /// A config file, or a directory whose *.yaml / *.yml files are merged.
        #[arg(long, short, default_value = "conf/")]
        config: PathBuf,
    },
    /// Print the JSON Schema of a config file (for editors).
    Schema,
    /// Read an API key on stdin and print the hash to put in `api_keys` (the key itself is
    /// never stored; reading stdin keeps it out of the shell history and the process list).
    HashKey,
    /// Print the version.
    Version,
}

fn main() -> ExitCode {
    // No transparent huge pages: a proxy's heap is small and scattered, and a huge page makes
    // every touched byte of a 2 MiB region resident. mimalloc is built without its own
    // `madvise(MADV_HUGEPAGE)` (feature `no_thp`); this covers kernels with THP set to `always`.
    // Plain bench peak RSS 37.5 -> 26.6 MiB with both, CPU unchanged (docs/performance.md).
    // Failure leaves the kernel's default, so it is not an error.
    let _ = rustix::thread::disable_transparent_huge_pages(true);
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    match cli.command {
        Command::Check { config } => match portcullis_config::load_path(&config) {
            Ok(cfg) => {
                let summary = (cfg.listeners.len(), cfg.upstreams.len(), cfg.routes.len());
                if let Err(e) = portcullis_proxy::verify(cfg) {
                    eprintln!("{}: {:#}", config.display(), anyhow::Error::from(e));
                    return ExitCode::from(2);
                }
                println!(
                    "{}: ok ({} listeners, {} upstreams, {} routes)",
                    config.display(),
                    summary.0,
                    summary.1,
                    summary.2
                );
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{e}");
                eprintln!("{} error(s) in {}", e.diagnostics.len(), config.display());
                ExitCode::from(2)
            }
        },
        Command::Schema => {
            println!("{}", portcullis_config::json_schema());
            ExitCode::SUCCESS
        }
        Command::HashKey => {
            let mut key = String::new();
            if std::io::stdin().read_line(&mut key).is_err() || key.trim().is_empty() {
                eprintln!("portcullis hash-key: write the key on stdin, e.g. `printf %s \"$KEY\" | portcullis hash-key`");
                return ExitCode::from(2);
            }
            println!(
                "{}",
                portcullis_auth::hash_api_key(key.trim_end_matches(['\r', '\n']))
            );
            ExitCode::SUCCESS
        }
        Command::Version => {
            println!("portcullis {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        Command::Run { config } => run(config),
    }
}

fn run(path: PathBuf) -> ExitCode {
    init_logging();
    let config = match portcullis_config::load_path(&path) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            eprintln!(
                "{} error(s) in {}; not starting",
                e.diagnostics.len(),
                path.display()
            );
            return ExitCode::from(2);
        }
    };
    match portcullis_proxy::run(path, config) {
        Ok(never) => match never {},
        Err(e) => {
            // A config that validates but cannot be compiled (an unreadable key file, ...) is a
            // config error too: exit 2, like `check`.
            let code = if matches!(e, portcullis_proxy::StartError::Build(_)) {
                2
            } else {
                1
            };
            let chain = anyhow::Error::from(e);
            eprintln!("portcullis: {chain:#}");
            ExitCode::from(code)
        }
    }
}

/// JSON logs on stderr (stdout carries the access log). `PORTCULLIS_LOG` sets the filter.
fn init_logging() {
    let filter =
        tracing_subscriber::EnvFilter::try_from_env("PORTCULLIS_LOG").unwrap_or_else(|_| {
            tracing_subscriber::EnvFilter::new(
                "info,pingora=warn,pingora_core=warn,pingora_proxy=warn",
            )
        });
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_current_span(false)
        .try_init();
}
