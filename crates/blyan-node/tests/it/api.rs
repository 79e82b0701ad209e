//! The HTTP API against a real node on a temporary directory (manual clock, production
//! driven by the test): every endpoint, and bad input with its status and error body.

use blyan_consensus::AccountProof;
use blyan_consensus::state::SmtProof;
use blyan_crypto::{Address, Hash};
use blyan_node::{
    AccountView, ApiClient, ApiResponse, BlockView, ErrorBody, ForkView, HealthView, StatusView,
    TxAccepted, TxBody,
};
use serde::de::DeserializeOwned;

use crate::support::{CHAIN_ID, TestChain, USER_BALANCE, clock_at_slot};

async fn get(client: &ApiClient, path: &str) -> ApiResponse {
    client.request("GET", path, None).await.unwrap()
}

async fn post(client: &ApiClient, path: &str, body: Vec<u8>) -> ApiResponse {
    client.request("POST", path, Some(body)).await.unwrap()
}

fn ok<T: DeserializeOwned>(response: &ApiResponse) -> T {
    assert!(
        (200..300).contains(&response.status),
        "status {}: {}",
        response.status,
        String::from_utf8_lossy(&response.body)
    );
    response.json().unwrap()
}

/// Asserts the status and a JSON `{ "error": ... }` body; returns the message.
fn error(response: &ApiResponse, status: u16) -> String {
    assert_eq!(
        response.status,
        status,
        "{}",
        String::from_utf8_lossy(&response.body)
    );
    assert_eq!(response.content_type.as_deref(), Some("application/json"));
    let body: ErrorBody = response.json().unwrap();
    assert!(!body.error.is_empty());
    body.error
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_endpoints_answer_and_refuse_bad_input() {
    let chain = TestChain::new();
    let node = chain.open(clock_at_slot(1)).start().await.unwrap();
    let client = ApiClient::new(node.api_addr());
    let genesis_hash = chain.genesis.hash().unwrap().to_string();

    let health: HealthView = ok(&get(&client, "/health").await);
    assert_eq!(health.status, "ok");

    let status: StatusView = ok(&get(&client, "/api/status").await);
    assert_eq!(status.chain_id, CHAIN_ID);
    assert_eq!(status.genesis_hash, genesis_hash);
    assert_eq!(status.tip_hash, genesis_hash);
    assert_eq!(status.height, 0);
    assert_eq!(status.finalized_height, None);
    assert_eq!(status.role, "VALIDATOR");
    assert!(status.producing);
    assert_eq!(status.peer_id, chain.validator.peer_id().to_string());
    assert_eq!(status.version, env!("CARGO_PKG_VERSION"));
    assert_eq!(status.mempool_size, 0);
    assert_eq!(client.status().await.unwrap(), status);

    let latest: BlockView = ok(&get(&client, "/api/blocks/latest").await);
    assert_eq!(latest.hash, genesis_hash);
    assert_eq!(latest.header.height, 0);
    let by_height: BlockView = ok(&get(&client, "/api/blocks/0").await);
    assert_eq!(by_height, latest);
    let by_hash: BlockView = ok(&get(&client, &format!("/api/blocks/{genesis_hash}")).await);
    assert_eq!(by_hash, latest);

    error(&get(&client, "/api/blocks/99").await, 404);
    error(
        &get(&client, &format!("/api/blocks/{}", "ab".repeat(32))).await,
        404,
    );
    error(&get(&client, "/api/blocks/xyz").await, 400);
    error(&get(&client, "/api/blocks/-1").await, 400);
    error(
        &get(&client, &format!("/api/blocks/{}", "zz".repeat(32))).await,
        400,
    );

    let user = chain.user.address();
    let account: AccountView = ok(&get(&client, &format!("/api/accounts/{user}")).await);
    assert_eq!((account.balance, account.nonce), (USER_BALANCE, 0));
    assert!(account.proof.is_none());
    let proven: AccountView = ok(&get(&client, &format!("/api/accounts/{user}?proof=true")).await);
    verify_proof(&proven, &user).unwrap();
    // An absent account comes with an absence proof.
    let nobody = Address::from_bytes([9; 20]);
    let absent: AccountView =
        ok(&get(&client, &format!("/api/accounts/{nobody}?proof=true")).await);
    assert_eq!((absent.balance, absent.nonce), (0, 0));
    verify_proof(&absent, &nobody).unwrap();
    // A proof does not verify for another account's balance.
    let mut forged = proven.clone();
    forged.balance += 1;
    assert!(verify_proof(&forged, &user).is_err());

    error(&get(&client, "/api/accounts/nothex").await, 400);
    error(&get(&client, &format!("/api/accounts/{user}00")).await, 400);
    error(
        &get(&client, &format!("/api/accounts/{user}?proof=maybe")).await,
        400,
    );

    let forks: Vec<ForkView> = ok(&get(&client, "/api/chain/forks").await);
    assert!(forks.is_empty());

    let peers: Vec<blyan_node::PeerView> = ok(&get(&client, "/api/peers").await);
    assert!(peers.is_empty(), "a lone node has no peers");
    let sync: blyan_node::SyncView = ok(&get(&client, "/api/sync").await);
    assert!(!sync.syncing);
    assert_eq!(sync.current_height, sync.target_height);

    error(&get(&client, "/api/nothing").await, 404);
    error(&post(&client, "/api/status", Vec::new()).await, 405);

    let openapi: serde_json::Value = ok(&get(&client, "/api/openapi.json").await);
    let paths = openapi["paths"].as_object().unwrap();
    for path in [
        "/health",
        "/api/status",
        "/api/peers",
        "/api/sync",
        "/api/blocks/latest",
        "/api/blocks/{id}",
        "/api/accounts/{address}",
        "/api/chain/forks",
        "/api/tx",
    ] {
        assert!(paths.contains_key(path), "openapi lacks {path}");
    }

    node.shutdown().await.unwrap();
}

fn verify_proof(view: &AccountView, address: &Address) -> Result<(), String> {
    let wire = view.proof.as_ref().ok_or("no proof")?;
    let hash = |s: &String| s.parse::<Hash>().map_err(|e| e.to_string());
    let leaf = match &wire.leaf {
        Some(pair) => match pair.as_slice() {
            [key, value] => Some((hash(key)?, hash(value)?)),
            _ => return Err("leaf is not a pair".into()),
        },
        None => None,
    };
    let proof = AccountProof {
        account: (view.balance != 0 || view.nonce != 0).then_some(blyan_consensus::Account {
            balance: view.balance,
            nonce: view.nonce,
        }),
        proof: SmtProof {
            siblings: wire.siblings.iter().map(hash).collect::<Result<_, _>>()?,
            leaf,
        },
    };
    let root = hash(&view.state_root)?;
    proof
        .verify(&root, address)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn submitted_transactions_are_checked_and_pooled() {
    let chain = TestChain::new();
    let node = chain.open(clock_at_slot(1)).start().await.unwrap();
    let client = ApiClient::new(node.api_addr());
    let tx = chain.transfer(0, 100, 5);
    let body = serde_json::to_vec(&TxBody::from_signed(&tx)).unwrap();

    error(&post(&client, "/api/tx", b"{ not json".to_vec()).await, 400);
    error(&post(&client, "/api/tx", b"{}".to_vec()).await, 400);
    let mut unknown: serde_json::Value = serde_json::from_slice(&body).unwrap();
    unknown["extra"] = 1.into();
    error(
        &post(&client, "/api/tx", serde_json::to_vec(&unknown).unwrap()).await,
        400,
    );
    let mut bad_hex = TxBody::from_signed(&tx);
    bad_hex.signature = "00".into();
    let message = error(
        &post(&client, "/api/tx", serde_json::to_vec(&bad_hex).unwrap()).await,
        400,
    );
    assert!(message.contains("signature"), "{message}");

    // Well-formed but breaking a rule: 422.
    let mut forged = TxBody::from_signed(&tx);
    forged.amount += 1;
    let message = error(
        &post(&client, "/api/tx", serde_json::to_vec(&forged).unwrap()).await,
        422,
    );
    assert!(message.contains("signature"), "{message}");
    let broke = chain.transfer(0, USER_BALANCE, 1);
    error(
        &post(
            &client,
            "/api/tx",
            serde_json::to_vec(&TxBody::from_signed(&broke)).unwrap(),
        )
        .await,
        422,
    );

    // Over api.max_body_bytes (4 KiB in the fixture): 413 with a JSON error.
    let mut huge = TxBody::from_signed(&tx);
    huge.data = "00".repeat(8 * 1024);
    let message = error(
        &post(&client, "/api/tx", serde_json::to_vec(&huge).unwrap()).await,
        413,
    );
    assert!(message.contains("too large"), "{message}");

    let accepted: TxAccepted = ok(&post(&client, "/api/tx", body.clone()).await);
    assert_eq!(accepted.hash, tx.hash().to_string());
    error(&post(&client, "/api/tx", body).await, 409);
    let status = client.status().await.unwrap();
    assert_eq!(status.mempool_size, 1);

    node.shutdown().await.unwrap();
}
