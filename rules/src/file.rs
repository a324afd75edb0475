//! Reading a file that comes from outside (rules, a base for a rules change, keys, tokens,
//! passwords, records): only a regular file, and never more than a bound, counted by reading
//! rather than trusted from its size (a link to `/dev/zero` says 0 bytes and never ends; a FIFO
//! would block the reader forever).

use std::fs::File;
use std::io::Read;
use std::path::Path;

/// The largest static config file read.
pub const MAX_CONFIG_BYTES: usize = 1024 * 1024;
/// The largest token, password or key file read.
pub const MAX_SECRET_FILE_BYTES: usize = 64 * 1024;

/// Why a file was not read.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("cannot read: {0}")]
    Io(#[from] std::io::Error),
    #[error("not a regular file (it is {0}); only a regular file is read")]
    NotRegular(&'static str),
    #[error("larger than the limit of {0} bytes")]
    TooLarge(usize),
}

/// What a file is, in words, when it is not a regular file.
fn kind(meta: &std::fs::Metadata) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    let t = meta.file_type();
    if t.is_dir() {
        "a directory"
    } else if t.is_fifo() {
        "a FIFO"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else if t.is_socket() {
        "a socket"
    } else {
        "not a regular file"
    }
}

/// Opens `path` (following links) for reading, only when it is a regular file: checked before
/// opening (so a FIFO is never opened, which would block) and again on what was opened.
pub fn open_regular(path: &Path) -> Result<File, FileError> {
    let meta = std::fs::metadata(path)?;
    if !meta.is_file() {
        return Err(FileError::NotRegular(kind(&meta)));
    }
    let file = File::open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(FileError::NotRegular(kind(&meta)));
    }
    Ok(file)
}

/// The contents of a regular file of at most `max` bytes.
pub fn read_capped(path: &Path, max: usize) -> Result<Vec<u8>, FileError> {
    let file = open_regular(path)?;
    let mut bytes = Vec::new();
    file.take(max as u64 + 1).read_to_end(&mut bytes)?;
    if bytes.len() > max {
        return Err(FileError::TooLarge(max));
    }
    Ok(bytes)
}

/// [`read_capped`] as UTF-8 text.
pub fn read_capped_text(path: &Path, max: usize) -> Result<String, FileError> {
    String::from_utf8(read_capped(path, max)?)
        .map_err(|_| FileError::Io(std::io::Error::new(std::io::ErrorKind::InvalidData, "not UTF-8 text")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("switchyard-file-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn only_regular_files_within_the_bound_are_read() {
        let dir = scratch("bound");
        let ok = dir.join("ok.toml");
        std::fs::write(&ok, "12345").unwrap();
        assert_eq!(read_capped(&ok, 5).unwrap(), b"12345");
        assert!(matches!(read_capped(&ok, 4), Err(FileError::TooLarge(4))));
        // A link to an endless device says it is empty; reading it is refused at once.
        let zero = dir.join("zero.toml");
        std::os::unix::fs::symlink("/dev/zero", &zero).unwrap();
        assert!(matches!(read_capped(&zero, 1 << 20), Err(FileError::NotRegular("a character device"))));
        assert!(matches!(read_capped(&dir, 10), Err(FileError::NotRegular("a directory"))));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_fifo_is_refused_without_blocking() {
        let dir = scratch("fifo");
        let fifo = dir.join("rules.toml");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status().map(|s| s.success()).unwrap_or(false);
        assert!(made, "mkfifo failed");
        // Opening a FIFO for reading blocks until a writer comes: this would hang if it were opened.
        assert!(matches!(read_capped(&fifo, 10), Err(FileError::NotRegular("a FIFO"))));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
