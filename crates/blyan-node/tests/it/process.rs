//! The built binary as operators run it: start with no configuration file, serve, produce,
//! export metrics, stop on SIGTERM with exit code 0, and resume on the next start. Also the
//! key and genesis commands.

use std::io::{BufRead as _, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use blyan_node::{ApiClient, StatusView};

use crate::support::poll;

const BIN: &str = env!("CARGO_BIN_EXE_blyan-node");
const DEADLINE: Duration = Duration::from_secs(60);

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A node process and the lines of its standard output.
struct NodeProcess {
    child: Child,
    api: SocketAddr,
    /// Output lines up to and including the banner's `api` line.
    banner: Vec<String>,
}

fn command(dir: &Path) -> Command {
    let mut command = Command::new(BIN);
    command
        .current_dir(dir)
        .env_clear()
        .env("BLYAN_SECURITY__KDF_MEMORY_KIB", "64")
        .env("BLYAN_SECURITY__KDF_PASSES", "1")
        .env("LOG_FORMAT", "json");
    command
}

fn spawn_node(dir: &Path, metrics_port: u16) -> NodeProcess {
    let mut command = command(dir);
    command
        .env("BLYAN_CONSENSUS__SLOT_DURATION_MS", "200")
        .env("BLYAN_API__LISTEN_ADDR", "127.0.0.1:0")
        .env("BLYAN_NETWORK__LISTEN_ADDR", "127.0.0.1:0")
        .env(
            "BLYAN_METRICS__LISTEN_ADDR",
            format!("127.0.0.1:{metrics_port}"),
        );
    spawn(command)
}

/// Starts `command` and reads its banner up to the `api` line.
fn spawn(mut command: Command) -> NodeProcess {
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, lines) = mpsc::channel();
    // Drains stdout for the whole run, so the node never blocks on a full pipe.
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let start = Instant::now();
    let mut banner = Vec::new();
    let api = loop {
        let line = lines
            .recv_timeout(DEADLINE.saturating_sub(start.elapsed()))
            .expect("the banner's api line");
        banner.push(line.clone());
        if let Some(url) = line.trim().strip_prefix("api") {
            break url.trim().trim_start_matches("http://").parse().unwrap();
        }
    };
    NodeProcess { child, api, banner }
}

impl NodeProcess {
    fn banner_line(&self, key: &str) -> String {
        self.banner
            .iter()
            .find_map(|line| line.trim().strip_prefix(key).map(|v| v.trim().to_owned()))
            .unwrap_or_else(|| panic!("no {key:?} in banner {:?}", self.banner))
    }

    /// Sends SIGTERM and waits for the exit status.
    async fn terminate(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        let killed = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(killed.success());
        poll("the node to exit", DEADLINE, || {
            let status = self.child.try_wait().unwrap();
            std::future::ready(status)
        })
        .await
    }
}

async fn wait_for_height(client: &ApiClient, height: u64) -> StatusView {
    poll("the chain to grow", DEADLINE, || async {
        let status = client.status().await.ok()?;
        (status.height >= height).then_some(status)
    })
    .await
}

fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_runs_stops_on_sigterm_and_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let metrics_port = free_port();
    let node = spawn_node(dir.path(), metrics_port);
    let client = ApiClient::new(node.api);
    poll("/health", DEADLINE, || async {
        let response = client.request("GET", "/health", None).await.ok()?;
        (response.status == 200).then_some(())
    })
    .await;
    let status = wait_for_height(&client, 2).await;
    assert_eq!(status.role, "VALIDATOR");
    assert!(dir.path().join("data/chain.redb").exists());
    assert!(dir.path().join("data/node.key").exists());

    // The metrics the node owns are exported and move.
    let metrics = ApiClient::new(SocketAddr::from(([127, 0, 0, 1], metrics_port)));
    let text = poll("chain height metric", DEADLINE, || async {
        let response = metrics.request("GET", "/metrics", None).await.ok()?;
        let text = String::from_utf8(response.body).ok()?;
        // The network service's gauges are set on its first tick.
        let synced = metric(&text, "blyan_sync_progress_ratio")? == 1.0;
        (metric(&text, "blyan_chain_height")? >= 1.0 && synced).then_some(text)
    })
    .await;
    assert_eq!(
        metric(&text, "blyan_build_info{version=\"0.1.0\"}"),
        Some(1.0)
    );
    assert!(metric(&text, "blyan_blocks_total{status=\"imported\"}").unwrap() >= 1.0);
    assert_eq!(metric(&text, "blyan_mempool_transactions"), Some(0.0));
    assert!(text.contains("blyan_block_processing_seconds_count"));
    assert_eq!(
        metric(&text, "blyan_p2p_peers{direction=\"inbound\"}"),
        Some(0.0),
        "a lone node has no peers"
    );
    assert_eq!(metric(&text, "blyan_banned_peers"), Some(0.0));

    // `blyan-node status` reads the same node.
    let output = command(dir.path())
        .args(["status", "--api", &node.api.to_string()])
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let reported: StatusView = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(reported.genesis_hash, status.genesis_hash);

    assert_eq!(node.banner_line("genesis "), status.genesis_hash);
    assert!(node.banner_line("chain id").contains("dev chain"));
    assert_eq!(node.banner_line("api"), format!("http://{}", node.api));
    let stopped_at = client.status().await.unwrap().height;
    let exit = node.terminate().await;
    assert_eq!(exit.code(), Some(0), "clean exit on SIGTERM");

    let node = spawn_node(dir.path(), metrics_port);
    let client = ApiClient::new(node.api);
    let resumed = poll("the restarted node", DEADLINE, || async {
        client.status().await.ok()
    })
    .await;
    assert_eq!(resumed.genesis_hash, status.genesis_hash);
    assert_eq!(resumed.peer_id, status.peer_id);
    let banner_height: u64 = node
        .banner_line("height")
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(banner_height >= stopped_at, "banner height {banner_height}");
    assert!(
        resumed.height >= stopped_at,
        "resumed at {} after stopping at {stopped_at}",
        resumed.height
    );
    wait_for_height(&client, stopped_at + 1).await;
    assert_eq!(node.terminate().await.code(), Some(0));
}

/// A FULL node following the dev chain of `seed` (whose data dir is `seed_dir/data`), with
/// its configuration file in `dir`.
fn spawn_follower(dir: &Path, seed_dir: &Path, seed: &NodeProcess) -> NodeProcess {
    let genesis = dir.join("genesis.json");
    if !genesis.exists() {
        std::fs::copy(seed_dir.join("data/genesis.json"), &genesis).unwrap();
    }
    let config = format!(
        "node:\n  role: FULL\nconsensus:\n  genesis_file: {}\nbootstrap:\n  nodes: [\"{}\"]\n",
        genesis.display(),
        seed.banner_line("p2p")
    );
    std::fs::write(dir.join("node.yaml"), config).unwrap();
    let mut command = command(dir);
    command
        .env("BLYAN_KEY_PASSPHRASE", "follower")
        .env("BLYAN_API__LISTEN_ADDR", "127.0.0.1:0")
        .env("BLYAN_NETWORK__LISTEN_ADDR", "127.0.0.1:0")
        .env("BLYAN_METRICS__ENABLED", "false")
        .args(["--config", "node.yaml"]);
    spawn(command)
}

async fn block_hash(client: &ApiClient, height: u64) -> Option<String> {
    let block: blyan_node::BlockView = client
        .get_json(&format!("/api/blocks/{height}"))
        .await
        .ok()?;
    Some(block.hash)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_killed_with_sigkill_resumes_and_catches_up() {
    let seed_dir = tempfile::tempdir().unwrap();
    let seed = spawn_node(seed_dir.path(), free_port());
    let seed_client = ApiClient::new(seed.api);
    wait_for_height(&seed_client, 3).await;

    let dir = tempfile::tempdir().unwrap();
    let follower = spawn_follower(dir.path(), seed_dir.path(), &seed);
    let client = ApiClient::new(follower.api);
    let target = seed_client.status().await.unwrap().height + 5;
    let before = wait_for_height(&client, target).await;
    assert_eq!(before.role, "FULL");
    assert!(before.peers >= 1);

    // SIGKILL: no shutdown path runs.
    let mut killed = follower.child;
    killed.kill().unwrap();
    killed.wait().unwrap();
    wait_for_height(&seed_client, before.height + 15).await;

    let follower = spawn_follower(dir.path(), seed_dir.path(), &seed);
    let client = ApiClient::new(follower.api);
    let resumed = poll("the restarted follower", DEADLINE, || async {
        client.status().await.ok()
    })
    .await;
    assert_eq!(
        resumed.peer_id, before.peer_id,
        "same identity after the crash"
    );
    assert!(
        resumed.height >= before.height.saturating_sub(1),
        "resumed from its database"
    );
    let caught_up = poll("the follower to catch up", DEADLINE, || async {
        let theirs = seed_client.status().await.ok()?.height;
        let ours = client.status().await.ok()?.height;
        (ours + 2 >= theirs && ours > before.height + 10).then_some(ours)
    })
    .await;
    let height = caught_up - 1;
    assert_eq!(
        block_hash(&client, height).await,
        block_hash(&seed_client, height).await
    );
    assert_eq!(follower.terminate().await.code(), Some(0));
    assert_eq!(seed.terminate().await.code(), Some(0));
}

fn run(command: &mut Command) -> Output {
    let output = command.output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

#[test]
fn keygen_init_and_key_commands() {
    let dir = tempfile::tempdir().unwrap();
    let with_pass = |c: &mut Command| {
        c.env("BLYAN_KEY_PASSPHRASE", "first");
    };

    // keygen without a passphrase is refused.
    let refused = command(dir.path()).arg("keygen").output().unwrap();
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("BLYAN_KEY_PASSPHRASE"));

    let mut keygen = command(dir.path());
    with_pass(&mut keygen);
    let output = run(keygen.args(["keygen", "--key-file", "v.key"]));
    let text = String::from_utf8(output.stdout).unwrap();
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name).map(|v| v.trim().to_owned()))
            .unwrap()
    };
    let public_key = field("public key");
    let address = field("address");

    let output = run(command(dir.path()).args([
        "init",
        "--validator",
        &public_key,
        "--balance",
        &format!("{address}=1000"),
        "--chain-id",
        "9",
        "--out",
        "g.json",
    ]));
    assert!(String::from_utf8_lossy(&output.stdout).contains("chain id     9"));
    let genesis = blyan_node::read_genesis(&dir.path().join("g.json")).unwrap();
    assert_eq!(genesis.chain_id, 9);
    assert_eq!(genesis.validators[0].to_string(), public_key);
    // A second init does not overwrite without --force.
    let again = command(dir.path())
        .args(["init", "--validator", &public_key, "--out", "g.json"])
        .output()
        .unwrap();
    assert!(!again.status.success());

    let mut rotate = command(dir.path());
    with_pass(&mut rotate);
    run(rotate.env("BLYAN_NEW_KEY_PASSPHRASE", "second").args([
        "key",
        "rotate-passphrase",
        "--key-file",
        "v.key",
    ]));
    let output = run(command(dir.path())
        .env("BLYAN_KEY_PASSPHRASE", "second")
        .args(["key", "show", "--key-file", "v.key"]));
    assert!(String::from_utf8_lossy(&output.stdout).contains(&public_key));
    let mut old = command(dir.path());
    with_pass(&mut old);
    let wrong = old
        .args(["key", "show", "--key-file", "v.key"])
        .output()
        .unwrap();
    assert!(!wrong.status.success());

    for args in [
        &["--help"][..],
        &["run", "--help"],
        &["keygen", "--help"],
        &["key", "rotate-passphrase", "--help"],
        &["init", "--help"],
        &["status", "--help"],
    ] {
        let output = run(command(dir.path()).args(args));
        assert!(String::from_utf8_lossy(&output.stdout).contains("Usage"));
    }
}
