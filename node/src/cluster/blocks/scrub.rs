//! Scrub: re-hash every local block file; move corrupt ones aside and fetch them again from
//! another replica.

use std::sync::Arc;

use super::local::LocalRead;
use super::replicate;
use super::service::BlockService;
use super::BlockError;

/// What one scrub pass found and did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScrubReport {
    /// Block files re-hashed.
    pub checked: u64,
    /// Files whose content did not match their name (moved into `blocks/corrupt/`).
    pub corrupt: u64,
    /// Corrupt blocks fetched intact from another replica and rewritten.
    pub repaired: u64,
    /// Corrupt blocks no replica could supply (the file is still moved aside; the next
    /// read or scrub tries again).
    pub unrepaired: u64,
    /// Blocks that vanished between listing and reading (deleted by GC meanwhile).
    pub vanished: u64,
    /// Per-block errors (local I/O, failed fetches), as `hash: reason`.
    pub errors: Vec<String>,
}

impl BlockService {
    /// Re-hashes every local block file, sleeping [`super::BlockConfig::scrub_pause`]
    /// between blocks. Fails only if the block directory cannot be listed; per-block
    /// problems are counted in the report.
    pub async fn scrub_local(self: &Arc<Self>) -> Result<ScrubReport, BlockError> {
        let hashes = self.blocking(|local| local.list()).await?;
        let mut report = ScrubReport::default();
        for (index, hash) in hashes.into_iter().enumerate() {
            if index > 0 && !self.config().scrub_pause.is_zero() {
                tokio::time::sleep(self.config().scrub_pause).await;
            }
            report.checked += 1;
            let block = hex::encode(hash);
            let read = self
                .blocking(move |local| {
                    let read = local.read_verified(&hash)?;
                    if let LocalRead::Corrupt = read {
                        let aside = local.quarantine(&hash)?;
                        tracing::warn!(block = %hex::encode(hash), aside = %aside.display(), "scrub moved a corrupt block aside");
                    }
                    Ok(read)
                })
                .await;
            match read {
                Ok(LocalRead::Intact(_)) => {}
                Ok(LocalRead::Missing) => report.vanished += 1,
                Ok(LocalRead::Corrupt) => {
                    report.corrupt += 1;
                    match self.refetch(hash).await {
                        Ok(()) => report.repaired += 1,
                        Err(err) => {
                            report.unrepaired += 1;
                            report.errors.push(format!("{block}: {err}"));
                        }
                    }
                }
                Err(err) => report.errors.push(format!("{block}: {err}")),
            }
        }
        if report.corrupt > 0 || !report.errors.is_empty() {
            tracing::warn!(?report, "block scrub finished with findings");
        }
        Ok(report)
    }

    /// Fetches `hash` from another node and stores it here.
    pub(super) async fn refetch(
        self: &Arc<Self>,
        hash: super::BlockHash,
    ) -> Result<(), BlockError> {
        let data = replicate::get(self, hash, false).await?;
        self.blocking(move |local| local.write_verified(&hash, &data))
            .await?;
        Ok(())
    }
}
