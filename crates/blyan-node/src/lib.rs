//! # blyan-node: the node operators run
//!
//! **Status: not built yet.** This crate holds no code today; this essay says what it
//! will hold. Until it exists, the README's run command runs the `quickstart` example,
//! which exercises the built crates for real.
//!
//! ## What it will hold
//!
//! - Configuration from `config/node.yaml` merged with the environment (`NODE_ID`,
//!   `LOG_LEVEL`, `LOG_FORMAT`, `BLYAN_<SECTION>__<KEY>`); unknown keys are errors.
//! - The CLI: `run` (the default), `keygen`, `key rotate-passphrase`, `init`,
//!   `devnet --nodes N` and `status`.
//! - The HTTP API (`/health`, `/api/status`, `/api/blocks/...`, `POST /api/tx`, ...),
//!   the block production loop for validators, metrics and logs, and graceful shutdown.
//! - The zero-setup default: with no configuration, a single-validator dev chain with
//!   its database in `./data`, the API on 127.0.0.1:8080 and metrics on 127.0.0.1:9090.
