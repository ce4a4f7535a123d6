//! Users and access keys: who may sign S3 requests, and for whom.
//!
//! # Records
//!
//! A [`records::User`] has an id (`[a-z0-9][a-z0-9._-]{0,63}`, what buckets, ACLs and policies name),
//! a display name, an optional X.509 subject DN, a status, optional quotas (bytes, objects)
//! and an optional expiry. An [`records::AccessKey`] has an AWS-shaped id (`MK` + 18 of `[A-Z0-9]`),
//! a 40-character secret, the user it acts for, a status and an optional expiry. The root
//! user (`root`) is not stored here: its key stays in `root-credentials.toml`
//! ([`crate::credentials`]). Deleting a user marks it [`records::Status::Deleted`] and deletes its
//! keys; its buckets and objects stay, still owned by the id, so the id is never given out
//! again.
//!
//! # Secrets at rest
//!
//! SigV4 and SigV2 are HMACs keyed by the secret (SigV4 derives a signing key from it), so
//! verifying a request needs the plain secret: a one-way hash, as for passwords, would make
//! verification impossible. Instead each secret is **sealed** ([`sealing`]):
//! ChaCha20-Poly1305 under a key derived with
//! `blake3::derive_key("mucura identity secrets v1", master)`, a random 96-bit nonce per
//! secret, and the access key id as associated data (a sealed secret moved onto another key
//! does not open). The master secret never enters the metadata:
//!
//! - in a cluster it is the cluster secret (through an HMAC, the only form in which the
//!   secret type hands it out), which every node already has, so a key created through one
//!   node opens on all of them;
//! - on a single node it is 32 random bytes in `DATA_DIR/identity.key` (mode 0600, created
//!   once; losing it makes every user key unusable, the users themselves stay).
//!
//! A dump or backup of the metadata (sled files, a replica's table entries, anti-entropy
//! traffic) therefore shows no secret in clear. The limit: whoever holds both the metadata
//! and the master secret (the cluster secret, or `identity.key`) can open every secret;
//! protect them like the root credentials. Rotating the cluster secret would orphan every
//! sealed secret (re-sealing is not implemented).
//!
//! # Stores
//!
//! [`IdentityStore`] has two implementations. A single node keeps users and keys in two
//! tables of a metadata engine ([`KvIdentityStore`], `Users` and `AccessKeys`), in its own
//! engine directory `DATA_DIR/identity`. A cluster keeps them in two full-copy replicated
//! tables, `identity.users` and `identity.keys` ([`ReplicatedIdentityStore`]): entries are
//! last-writer-wins registers, a write goes to every reachable node and succeeds at a
//! majority, reads are local, anti-entropy repairs what a node missed, and deleting a key
//! writes a tombstone. A key created through any node authenticates on every node as soon as
//! the write reached it (normally at once, at worst after an anti-entropy round).
//!
//! # Lookups
//!
//! [`UserKeys`] resolves an access key on the S3 path, synchronously from the local copy (a
//! sled point read or two and one small decryption; no cache). Only an active, unexpired key
//! of an active, unexpired user resolves, to `Credential { user: user id, .. }`; anything else
//! is `None`, which S3 answers with `InvalidAccessKeyId`. [`UserKeys::knows_user`] answers
//! whether ACL grants and bucket policies may name a user id: any user not deleted (a
//! disabled one may be enabled again); S3 refuses grants and principals naming anyone else.
//!
//! # Administration
//!
//! [`IdentityAdmin`] carries out the admin API's `/v1/users…` and `/v1/keys…` routes and logs
//! every action to the access log (`admin.user.create`, `admin.key.rotate`, …; the actor,
//! the target id, never a secret).
//!
//! # Known gaps
//!
//! - Two nodes creating the same user id at the same moment both succeed and the later
//!   write wins (users are last-writer-wins, not agreed by Paxos like bucket names); one
//!   node serialises its own admin writes.
//!
//! # Temporary credentials
//!
//! STS sessions (`AssumeRole`, `AssumeRoleWithCertificate`) are stateless sealed tokens:
//! see [`sessions`]. Grid users register themselves with their certificate
//! ([`registration`]).

mod admin;
mod provider;
pub mod records;
pub mod registration;
mod replicated;
mod sealing;
#[cfg(test)]
mod session_tests;
pub mod sessions;
mod store;
#[cfg(test)]
mod tests;

use std::path::Path;
use std::sync::Arc;

pub use self::admin::IdentityAdmin;
pub use self::provider::{CertificateSessionPolicy, UserKeys};
pub use self::replicated::ReplicatedIdentityStore;
pub use self::sealing::Sealer;
pub use self::store::{IdentityStore, KvIdentityStore};
use crate::cluster::{AntiEntropy, TableError, TableSystem};
use crate::observe::access_log::AuditSink;
use crate::rpc::secret::ClusterSecret;
use crate::store::codec::CodecError;
use crate::store::kv::KvError;

/// Directory below the data dir of a single node's identity engine.
pub const IDENTITY_DIR: &str = "identity";

/// Why an identity operation failed.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// The local metadata engine failed.
    #[error(transparent)]
    Kv(#[from] KvError),
    /// A stored record could not be decoded or encoded.
    #[error(transparent)]
    Codec(#[from] CodecError),
    /// A replicated table failed (e.g. too few nodes acknowledged a write).
    #[error(transparent)]
    Table(#[from] TableError),
    /// The master secret could not be read or created.
    #[error("identity master key: {0}")]
    MasterKey(String),
    /// The system has no randomness for nonces, ids or secrets.
    #[error("no randomness: {0}")]
    Randomness(getrandom::Error),
    /// A secret could not be sealed.
    #[error("sealing the secret of access key {0} failed")]
    Sealing(String),
    /// A sealed secret did not open: another master secret, another key id, or altered.
    #[error("the secret of access key {0} does not open with this node's identity key")]
    Unsealing(String),
}

impl From<getrandom::Error> for IdentityError {
    fn from(err: getrandom::Error) -> Self {
        IdentityError::Randomness(err)
    }
}

/// A node's users and keys: the store and the sealer, opened for the node's mode.
pub struct Identities {
    store: Arc<dyn IdentityStore>,
    sealer: Arc<Sealer>,
}

impl Identities {
    /// A single node's: the engine in `DATA_DIR/identity`, the master key in
    /// `DATA_DIR/identity.key`.
    pub fn open_single(data_dir: &Path) -> Result<Identities, IdentityError> {
        let store = KvIdentityStore::open(&data_dir.join(IDENTITY_DIR))?;
        Ok(Identities {
            store: Arc::new(store),
            sealer: Arc::new(Sealer::load_or_create(data_dir)?),
        })
    }

    /// A cluster node's: the replicated tables of `system` (also registered with
    /// `anti_entropy`), sealed under the cluster secret.
    pub fn open_cluster(
        system: &Arc<TableSystem>,
        anti_entropy: &AntiEntropy,
        secret: &ClusterSecret,
    ) -> Result<Identities, IdentityError> {
        let store = ReplicatedIdentityStore::new(system)?;
        ReplicatedIdentityStore::register_with(anti_entropy);
        Ok(Identities {
            store: Arc::new(store),
            sealer: Arc::new(Sealer::for_cluster(secret)),
        })
    }

    /// The user records themselves, read-only use: quota enforcement and usage reports
    /// read the users' limits from them.
    pub fn store(&self) -> Arc<dyn IdentityStore> {
        Arc::clone(&self.store)
    }

    /// The S3 side: resolves user keys.
    pub fn user_keys(&self) -> UserKeys {
        UserKeys::new(Arc::clone(&self.store), Arc::clone(&self.sealer))
    }

    /// The admin side, logging to `audit`; `root_access_key` is never given to a user key.
    pub fn admin(&self, audit: Arc<dyn AuditSink>, root_access_key: String) -> IdentityAdmin {
        IdentityAdmin::new(
            Arc::clone(&self.store),
            Arc::clone(&self.sealer),
            audit,
            root_access_key,
        )
    }
}
