//! Size of the node's metadata on disk, to derive metadata bytes per object.

use std::io;
use std::path::{Path, PathBuf};

/// Total apparent size of the regular files under `dir` (recursively).
pub fn tree_size(dir: &Path) -> io::Result<u64> {
    let mut total = 0;
    let mut pending: Vec<PathBuf> = vec![dir.to_path_buf()];
    while let Some(current) = pending.pop() {
        for entry in std::fs::read_dir(&current)? {
            let entry = entry?;
            let file_type = entry.file_type()?;
            if file_type.is_dir() {
                pending.push(entry.path());
            } else if file_type.is_file() {
                total += entry.metadata()?.len();
            }
        }
    }
    Ok(total)
}

/// [`tree_size`] off the async runtime.
pub async fn tree_size_async(dir: PathBuf) -> io::Result<u64> {
    tokio::task::spawn_blocking(move || tree_size(&dir))
        .await
        .map_err(io::Error::other)?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_nested_files() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a"), [0u8; 100]).unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join("sub/b"), [0u8; 23]).unwrap();
        assert_eq!(tree_size(dir.path()).unwrap(), 123);
    }
}
