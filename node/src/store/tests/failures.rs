//! Disk failures injected through the block I/O seam: ENOSPC and EIO on write, file fsync and
//! directory fsync. A failed PUT must answer 5xx, leave nothing visible, and harm nothing else.

use std::fs::File;
use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;

use s3api::backend::{ObjectAttrs, S3Backend};
use s3api::S3ErrorCode;

use super::super::blocks::BlockIo;
use super::super::Store;
use super::*;

const ENOSPC: i32 = 28;
const EIO: i32 = 5;

/// Which operation fails next (and keeps failing until reset).
#[derive(Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum Fault {
    None = 0,
    WriteNoSpace = 1,
    FileSyncIo = 2,
    DirSyncIo = 3,
}

#[derive(Default)]
struct FaultyIo {
    fault: AtomicU8,
}

impl FaultyIo {
    fn set(&self, fault: Fault) {
        self.fault.store(fault as u8, Ordering::SeqCst);
    }

    fn is(&self, fault: Fault) -> bool {
        self.fault.load(Ordering::SeqCst) == fault as u8
    }
}

impl BlockIo for FaultyIo {
    fn write(&self, file: &mut File, data: &[u8]) -> io::Result<()> {
        if self.is(Fault::WriteNoSpace) {
            // Like a real full disk: part of the data lands, then ENOSPC.
            io::Write::write_all(file, &data[..data.len() / 2])?;
            return Err(io::Error::from_raw_os_error(ENOSPC));
        }
        io::Write::write_all(file, data)
    }

    fn sync_file(&self, file: &File) -> io::Result<()> {
        if self.is(Fault::FileSyncIo) {
            return Err(io::Error::from_raw_os_error(EIO));
        }
        file.sync_all()
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        if self.is(Fault::DirSyncIo) {
            return Err(io::Error::from_raw_os_error(EIO));
        }
        File::open(dir)?.sync_all()
    }
}

async fn faulty_store() -> (tempfile::TempDir, Store, Arc<FaultyIo>) {
    let dir = tempfile::tempdir().unwrap();
    let io = Arc::new(FaultyIo::default());
    let store = Store::open_with_io(small_config(dir.path()), io.clone()).unwrap();
    store.create_bucket(BUCKET, &root_acl()).await.unwrap();
    (dir, store, io)
}

fn temp_files(dir: &Path) -> usize {
    std::fs::read_dir(dir.join("blocks").join("tmp"))
        .unwrap()
        .count()
}

#[tokio::test]
async fn injected_disk_errors_fail_the_put_cleanly() {
    let (dir, store, io) = faulty_store().await;
    let kept = pattern(4000, 1);
    put(&store, "kept", &kept).await;
    put(&store, "overwritten", b"old small").await;

    let cases = [
        (Fault::WriteNoSpace, S3ErrorCode::ServiceUnavailable),
        (Fault::FileSyncIo, S3ErrorCode::InternalError),
        (Fault::DirSyncIo, S3ErrorCode::InternalError),
    ];
    for (seed, (fault, expected)) in cases.into_iter().enumerate() {
        io.set(fault);
        let data = pattern(5000, 10 + seed as u8);
        let err = store
            .put_object(BUCKET, "new", ObjectAttrs::default(), &mut body(&data))
            .await
            .unwrap_err();
        assert_eq!(err.code, expected);
        assert!(err.status().is_server_error());
        if fault == Fault::WriteNoSpace {
            assert!(err.message.contains("out of disk space"), "{}", err.message);
        }
        let err = store
            .put_object(
                BUCKET,
                "overwritten",
                ObjectAttrs::default(),
                &mut body(&data),
            )
            .await
            .unwrap_err();
        assert!(err.status().is_server_error());
        io.set(Fault::None);

        // Nothing partial is visible; what was stored before is intact.
        assert_eq!(
            code(store.head_object(BUCKET, "new").await),
            S3ErrorCode::NoSuchKey
        );
        assert_eq!(read_all(&store, "overwritten").await.unwrap(), b"old small");
        assert_eq!(read_all(&store, "kept").await.unwrap(), kept);
        assert_eq!(
            temp_files(dir.path()),
            0,
            "failed writes remove their temp files"
        );
    }
    // Small bodies stay inline and need no block I/O at all, so they still succeed.
    io.set(Fault::WriteNoSpace);
    put(&store, "tiny", b"fits in the record").await;
    io.set(Fault::None);
    // Once the disk recovers, writes succeed again.
    put(&store, "new", &pattern(5000, 42)).await;
    assert_eq!(read_all(&store, "new").await.unwrap(), pattern(5000, 42));
}

#[tokio::test]
async fn injected_errors_fail_upload_part_without_recording_it() {
    let (_dir, store, io) = faulty_store().await;
    let upload = store
        .create_multipart_upload(BUCKET, "mp", ObjectAttrs::default(), None)
        .await
        .unwrap();
    io.set(Fault::FileSyncIo);
    let err = store
        .upload_part(BUCKET, "mp", &upload, 1, &mut body(&pattern(3000, 1)))
        .await
        .unwrap_err();
    assert_eq!(err.code, S3ErrorCode::InternalError);
    io.set(Fault::None);
    let parts = store
        .list_parts(BUCKET, "mp", &upload, 0, 100)
        .await
        .unwrap();
    assert!(parts.parts.is_empty());
}
