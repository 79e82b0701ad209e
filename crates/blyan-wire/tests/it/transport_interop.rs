//! Interop: an independent QUIC + TLS stack (Python aioquic, `scripts/interop/aioquic_client.py`)
//! talks to an `Endpoint` using only the protocol spec. Needs the venv that
//! `scripts/install-aioquic.sh` creates (or `BLYAN_INTEROP_PYTHON` naming an interpreter
//! with aioquic and cryptography); without it this test fails and says so.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use blyan_wire::Endpoint;

use crate::transport_support::{config, key, localhost, serve, within};

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `BLYAN_INTEROP_PYTHON`, else `$BLYAN_INTEROP_VENV/bin/python`, else the default venv.
fn find_python() -> Option<PathBuf> {
    if let Some(explicit) = std::env::var_os("BLYAN_INTEROP_PYTHON") {
        return Some(PathBuf::from(explicit));
    }
    let venv = std::env::var_os("BLYAN_INTEROP_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target/interop-venv"));
    let python = venv.join("bin/python");
    python.exists().then_some(python)
}

fn python_or_fail() -> PathBuf {
    find_python().unwrap_or_else(|| {
        panic!(
            "aioquic interop venv not found: run scripts/install-aioquic.sh \
             (or set BLYAN_INTEROP_PYTHON to a python with aioquic and cryptography)"
        )
    })
}

async fn run_client(python: PathBuf, args: Vec<String>) -> Output {
    let script = workspace_root().join("scripts/interop/aioquic_client.py");
    let run = tokio::task::spawn_blocking(move || {
        Command::new(&python)
            .arg(&script)
            .args(&args)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", python.display()))
    });
    within(run).await.unwrap()
}

/// Reads one `"name": "value"` string field of the client's one-line JSON report.
fn json_field<'a>(report: &'a str, name: &str) -> &'a str {
    let marker = format!("\"{name}\": \"");
    let start = report
        .find(&marker)
        .unwrap_or_else(|| panic!("no {name} in {report}"))
        + marker.len();
    let len = report[start..].find('"').unwrap();
    &report[start..start + len]
}

#[tokio::test]
async fn aioquic_client_exchanges_a_request_with_an_endpoint() {
    let python = python_or_fail();
    let server = Endpoint::bind(localhost(), &key(100), config()).unwrap();
    let addr = server.local_addr().unwrap();
    let acceptor = server.clone();
    let accepted = tokio::spawn(async move {
        let connection = acceptor.accept().await.unwrap();
        let peer = connection.remote_peer_id();
        let _ = serve(connection);
        peer
    });

    let args = vec![
        addr.ip().to_string(),
        addr.port().to_string(),
        server.peer_id().to_string(),
        "41".to_string(),
    ];
    let output = run_client(python, args).await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "aioquic client failed ({}):\nstdout: {stdout}\nstderr: {stderr}",
        output.status
    );
    assert_eq!(
        json_field(&stdout, "server_peer_id"),
        server.peer_id().to_string()
    );
    // The client's PeerId as it computed it from its own key, and as the server derived it
    // from the client's certificate, agree.
    let client_peer_id = json_field(&stdout, "client_peer_id").to_string();
    let seen = within(accepted).await.unwrap();
    assert_eq!(seen.to_string(), client_peer_id);
    // [42, bin "interop"], uncompressed, framed.
    assert_eq!(
        json_field(&stdout, "response_frame"),
        "0000000c00922ac407696e7465726f70"
    );
}

#[tokio::test]
async fn aioquic_client_refuses_a_server_with_another_peer_id() {
    let python = python_or_fail();
    let server = Endpoint::bind(localhost(), &key(100), config()).unwrap();
    let addr = server.local_addr().unwrap();
    let args = vec![
        addr.ip().to_string(),
        addr.port().to_string(),
        key(101).peer_id().to_string(),
    ];
    let output = run_client(python, args).await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "stderr: {stderr}");
    assert!(stderr.contains("PeerId mismatch"), "stderr: {stderr}");
}
