//! An append-only text file with size-based rotation: `NAME` is written, and when the next
//! line would take it past the limit it becomes `NAME.1`, `NAME.1` becomes `NAME.2` and so on,
//! the oldest beyond the kept count being deleted.
//!
//! Any I/O error closes the file; the next write reopens it (creating the directory again), so
//! a log directory that was removed or a disk that was full recovers by itself.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

/// A log file that rotates itself by size.
pub struct RotatingFile {
    dir: PathBuf,
    name: String,
    max_bytes: u64,
    keep: usize,
    file: Option<BufWriter<File>>,
    /// Bytes in the current file, including what is still buffered.
    size: u64,
}

impl RotatingFile {
    /// A file `dir/name` rotated at `max_bytes`, keeping `keep` older files. Nothing is opened
    /// before the first write.
    pub fn new(dir: PathBuf, name: &str, max_bytes: u64, keep: usize) -> RotatingFile {
        RotatingFile {
            dir,
            name: name.to_owned(),
            max_bytes: max_bytes.max(1),
            keep,
            file: None,
            size: 0,
        }
    }

    /// The path of the current file.
    pub fn path(&self) -> PathBuf {
        self.dir.join(&self.name)
    }

    /// Appends `line` (which should end in a newline), rotating first if it would not fit.
    /// On error the line is lost and the file is closed, to be reopened by the next write.
    pub fn write_line(&mut self, line: &[u8]) -> io::Result<()> {
        let result = self.try_write(line);
        if result.is_err() {
            self.close_after_error();
        }
        result
    }

    /// Writes buffered lines through to the file (no fsync: an access log is not worth one).
    pub fn flush(&mut self) -> io::Result<()> {
        let result = match &mut self.file {
            Some(file) => file.flush(),
            None => Ok(()),
        };
        if result.is_err() {
            self.close_after_error();
        }
        result
    }

    fn try_write(&mut self, line: &[u8]) -> io::Result<()> {
        if self.file.is_none() {
            self.open()?;
        }
        let len = line.len() as u64;
        if self.size > 0 && self.size.saturating_add(len) > self.max_bytes {
            self.rotate()?;
        }
        let file = match &mut self.file {
            Some(file) => file,
            None => self.open()?,
        };
        file.write_all(line)?;
        self.size += len;
        Ok(())
    }

    fn open(&mut self) -> io::Result<&mut BufWriter<File>> {
        fs::create_dir_all(&self.dir)?;
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.path())?;
        self.size = file.metadata()?.len();
        Ok(self.file.insert(BufWriter::new(file)))
    }

    /// Closes the current file and shifts the numbered ones up by one.
    fn rotate(&mut self) -> io::Result<()> {
        if let Some(mut file) = self.file.take() {
            file.flush()?;
        }
        let current = self.path();
        if self.keep == 0 {
            remove_if_present(&current)?;
        } else {
            remove_if_present(&self.numbered(self.keep))?;
            for index in (1..self.keep).rev() {
                rename_if_present(&self.numbered(index), &self.numbered(index + 1))?;
            }
            rename_if_present(&current, &self.numbered(1))?;
        }
        self.size = 0;
        Ok(())
    }

    fn numbered(&self, index: usize) -> PathBuf {
        self.dir.join(format!("{}.{index}", self.name))
    }

    fn close_after_error(&mut self) {
        if let Some(file) = self.file.take() {
            // Whatever is still buffered may fail the same way; `into_parts` drops it without
            // a second attempt, so a full disk costs one failed write, not two.
            let (_file, _unwritten) = file.into_parts();
        }
    }
}

fn remove_if_present(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(err) if err.kind() != io::ErrorKind::NotFound => Err(err),
        _ => Ok(()),
    }
}

fn rename_if_present(from: &Path, to: &Path) -> io::Result<()> {
    match fs::rename(from, to) {
        Err(err) if err.kind() != io::ErrorKind::NotFound => Err(err),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(n: usize) -> Vec<u8> {
        // 10 bytes per line.
        format!("line {n:04}\n").into_bytes()
    }

    #[test]
    fn rotates_at_the_limit_and_keeps_the_newest_files() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = RotatingFile::new(dir.path().join("logs"), "access.log", 30, 2);
        for n in 0..10 {
            log.write_line(&line(n)).unwrap();
        }
        log.flush().unwrap();
        let read = |name: &str| fs::read_to_string(dir.path().join("logs").join(name)).unwrap();
        // Three lines fill a file: 0-2 were rotated out, 3-5 and 6-8 are kept, 9 is current.
        assert_eq!(read("access.log"), "line 0009\n");
        assert_eq!(read("access.log.1"), "line 0006\nline 0007\nline 0008\n");
        assert_eq!(read("access.log.2"), "line 0003\nline 0004\nline 0005\n");
        assert!(!dir.path().join("logs/access.log.3").exists());
        for entry in fs::read_dir(dir.path().join("logs")).unwrap() {
            let len = entry.unwrap().metadata().unwrap().len();
            assert!(len <= 30, "a file grew past the limit: {len}");
        }
    }

    #[test]
    fn appends_to_an_existing_file_counting_its_size() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("access.log"), "old line 0\nold line 1\n").unwrap();
        let mut log = RotatingFile::new(dir.path().to_path_buf(), "access.log", 40, 1);
        log.write_line(&line(1)).unwrap();
        log.write_line(&line(2)).unwrap();
        log.flush().unwrap();
        let old = fs::read_to_string(dir.path().join("access.log.1")).unwrap();
        assert_eq!(old, "old line 0\nold line 1\nline 0001\n");
        let new = fs::read_to_string(dir.path().join("access.log")).unwrap();
        assert_eq!(new, "line 0002\n");
    }

    #[test]
    fn a_log_dir_that_is_a_file_fails_writes_until_it_is_fixed() {
        let dir = tempfile::tempdir().unwrap();
        let logs = dir.path().join("logs");
        fs::write(&logs, "not a directory").unwrap();
        let mut log = RotatingFile::new(logs.clone(), "access.log", 1024, 2);
        assert!(log.write_line(&line(1)).is_err());
        assert!(log.write_line(&line(2)).is_err());
        fs::remove_file(&logs).unwrap();
        log.write_line(&line(3)).unwrap();
        log.flush().unwrap();
        assert_eq!(
            fs::read_to_string(logs.join("access.log")).unwrap(),
            "line 0003\n"
        );
    }
}
