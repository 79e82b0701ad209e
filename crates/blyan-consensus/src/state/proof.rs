//! Account proofs: an account's value, or its absence, checked against a state root alone.

use blyan_crypto::{Address, Hash};
use serde::{Deserialize, Serialize};

use crate::state::account::{Account, account_key};
use crate::state::smt::{ProofError, SmtProof};

/// Proof of an account's value (or of its absence) under a state root, for light clients and
/// state sync.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountProof {
    /// The proven account; `None` claims the address has no account.
    pub account: Option<Account>,
    /// The tree path for `SHA-256(address)`.
    pub proof: SmtProof,
}

impl AccountProof {
    /// Checks the proof against `root` for `address`; returns the proven account (`None`:
    /// proven absent). Needs nothing but the root.
    pub fn verify(&self, root: &Hash, address: &Address) -> Result<Option<Account>, ProofError> {
        let key = account_key(address);
        // The empty account is never stored: claiming it is claiming absence.
        let account = self.account.filter(|a| !a.is_empty());
        let value = account.map(|a| a.hash());
        self.proof.verify(root, &key, value.as_ref())?;
        Ok(account)
    }
}
