//! The HTTP API (axum): handlers, error mapping, limits, and the OpenAPI document generated
//! from the handlers (`/api/openapi.json`).
//!
//! Every error response is JSON `{ "error": "..." }`, including those produced by layers
//! (body too large, timeout, unknown route): a last layer rewrites any non-JSON error.
//! Status codes: 400 malformed input (JSON, address, block id, query), 404 unknown block or
//! route, 409 transaction already pooled, 413 body too large, 422 transaction refused by
//! the mempool rules, 503 shutting down or request timed out, 500 storage failure.

use std::time::Duration;

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, Path, Query, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use blyan_consensus::MempoolError;
use blyan_crypto::{Address, Hash};
use serde::Deserialize;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::api_types::{
    AccountView, BlockView, ErrorBody, ForkView, HealthView, PeerView, ProofView, StatusView,
    SyncView, TxAccepted, TxBody,
};
use crate::config::ApiConfig;
use crate::error::{NodeError, SubmitError};
use crate::node::NodeHandle;

/// An error response: a status and a message.
#[derive(Debug)]
struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.status,
            Json(ErrorBody {
                error: self.message,
            }),
        )
            .into_response()
    }
}

impl From<NodeError> for ApiError {
    fn from(e: NodeError) -> Self {
        match e {
            NodeError::ShuttingDown => Self::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
            e => {
                tracing::error!(error = %e, "API request failed");
                Self::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
            }
        }
    }
}

impl From<SubmitError> for ApiError {
    fn from(e: SubmitError) -> Self {
        match e {
            SubmitError::Node(e) => e.into(),
            SubmitError::Rejected(MempoolError::AlreadyKnown(_)) => {
                Self::new(StatusCode::CONFLICT, e.to_string())
            }
            SubmitError::Rejected(MempoolError::State(_)) => {
                Self::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
            }
            SubmitError::Rejected(_) => Self::new(StatusCode::UNPROCESSABLE_ENTITY, e.to_string()),
        }
    }
}

impl From<BytesRejection> for ApiError {
    fn from(rejection: BytesRejection) -> Self {
        Self::new(rejection.status(), rejection.body_text())
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        Self::new(StatusCode::BAD_REQUEST, rejection.body_text())
    }
}

type ApiResult<T> = Result<T, ApiError>;

/// The OpenAPI document's header; the paths come from the handlers.
#[derive(OpenApi)]
#[openapi(info(
    title = "Blyan node API",
    description = "Chain status, blocks, accounts with state proofs, and transaction submission."
))]
struct ApiDoc;

/// `GET /health`: the node is up and serving.
#[utoipa::path(get, path = "/health", responses((status = 200, body = HealthView)))]
async fn health() -> Json<HealthView> {
    Json(HealthView {
        status: "ok".to_owned(),
    })
}

/// `GET /api/status`: chain, tip, role and identity.
#[utoipa::path(get, path = "/api/status", responses(
    (status = 200, body = StatusView),
    (status = 503, body = ErrorBody),
))]
async fn status(State(node): State<NodeHandle>) -> ApiResult<Json<StatusView>> {
    let chain = node.chain_status().await?;
    let peers = node.network_status().await?.map_or(0, |n| n.peers);
    let info = node.info();
    Ok(Json(StatusView {
        name: info.name.clone(),
        role: info.role.to_string(),
        producing: info.producing,
        version: info.version.to_owned(),
        peer_id: info.peer_id.to_string(),
        address: info.address.to_string(),
        chain_id: info.chain_id,
        genesis_hash: info.genesis_hash.to_string(),
        height: chain.height,
        tip_hash: chain.tip_hash.to_string(),
        tip_slot: chain.tip_slot,
        finalized_height: chain.finalized_height,
        mempool_size: chain.mempool_size,
        slot_duration_ms: info.slot_duration_ms,
        state_root: chain.state_root.to_string(),
        peers,
        reorgs: chain.reorgs,
        reorgs_refused: chain.reorgs_refused,
    }))
}

/// `GET /api/peers`: the connected peers.
#[utoipa::path(get, path = "/api/peers", responses(
    (status = 200, body = Vec<PeerView>),
    (status = 503, body = ErrorBody),
))]
async fn peers(State(node): State<NodeHandle>) -> ApiResult<Json<Vec<PeerView>>> {
    let peers = node.peers().await?;
    Ok(Json(
        peers
            .into_iter()
            .map(|p| PeerView {
                peer_id: p.peer_id.to_string(),
                addr: p.addr.to_string(),
                direction: match p.direction {
                    blyan_security::Direction::Inbound => "inbound",
                    blyan_security::Direction::Outbound => "outbound",
                }
                .to_owned(),
                ready: p.ready,
                best_height: p.best_height,
                finalized_height: p.finalized_height,
                score: p.score,
                connected_secs: p.connected_secs,
            })
            .collect(),
    ))
}

/// `GET /api/sync`: sync progress, peers and bans.
#[utoipa::path(get, path = "/api/sync", responses(
    (status = 200, body = SyncView),
    (status = 503, body = ErrorBody),
))]
async fn sync(State(node): State<NodeHandle>) -> ApiResult<Json<SyncView>> {
    let chain = node.chain_status().await?;
    let view = match node.network_status().await? {
        Some(n) => SyncView {
            syncing: n.sync.target_height > chain.height,
            current_height: chain.height,
            target_height: n.sync.target_height.max(chain.height),
            progress_ratio: n.sync.ratio,
            peers_used: n.sync.peers_used,
            held_headers: n.sync.held_headers,
            requests_in_flight: n.sync.requests_in_flight,
            peers: n.peers,
            inbound: n.inbound,
            outbound: n.outbound,
            candidates: n.candidates,
            banned: n.banned,
            dht_nodes: n.dht_nodes,
        },
        None => SyncView {
            syncing: false,
            current_height: chain.height,
            target_height: chain.height,
            progress_ratio: 1.0,
            peers_used: 0,
            held_headers: 0,
            requests_in_flight: 0,
            peers: 0,
            inbound: 0,
            outbound: 0,
            candidates: 0,
            banned: 0,
            dht_nodes: 0,
        },
    };
    Ok(Json(view))
}

async fn block_view(node: &NodeHandle, block: blyan_consensus::Block) -> ApiResult<BlockView> {
    let finalized = node.is_finalized(block.hash()).await?;
    Ok(BlockView::new(&block, finalized))
}

/// `GET /api/blocks/latest`: the canonical tip block.
#[utoipa::path(get, path = "/api/blocks/latest", responses(
    (status = 200, body = BlockView),
    (status = 503, body = ErrorBody),
))]
async fn latest_block(State(node): State<NodeHandle>) -> ApiResult<Json<BlockView>> {
    let block = node.latest_block().await?;
    Ok(Json(block_view(&node, block).await?))
}

/// `GET /api/blocks/{id}`: a canonical block by height (decimal), or any stored block by
/// hash (64 hex characters).
#[utoipa::path(get, path = "/api/blocks/{id}",
    params(("id" = String, Path, description = "Height (decimal) or block hash (hex)")),
    responses(
        (status = 200, body = BlockView),
        (status = 400, body = ErrorBody, description = "Neither a height nor a hash"),
        (status = 404, body = ErrorBody, description = "No such block"),
    ))]
async fn block(
    State(node): State<NodeHandle>,
    Path(id): Path<String>,
) -> ApiResult<Json<BlockView>> {
    let found = if id.len() == 64 {
        let hash: Hash = id
            .parse()
            .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, format!("bad block hash: {e}")))?;
        node.block_by_hash(hash).await?
    } else {
        let height: u64 = id.parse().map_err(|_| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "block id must be a height (decimal) or a hash (64 hex characters)",
            )
        })?;
        node.block_by_height(height).await?
    };
    let block =
        found.ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, format!("no block {id}")))?;
    Ok(Json(block_view(&node, block).await?))
}

/// Query of `/api/accounts/{address}`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
struct AccountQuery {
    /// Include the sparse Merkle proof against the tip's state root.
    #[serde(default)]
    proof: bool,
}

/// `GET /api/accounts/{address}`: balance and nonce at the tip, with `?proof=true` the
/// inclusion (or absence) proof.
#[utoipa::path(get, path = "/api/accounts/{address}",
    params(("address" = String, Path, description = "Account address, 40 hex characters"), AccountQuery),
    responses(
        (status = 200, body = AccountView),
        (status = 400, body = ErrorBody, description = "Bad address or query"),
    ))]
async fn account(
    State(node): State<NodeHandle>,
    Path(address): Path<String>,
    query: Result<Query<AccountQuery>, QueryRejection>,
) -> ApiResult<Json<AccountView>> {
    let Query(query) = query?;
    let parsed: Address = address
        .parse()
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, format!("bad address: {e}")))?;
    let at_tip = node.account(parsed, query.proof).await?;
    Ok(Json(AccountView {
        address: parsed.to_string(),
        balance: at_tip.account.balance,
        nonce: at_tip.account.nonce,
        height: at_tip.height,
        state_root: at_tip.state_root.to_string(),
        proof: at_tip.proof.as_ref().map(ProofView::from),
    }))
}

/// `GET /api/chain/forks`: live side branches, best first.
#[utoipa::path(get, path = "/api/chain/forks", responses((status = 200, body = Vec<ForkView>)))]
async fn forks(State(node): State<NodeHandle>) -> ApiResult<Json<Vec<ForkView>>> {
    let forks = node.forks().await?;
    Ok(Json(forks.iter().map(ForkView::from).collect()))
}

/// `POST /api/tx`: validate a signed transaction and add it to the mempool.
#[utoipa::path(post, path = "/api/tx", request_body = TxBody, responses(
    (status = 202, body = TxAccepted, description = "In the mempool"),
    (status = 400, body = ErrorBody, description = "Malformed JSON or field"),
    (status = 409, body = ErrorBody, description = "Already in the mempool"),
    (status = 413, body = ErrorBody, description = "Body too large"),
    (status = 422, body = ErrorBody, description = "Refused by the transaction rules"),
))]
async fn submit_tx(
    State(node): State<NodeHandle>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<(StatusCode, Json<TxAccepted>)> {
    let body = body?;
    let request: TxBody = serde_json::from_slice(&body)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, format!("bad JSON: {e}")))?;
    let tx = request
        .to_signed()
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e.to_string()))?;
    let hash = node.submit_tx(tx).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(TxAccepted {
            hash: hash.to_string(),
        }),
    ))
}

/// Refuses every request once shutdown has begun.
async fn refuse_when_shutting_down(
    State(node): State<NodeHandle>,
    request: Request,
    next: Next,
) -> Response {
    if node.is_shutting_down() {
        return ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "the node is shutting down")
            .into_response();
    }
    next.run(request).await
}

/// Turns error responses that are not JSON (from layers, unknown routes, wrong methods)
/// into `{ "error": "<reason>" }` with the same status.
async fn json_errors(response: Response) -> Response {
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let reason = match status {
        StatusCode::PAYLOAD_TOO_LARGE => "request body too large".to_owned(),
        StatusCode::SERVICE_UNAVAILABLE => "request timed out".to_owned(),
        StatusCode::NOT_FOUND => "no such endpoint".to_owned(),
        status => status
            .canonical_reason()
            .unwrap_or("request failed")
            .to_lowercase(),
    };
    let (mut parts, _) = response.into_parts();
    let body = serde_json::to_vec(&ErrorBody { error: reason }).unwrap_or_default();
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(body))
}

/// The API routes and the OpenAPI document describing them.
pub fn openapi_router() -> (axum::Router<NodeHandle>, utoipa::openapi::OpenApi) {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(health))
        .routes(routes!(status))
        .routes(routes!(peers))
        .routes(routes!(sync))
        .routes(routes!(latest_block))
        .routes(routes!(block))
        .routes(routes!(account))
        .routes(routes!(forks))
        .routes(routes!(submit_tx))
        .split_for_parts()
}

/// The complete API service for `node`, with the limits of `config`.
pub fn router(node: NodeHandle, config: &ApiConfig) -> axum::Router {
    let (routes, openapi) = openapi_router();
    routes
        .route(
            "/api/openapi.json",
            axum::routing::get(move || std::future::ready(Json(openapi.clone()))),
        )
        .layer(DefaultBodyLimit::max(config.max_body_bytes))
        .layer(RequestBodyLimitLayer::new(config.max_body_bytes))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            Duration::from_millis(config.request_timeout_ms),
        ))
        .layer(middleware::from_fn_with_state(
            node.clone(),
            refuse_when_shutting_down,
        ))
        .layer(middleware::map_response(json_errors))
        .with_state(node)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use blyan_consensus::ManualClock;

    use crate::{ApiClient, ErrorBody, Node, NodeConfig, NodeOptions};

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn requests_during_shutdown_get_503_with_a_json_error() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = NodeConfig::default();
        config.storage.path = dir.path().to_path_buf();
        config.metrics.enabled = false;
        config.api.listen_addr = "127.0.0.1:0".parse().unwrap();
        config.security.kdf_memory_kib = 64;
        config.security.kdf_passes = 1;
        let options = NodeOptions {
            clock: Arc::new(ManualClock::new(0)),
            env: Box::new(|_| None),
            endpoint: None,
            produce_blocks: false,
        };
        let running = Node::open(config, options).unwrap().start().await.unwrap();
        let client = ApiClient::new(running.api_addr());
        let before = client.request("GET", "/health", None).await.unwrap();
        assert_eq!(before.status, 200);

        running.handle().begin_shutdown();
        for path in ["/health", "/api/status"] {
            let response = client.request("GET", path, None).await.unwrap();
            assert_eq!(response.status, 503);
            let body: ErrorBody = response.json().unwrap();
            assert!(body.error.contains("shutting down"), "{}", body.error);
        }
        running.shutdown().await.unwrap();
    }
}
