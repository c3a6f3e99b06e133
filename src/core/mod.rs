//! The work behind the commands; see `docs/design.md`.

pub mod audit;
pub mod diff;
pub mod error;
pub mod export;
pub mod infer;
pub mod jail;
pub mod launch;
pub mod manifest;
pub mod merge;
pub mod packages;
pub mod perm;
pub mod record;
pub mod resolve;
pub mod trace;
pub mod verify;
