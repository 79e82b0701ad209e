//! The command line (clap derive). The binary dispatches on [`Command`]; the definitions
//! live in the library so they can be tested and documented with the rest.

use std::net::SocketAddr;
use std::path::PathBuf;

use blyan_crypto::{Address, PublicKey};
use clap::{Args, Parser, Subcommand};

/// Blyan node: a proof-of-authority blockchain node.
///
/// Without a subcommand it runs the node. With no configuration at all that is a
/// single-validator dev chain in ./data, the API on 127.0.0.1:8080 and metrics on
/// 127.0.0.1:9090.
#[derive(Debug, Clone, Parser)]
#[command(name = "blyan-node", version)]
pub struct Cli {
    /// YAML configuration file (see config/node.yaml). Without it: defaults, overridden by
    /// the environment (NODE_ID, LOG_LEVEL, LOG_FORMAT, `BLYAN_<SECTION>__<KEY>`).
    #[arg(long, short, global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// What to do (default: run).
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The subcommands.
#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Run the node (the default).
    Run,
    /// Create a new encrypted node key file and print its identity. The passphrase comes
    /// from security.passphrase_env (default BLYAN_KEY_PASSPHRASE) or
    /// security.passphrase_file.
    Keygen {
        /// Where to write the key (default: security.key_file, or <storage.path>/node.key).
        #[arg(long, value_name = "PATH")]
        key_file: Option<PathBuf>,
    },
    /// Manage the node key file.
    #[command(subcommand)]
    Key(KeyCommand),
    /// Write a genesis file for a validator set, initial balances and parameters.
    Init(InitArgs),
    /// Run N validators in this process on loopback ports (a local test network), printing
    /// their heights and peer counts every slot. Node i serves its API on api.listen_addr's
    /// port + i; keys are fixed per index and public: development only.
    Devnet {
        /// Number of validators.
        #[arg(long, default_value_t = 4)]
        nodes: usize,
        /// Directory of the devnet (genesis and one node-N/ directory per validator). A second run
        /// with the same directory resumes the chain.
        #[arg(long, value_name = "PATH", default_value = "data/devnet")]
        dir: PathBuf,
    },
    /// Query the /api/status of a running node.
    Status {
        /// API address (default: api.listen_addr of the configuration).
        #[arg(long, value_name = "ADDR")]
        api: Option<SocketAddr>,
    },
}

/// `blyan-node key ...`
#[derive(Debug, Clone, Subcommand)]
pub enum KeyCommand {
    /// Re-encrypt the key file under a new passphrase. The old passphrase comes from the
    /// usual source; the new one from --new-passphrase-env or --new-passphrase-file.
    RotatePassphrase {
        /// The key file (default: from the configuration).
        #[arg(long, value_name = "PATH")]
        key_file: Option<PathBuf>,
        /// Environment variable holding the new passphrase.
        #[arg(long, value_name = "VAR", default_value = "BLYAN_NEW_KEY_PASSPHRASE")]
        new_passphrase_env: String,
        /// File holding the new passphrase (used when the variable is unset).
        #[arg(long, value_name = "PATH")]
        new_passphrase_file: Option<PathBuf>,
    },
    /// Print the public key, peer id and address of the key file.
    Show {
        /// The key file (default: from the configuration).
        #[arg(long, value_name = "PATH")]
        key_file: Option<PathBuf>,
    },
}

/// `blyan-node init`: the genesis document. Unset parameters come from the configuration's
/// consensus section (and its defaults).
#[derive(Debug, Clone, Args)]
pub struct InitArgs {
    /// A validator's public key (64 hex characters), in slot order; repeat for each.
    #[arg(long = "validator", value_name = "PUBLIC_KEY", required = true)]
    pub validators: Vec<PublicKey>,
    /// An initial balance, ADDRESS=AMOUNT; repeat for each account.
    #[arg(long = "balance", value_name = "ADDRESS=AMOUNT", value_parser = parse_balance)]
    pub balances: Vec<(Address, u64)>,
    /// Chain id.
    #[arg(long)]
    pub chain_id: Option<u32>,
    /// Slot length in milliseconds.
    #[arg(long)]
    pub slot_duration_ms: Option<u64>,
    /// Start of slot 0, milliseconds since the Unix epoch (default: now).
    #[arg(long)]
    pub genesis_time_ms: Option<u64>,
    /// Finality depth in blocks.
    #[arg(long)]
    pub finality_depth: Option<u64>,
    /// Deepest accepted reorg in blocks.
    #[arg(long)]
    pub max_reorg_depth: Option<u64>,
    /// Output file.
    #[arg(long, value_name = "PATH", default_value = "genesis.json")]
    pub out: PathBuf,
    /// Replace an existing file.
    #[arg(long)]
    pub force: bool,
}

/// Parses `ADDRESS=AMOUNT`.
pub fn parse_balance(s: &str) -> Result<(Address, u64), String> {
    let (address, amount) = s
        .split_once('=')
        .ok_or_else(|| "expected ADDRESS=AMOUNT".to_owned())?;
    let address = address
        .trim()
        .parse()
        .map_err(|e| format!("bad address: {e}"))?;
    let amount = amount
        .trim()
        .parse()
        .map_err(|e| format!("bad amount: {e}"))?;
    Ok((address, amount))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory as _;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn run_is_the_default_and_subcommands_parse() {
        let cli = Cli::try_parse_from(["blyan-node"]).unwrap();
        assert!(cli.command.is_none());
        let cli = Cli::try_parse_from(["blyan-node", "run", "--config", "x.yaml"]).unwrap();
        assert!(matches!(cli.command, Some(Command::Run)));
        assert_eq!(cli.config, Some(PathBuf::from("x.yaml")));
        let key = blyan_crypto::KeyPair::from_seed(&[1; 32]);
        let cli = Cli::try_parse_from([
            "blyan-node".to_owned(),
            "init".to_owned(),
            "--validator".to_owned(),
            key.public_key().to_string(),
            "--balance".to_owned(),
            format!("{}=5", key.address()),
        ])
        .unwrap();
        let Some(Command::Init(args)) = cli.command else {
            panic!("not init");
        };
        assert_eq!(args.validators, vec![key.public_key()]);
        assert_eq!(args.balances, vec![(key.address(), 5)]);
        assert!(Cli::try_parse_from(["blyan-node", "init", "--validator", "zz"]).is_err());
        assert!(parse_balance("nope").is_err());
    }
}
