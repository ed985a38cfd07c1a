//! The connection options every client subcommand shares, and the runtime they run on.

use freshet_client::ClientConfig;

/// Where the cluster is.
#[derive(clap::Args, Debug, Clone)]
pub struct ConnectArgs {
    /// Broker(s) to bootstrap from, `host:port[,host:port...]`.
    #[arg(
        long,
        global = true,
        env = "FRESHET_BOOTSTRAP",
        default_value = "127.0.0.1:9092",
        value_name = "HOST:PORT"
    )]
    pub bootstrap_server: String,
    /// How long one request may wait for its response.
    #[arg(long, global = true, default_value_t = 30_000, value_name = "MS")]
    pub request_timeout_ms: u64,
}

impl ConnectArgs {
    pub fn client_config(&self) -> ClientConfig {
        let mut config = ClientConfig::new(&self.bootstrap_server);
        config.connection.client_id = "freshet-cli".to_owned();
        config.connection.request_timeout_ms = self.request_timeout_ms;
        config.connection.connect_timeout_ms = self.request_timeout_ms.min(10_000);
        config
    }
}

/// Runs a client command on a small runtime of its own (the CLI is not otherwise async).
pub fn block_on<F: std::future::Future>(future: F) -> anyhow::Result<F::Output> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    Ok(runtime.block_on(future))
}
