//! `freshet serve`: load the layered configuration and run a broker until SIGTERM or Ctrl-C.

use anyhow::Context;
use freshet_broker::{config::scalar, Broker, BrokerConfig};
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct ServeArgs {
    /// TOML configuration file (keys as in BrokerConfig, e.g. `data_dir`, `listen`).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Data directory (created if missing).
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Address to listen on.
    #[arg(long, value_name = "HOST:PORT")]
    listen: Option<String>,
    /// Address advertised to clients in metadata.
    #[arg(long, value_name = "HOST:PORT")]
    advertised_listener: Option<String>,
    /// This broker's node id.
    #[arg(long, value_name = "ID")]
    node_id: Option<i32>,
    /// Any other configuration key, as KEY=VALUE (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
}

impl ServeArgs {
    fn overrides(&self) -> anyhow::Result<toml::Table> {
        let mut t = toml::Table::new();
        if let Some(d) = &self.data_dir {
            t.insert(
                "data_dir".into(),
                toml::Value::String(d.display().to_string()),
            );
        }
        for (key, value) in [
            ("listen", &self.listen),
            ("advertised_listener", &self.advertised_listener),
        ] {
            if let Some(v) = value {
                t.insert(key.into(), toml::Value::String(v.clone()));
            }
        }
        if let Some(id) = self.node_id {
            t.insert("node_id".into(), toml::Value::Integer(id.into()));
        }
        for kv in &self.set {
            let (k, v) = kv
                .split_once('=')
                .with_context(|| format!("--set expects KEY=VALUE, got {kv:?}"))?;
            t.insert(k.trim().to_string(), scalar(v.trim()));
        }
        Ok(t)
    }
}

pub fn load_config(args: &ServeArgs) -> anyhow::Result<BrokerConfig> {
    let text = match &args.config {
        Some(path) => Some((
            std::fs::read_to_string(path)
                .with_context(|| format!("cannot read config file {}", path.display()))?,
            path.clone(),
        )),
        None => None,
    };
    let file = text.as_ref().map(|(t, p)| (t.as_str(), p.clone()));
    Ok(BrokerConfig::load(
        file,
        std::env::vars(),
        args.overrides()?,
    )?)
}

pub fn run(args: ServeArgs) -> anyhow::Result<()> {
    freshet_broker::prewarm();
    let config = load_config(&args)?;
    init_logging();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    runtime.block_on(serve(config))
}

async fn serve(config: BrokerConfig) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let data_dir = config.data_dir.clone();
    let broker = Broker::start(config).await?;
    tracing::info!(
        listen = %broker.local_addr(),
        data_dir = %data_dir.display(),
        cluster_id = broker.cluster_id().unwrap_or_default(),
        startup_ms = started.elapsed().as_millis() as u64,
        "freshet broker ready"
    );
    wait_for_signal().await?;
    tracing::info!("shutting down");
    broker.shutdown().await?;
    tracing::info!("stopped cleanly");
    Ok(())
}

/// Ctrl-C or SIGTERM, whichever comes first.
async fn wait_for_signal() -> anyhow::Result<()> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r.context("waiting for Ctrl-C"),
        _ = term.recv() => Ok(()),
    }
}

/// Logs to stderr; `RUST_LOG` filters (default `info`).
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| "info,openraft=warn".into());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
