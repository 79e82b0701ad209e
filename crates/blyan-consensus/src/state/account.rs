//! Accounts and the default transaction rule: a transfer with a fee to the producer.

use blyan_crypto::{Address, Hash, sha256};
use serde::{Deserialize, Serialize};

use crate::error::TxError;
use crate::state::diff::PendingChanges;
use crate::state::machine::StateMachine;
use crate::state::store::StateError;
use crate::types::Transaction;

/// An account: what the state stores per address.
///
/// The all-zero account is never stored: an address without a stored account reads as
/// `Account::default()`, and an account that returns to zero is deleted, so the root
/// commits to exactly the non-empty accounts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Account {
    /// Spendable balance.
    pub balance: u64,
    /// Number of transactions sent; the next transaction must carry this nonce.
    pub nonce: u64,
}

impl Account {
    /// Whether this is the empty account (not stored).
    pub fn is_empty(&self) -> bool {
        *self == Account::default()
    }

    /// The value hash committed in the state tree: SHA-256 of the canonical encoding
    /// (MsgPack array `[balance, nonce]`).
    pub fn hash(&self) -> Hash {
        crate::types::hash_canonical(self)
    }
}

/// The state tree key of an address: SHA-256 of its 20 bytes.
pub fn account_key(address: &Address) -> Hash {
    sha256(address.as_bytes())
}

/// Why a transaction could not be executed: it breaks a rule, or the state is unreadable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExecError {
    /// The transaction breaks a rule of the state machine.
    #[error(transparent)]
    Tx(#[from] TxError),
    /// The state could not be read.
    #[error(transparent)]
    State(#[from] StateError),
}

/// The default rule: `from` pays `amount` to `to` and `fee` to `producer`, and its nonce
/// increases by one. Requires `nonce == account nonce` and `balance >= amount + fee`; every
/// sum is checked, so an overflow is an invalid transaction, never a panic or a wrap.
/// On error `pending` is unchanged.
pub fn apply_transfer<S: StateMachine + ?Sized>(
    state: &S,
    pending: &mut PendingChanges,
    producer: &Address,
    tx: &Transaction,
) -> Result<(), ExecError> {
    let sender_address = tx.sender();
    let mut sender = pending.account(state, &sender_address)?;
    if tx.nonce != sender.nonce {
        return Err(TxError::BadNonce {
            sender: sender_address,
            expected: sender.nonce,
            got: tx.nonce,
        }
        .into());
    }
    let needed = u128::from(tx.amount) + u128::from(tx.fee);
    if u128::from(sender.balance) < needed {
        return Err(TxError::InsufficientBalance {
            sender: sender_address,
            balance: sender.balance,
            needed,
        }
        .into());
    }
    // balance >= amount + fee, so neither subtraction can underflow; checked anyway.
    sender.balance = sender
        .balance
        .checked_sub(tx.amount)
        .and_then(|b| b.checked_sub(tx.fee))
        .ok_or(TxError::Overflow {
            account: sender_address,
        })?;
    sender.nonce = sender.nonce.checked_add(1).ok_or(TxError::Overflow {
        account: sender_address,
    })?;

    // Credits read through the sender's new value (a self-transfer, a producer paying
    // itself), then write all at once.
    let mut writes: Vec<(Address, Account)> = vec![(sender_address, sender)];
    for (address, credit) in [(tx.to, tx.amount), (*producer, tx.fee)] {
        if credit == 0 {
            continue;
        }
        let mut account = match writes.iter().rev().find(|(a, _)| *a == address) {
            Some((_, account)) => *account,
            None => pending.account(state, &address)?,
        };
        account.balance = account
            .balance
            .checked_add(credit)
            .ok_or(TxError::Overflow { account: address })?;
        writes.push((address, account));
    }
    for (address, account) in writes {
        pending.set(state, address, account)?;
    }
    Ok(())
}
