//! The `blyan-node` binary: parses the command line and runs one command. All logic lives
//! in the `blyan_node` library; this file wires it to the process (runtime, signals, exit
//! code, standard output).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, bail};
use blyan_crypto::KeyStore;
use blyan_node::{
    ApiClient, Banner, Cli, Command, Devnet, DevnetSpec, GenesisSpec, InitArgs, KeyCommand, Node,
    NodeConfig, NodeOptions, read_passphrase_file, resolve_passphrase, write_genesis,
};
use clap::Parser as _;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(dispatch(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn dispatch(cli: Cli) -> anyhow::Result<()> {
    let config_path = cli.config.as_deref();
    match cli.command.unwrap_or(Command::Run) {
        Command::Run => run(config_path).await,
        Command::Keygen { key_file } => keygen(config_path, key_file),
        Command::Key(KeyCommand::RotatePassphrase {
            key_file,
            new_passphrase_env,
            new_passphrase_file,
        }) => rotate_passphrase(
            config_path,
            key_file,
            &new_passphrase_env,
            new_passphrase_file,
        ),
        Command::Key(KeyCommand::Show { key_file }) => show_key(config_path, key_file),
        Command::Init(args) => init(config_path, args),
        Command::Status { api } => status(config_path, api).await,
        Command::Devnet { nodes, dir } => devnet(config_path, nodes, dir).await,
    }
}

fn load_config(path: Option<&Path>) -> anyhow::Result<NodeConfig> {
    Ok(NodeConfig::load_from_env(path)?)
}

async fn run(config_path: Option<&Path>) -> anyhow::Result<()> {
    let config = load_config(config_path)?;
    let log = config.logging.to_log_config()?;
    blyan_ops::init_logging(log.format, &log.level)?;
    let metrics_addr = if config.metrics.enabled {
        blyan_ops::install_prometheus(config.metrics.listen_addr)?;
        blyan_ops::metrics_collector::set_build_info(env!("CARGO_PKG_VERSION"));
        Some(config.metrics.listen_addr)
    } else {
        None
    };
    // Opening derives the key (Argon2) and reads the database: blocking work.
    let node = tokio::task::spawn_blocking(move || Node::open(config, NodeOptions::default()))
        .await
        .context("opening the node")??;
    let data_dir = node.config().storage.path.clone();
    let genesis_file = node.genesis_path().to_path_buf();
    let info = node.handle().info().clone();
    let running = node.start().await?;
    let chain = running.handle().chain_status().await?;
    let banner = Banner {
        info,
        chain,
        data_dir,
        genesis_file,
        api_addr: running.api_addr(),
        p2p_addr: running.p2p_addr(),
        p2p_advertised: running.p2p_advertised(),
        metrics_addr,
    };
    print!("{}", banner.render());
    tracing::info!(api = %running.api_addr(), "node started");

    shutdown_signal().await?;
    tracing::info!("shutdown requested: finishing open requests and the current import");
    running.shutdown().await?;
    tracing::info!("shut down cleanly");
    Ok(())
}

async fn devnet(config_path: Option<&Path>, nodes: usize, dir: PathBuf) -> anyhow::Result<()> {
    let base = load_config(config_path)?;
    let log = base.logging.to_log_config()?;
    blyan_ops::init_logging(log.format, &log.level)?;
    let slot = std::time::Duration::from_millis(base.consensus.slot_duration_ms.max(100));
    let spec = DevnetSpec {
        nodes,
        dir: dir.clone(),
        api_addr: base.api.listen_addr,
        base,
    };
    let net = Devnet::start(spec).await?;
    println!("devnet: {nodes} validators in {}", dir.display());
    for (i, node) in net.nodes().iter().enumerate() {
        println!(
            "  node-{i}: api http://{}  p2p {}  peer {}",
            node.api_addr(),
            node.p2p_addr(),
            node.handle().info().peer_id
        );
    }
    let stop = shutdown_signal();
    tokio::pin!(stop);
    loop {
        tokio::select! {
            result = &mut stop => {
                result?;
                break;
            }
            () = tokio::time::sleep(slot) => {
                let status = net.status().await?;
                let heights: Vec<String> = status.iter().map(|s| s.height.to_string()).collect();
                let peers: Vec<String> = status.iter().map(|s| s.peers.to_string()).collect();
                println!("height {}  peers {}", heights.join(" "), peers.join(" "));
            }
        }
    }
    println!("devnet: shutting down");
    net.shutdown().await?;
    Ok(())
}

#[cfg(unix)]
async fn shutdown_signal() -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut terminate = signal(SignalKind::terminate()).context("installing SIGTERM handler")?;
    let mut interrupt = signal(SignalKind::interrupt()).context("installing SIGINT handler")?;
    tokio::select! {
        _ = terminate.recv() => {}
        _ = interrupt.recv() => {}
    }
    Ok(())
}

#[cfg(not(unix))]
async fn shutdown_signal() -> anyhow::Result<()> {
    tokio::signal::ctrl_c().await.context("waiting for Ctrl-C")
}

fn env_lookup(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

fn keygen(config_path: Option<&Path>, key_file: Option<PathBuf>) -> anyhow::Result<()> {
    let config = load_config(config_path)?;
    let path = key_file.unwrap_or_else(|| config.key_file());
    let (passphrase, _) = resolve_passphrase(&config, &env_lookup, false)?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let key = KeyStore::new(config.security.kdf_params())
        .create(&path, passphrase.as_bytes())
        .with_context(|| format!("creating key file {}", path.display()))?;
    println!("key file    {}", path.display());
    println!("public key  {}", key.public_key());
    println!("peer id     {}", key.peer_id());
    println!("address     {}", key.address());
    Ok(())
}

fn rotate_passphrase(
    config_path: Option<&Path>,
    key_file: Option<PathBuf>,
    new_env: &str,
    new_file: Option<PathBuf>,
) -> anyhow::Result<()> {
    let config = load_config(config_path)?;
    let path = key_file.unwrap_or_else(|| config.key_file());
    let (old, _) = resolve_passphrase(&config, &env_lookup, false)?;
    let new = match (
        std::env::var(new_env).ok().filter(|v| !v.is_empty()),
        new_file,
    ) {
        (Some(value), _) => zeroize::Zeroizing::new(value),
        (None, Some(file)) => read_passphrase_file(&file)?,
        (None, None) => bail!("no new passphrase: set {new_env} or pass --new-passphrase-file"),
    };
    KeyStore::new(config.security.kdf_params())
        .rotate_passphrase(&path, old.as_bytes(), new.as_bytes())
        .with_context(|| format!("rotating the passphrase of {}", path.display()))?;
    println!("re-encrypted {} under the new passphrase", path.display());
    Ok(())
}

fn show_key(config_path: Option<&Path>, key_file: Option<PathBuf>) -> anyhow::Result<()> {
    let config = load_config(config_path)?;
    let path = key_file.unwrap_or_else(|| config.key_file());
    let dev =
        config.consensus.genesis_file.is_none() && blyan_node::dev_passphrase_path(&path).exists();
    let (passphrase, _) = resolve_passphrase(&config, &env_lookup, dev)?;
    let key = KeyStore::default()
        .load(&path, passphrase.as_bytes())
        .with_context(|| format!("opening key file {}", path.display()))?;
    println!("public key  {}", key.public_key());
    println!("peer id     {}", key.peer_id());
    println!("address     {}", key.address());
    Ok(())
}

fn init(config_path: Option<&Path>, args: InitArgs) -> anyhow::Result<()> {
    let config = load_config(config_path)?;
    let consensus = &config.consensus;
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0);
    let mut params = consensus.params();
    params.finality_depth = args.finality_depth.unwrap_or(params.finality_depth);
    params.max_reorg_depth = args.max_reorg_depth.unwrap_or(params.max_reorg_depth);
    if params.finality_depth > params.max_reorg_depth || params.max_reorg_depth == 0 {
        bail!("need 1 <= max_reorg_depth and finality_depth <= max_reorg_depth");
    }
    let genesis = GenesisSpec {
        chain_id: args.chain_id.unwrap_or(consensus.chain_id),
        genesis_time_ms: args.genesis_time_ms.unwrap_or(now_ms),
        slot_duration_ms: args.slot_duration_ms.unwrap_or(consensus.slot_duration_ms),
        validators: args.validators,
        balances: args.balances,
        params,
    }
    .build()?;
    write_genesis(&args.out, &genesis, args.force)?;
    println!("wrote {}", args.out.display());
    println!("chain id     {}", genesis.chain_id);
    println!("genesis      {}", genesis.hash()?);
    println!("validators   {}", genesis.validators.len());
    println!("accounts     {}", genesis.balances.len());
    Ok(())
}

async fn status(
    config_path: Option<&Path>,
    api: Option<std::net::SocketAddr>,
) -> anyhow::Result<()> {
    let mut addr = match api {
        Some(addr) => addr,
        None => load_config(config_path)?.api.listen_addr,
    };
    if addr.ip().is_unspecified() {
        addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    let status = ApiClient::new(addr).status().await?;
    println!("{}", serde_json::to_string_pretty(&status)?);
    Ok(())
}
