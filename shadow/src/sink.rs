//! The JSON-lines record file: one record per line, rotated by size (`records.jsonl` →
//! `records.jsonl.1` → ... up to `keep` old files). Reading takes the rotated files too, oldest
//! first, and skips lines that are not records (counted).

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::record::ComparisonRecord;

#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path}: {reason}")]
    Read { path: PathBuf, reason: String },
}

/// A batch that was not (all) written: why, and how many of its records are missing.
#[derive(Debug, thiserror::Error)]
#[error("{source}")]
pub struct WriteError {
    #[source]
    pub source: SinkError,
    pub unwritten: usize,
}

pub struct JsonLinesFile {
    path: PathBuf,
    max_bytes: u64,
    keep: usize,
    file: File,
    /// The open file's identity (device, inode): when `path` no longer names it (the file or its
    /// directory was removed or replaced), writing to it would lose every record unseen.
    identity: (u64, u64),
    written: u64,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> SinkError + '_ {
    move |source| SinkError::Io { path: path.to_path_buf(), source }
}

fn rotated(path: &Path, n: usize) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".{n}"));
    PathBuf::from(name)
}

impl JsonLinesFile {
    /// Opens (appending) `path`; rotates once it grows past `max_bytes`, keeping `keep` old files.
    pub fn open(path: &Path, max_bytes: u64, keep: usize) -> Result<JsonLinesFile, SinkError> {
        let (file, identity, written) = open_appending(path)?;
        Ok(JsonLinesFile { path: path.to_path_buf(), max_bytes: max_bytes.max(1), keep, file, identity, written })
    }

    /// Appends `records`, one line each, in one `write` after one `stat` (a rotation between two
    /// lines splits them in two). A file past `max_bytes` is rotated before the line that would
    /// overflow it; a single line larger than that gets a file of its own.
    pub fn write(&mut self, records: &[ComparisonRecord]) -> Result<(), WriteError> {
        let mut done = 0;
        let failed = |done: usize| move |source| WriteError { source, unwritten: records.len() - done };
        if !self.still_at_path() {
            // Removed or replaced under us: write to what the path names now (recreating the
            // directory), or fail and be counted, rather than write into an unlinked file.
            (self.file, self.identity, self.written) = open_appending(&self.path).map_err(failed(0))?;
        }
        let mut chunk = Vec::with_capacity(512 * records.len());
        let mut in_chunk = 0;
        for record in records {
            let start = chunk.len();
            if serde_json::to_writer(&mut chunk, record).is_err() {
                chunk.truncate(start);
            }
            chunk.push(b'\n');
            if self.written + start as u64 > 0 && self.written + chunk.len() as u64 > self.max_bytes {
                self.append(&chunk[..start]).map_err(failed(done))?;
                done += in_chunk;
                self.rotate().map_err(failed(done))?;
                chunk.drain(..start);
                in_chunk = 0;
            }
            in_chunk += 1;
        }
        self.append(&chunk).map_err(failed(done))
    }

    fn append(&mut self, lines: &[u8]) -> Result<(), SinkError> {
        if !lines.is_empty() {
            self.file.write_all(lines).map_err(io(&self.path))?;
            self.written += lines.len() as u64;
        }
        Ok(())
    }

    pub fn flush(&mut self) -> Result<(), SinkError> {
        self.file.flush().map_err(io(&self.path))
    }

    fn rotate(&mut self) -> Result<(), SinkError> {
        self.file.flush().map_err(io(&self.path))?;
        if self.keep == 0 {
            std::fs::remove_file(&self.path).map_err(io(&self.path))?;
        } else {
            let _ = std::fs::remove_file(rotated(&self.path, self.keep));
            for n in (1..self.keep).rev() {
                let from = rotated(&self.path, n);
                if from.exists() {
                    std::fs::rename(&from, rotated(&self.path, n + 1)).map_err(io(&from))?;
                }
            }
            std::fs::rename(&self.path, rotated(&self.path, 1)).map_err(io(&self.path))?;
        }
        (self.file, self.identity, self.written) = open_appending(&self.path)?;
        Ok(())
    }

    /// Whether `path` still names the open file (one `stat`).
    fn still_at_path(&self) -> bool {
        std::fs::metadata(&self.path).is_ok_and(|m| (m.dev(), m.ino()) == self.identity)
    }
}

/// Opens `path` for appending (creating its directory): the file, its identity and its length.
fn open_appending(path: &Path) -> Result<(File, (u64, u64), u64), SinkError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
    }
    let file = OpenOptions::new().create(true).append(true).open(path).map_err(io(path))?;
    let meta = file.metadata().map_err(io(path))?;
    Ok((file, (meta.dev(), meta.ino()), meta.len()))
}

/// The longest line read as a record; a longer one is skipped (counted as not a record) without
/// being held in memory. A record is bounded (50 differences of at most 256-character examples),
/// so a real one is far shorter.
pub const MAX_RECORD_LINE: usize = 1024 * 1024;

/// Calls `each` with every record of `path` and its rotated files, oldest first, as they are read:
/// the memory this takes is one line (at most [`MAX_RECORD_LINE`]), whatever the files' sizes.
/// Returns the number of lines that were not records (not JSON of the record's shape, not UTF-8,
/// longer than the bound, or with impossible values: see [`ComparisonRecord::parse`]). Only
/// regular files are read.
pub fn for_each_record(path: &Path, mut each: impl FnMut(ComparisonRecord)) -> Result<usize, SinkError> {
    let mut files: Vec<PathBuf> = (1..1000).map(|n| rotated(path, n)).take_while(|p| p.exists()).collect();
    files.reverse();
    files.push(path.to_path_buf());
    if !path.exists() && files.len() == 1 {
        return Err(SinkError::Io { path: path.to_path_buf(), source: std::io::ErrorKind::NotFound.into() });
    }
    let mut bad = 0;
    let mut line = Vec::new();
    for file in files.iter().filter(|f| f.exists()) {
        let opened = switchyard_rules::open_regular(file)
            .map_err(|e| SinkError::Read { path: file.clone(), reason: e.to_string() })?;
        let mut reader = BufReader::new(opened);
        loop {
            let (complete, over) = read_line_capped(&mut reader, &mut line, MAX_RECORD_LINE).map_err(io(file))?;
            if line.is_empty() && !complete {
                break;
            }
            if over {
                bad += 1;
            } else if !line.trim_ascii().is_empty() {
                match ComparisonRecord::parse(&line) {
                    Some(record) => each(record),
                    None => bad += 1,
                }
            }
            if !complete {
                break;
            }
        }
    }
    Ok(bad)
}

/// Reads one line (without its newline) into `line`, keeping at most `max` bytes of it and
/// dropping the rest as it streams by. Returns whether a newline ended it (false at the end of the
/// input) and whether it was longer than `max`.
fn read_line_capped(reader: &mut impl BufRead, line: &mut Vec<u8>, max: usize) -> std::io::Result<(bool, bool)> {
    line.clear();
    let mut over = false;
    loop {
        let buf = reader.fill_buf()?;
        if buf.is_empty() {
            return Ok((false, over));
        }
        let (piece, newline) = match buf.iter().position(|b| *b == b'\n') {
            Some(at) => (&buf[..at], Some(at)),
            None => (buf, None),
        };
        if !over && line.len() + piece.len() <= max {
            line.extend_from_slice(piece);
        } else {
            over = true;
            line.clear();
        }
        let used = newline.map_or(buf.len(), |at| at + 1);
        reader.consume(used);
        if newline.is_some() {
            return Ok((true, over));
        }
    }
}

/// Every record of `path` and its rotated files (see [`for_each_record`]), with the number of
/// lines that were not records. Holds them all: for small files (tests); the report streams.
pub fn read_records(path: &Path) -> Result<(Vec<ComparisonRecord>, usize), SinkError> {
    let mut records = Vec::new();
    let bad = for_each_record(path, |r| records.push(r))?;
    Ok((records, bad))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::{Outcome, SideReport};
    use crate::record::SCHEMA_VERSION;

    fn rec(i: usize) -> ComparisonRecord {
        ComparisonRecord {
            schema: SCHEMA_VERSION,
            time_ms: i as u64,
            instance: "t".into(),
            request_id: format!("r{i}"),
            action: "guest/a".into(),
            served_by: "legacy".into(),
            outcome: Outcome::Match,
            legacy: SideReport::default(),
            scheduler: SideReport::default(),
            differences: vec![],
            differences_truncated: 0,
            control_differences: None,
        }
    }

    #[test]
    fn rotates_by_size_and_reads_back_in_order() {
        let dir = std::env::temp_dir().join(format!("shadow-sink-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let path = dir.join("records.jsonl");
        let mut sink = JsonLinesFile::open(&path, 1_000, 3).unwrap();
        // One record at a time, then batches that cross the rotation size.
        for i in 0..20 {
            sink.write(&[rec(i)]).unwrap();
        }
        for batch in (20..40).collect::<Vec<_>>().chunks(7) {
            sink.write(&batch.iter().map(|&i| rec(i)).collect::<Vec<_>>()).unwrap();
        }
        sink.flush().unwrap();
        assert!(rotated(&path, 1).exists() && rotated(&path, 3).exists() && !rotated(&path, 4).exists());
        std::fs::write(rotated(&path, 3), b"not json\n").unwrap();
        let (records, bad) = read_records(&path).unwrap();
        assert_eq!(bad, 1);
        let times: Vec<u64> = records.iter().map(|r| r.time_ms).collect();
        assert!(times.windows(2).all(|w| w[0] < w[1]), "oldest first: {times:?}");
        assert_eq!(*times.last().unwrap(), 39);
        assert!(std::fs::metadata(&path).unwrap().len() <= 1_000);
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// The directory removed while records are written: the next record recreates it and lands
    /// in a new file, none goes into the unlinked one.
    #[test]
    fn a_removed_directory_is_recreated_and_nothing_goes_to_the_unlinked_file() {
        let dir = std::env::temp_dir().join(format!("shadow-sink-gone-{}", std::process::id()));
        let path = dir.join("records.jsonl");
        let mut sink = JsonLinesFile::open(&path, 1 << 20, 2).unwrap();
        sink.write(&[rec(1)]).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        sink.write(&[rec(2)]).unwrap();
        let (records, _) = read_records(&path).unwrap();
        assert_eq!(records.iter().map(|r| r.time_ms).collect::<Vec<_>>(), [2]);
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A full disk fails each write with the path named and says how many records it lost;
    /// the caller counts them.
    #[test]
    fn a_full_disk_fails_each_write() {
        let mut sink = JsonLinesFile::open(Path::new("/dev/full"), 1 << 20, 2).unwrap();
        let e = sink.write(&[rec(1)]).unwrap_err();
        assert_eq!(e.unwritten, 1);
        let e = e.to_string();
        assert!(e.starts_with("/dev/full: ") && e.contains("No space left"), "{e}");
        assert_eq!(sink.write(&[rec(2), rec(3), rec(4)]).unwrap_err().unwritten, 3);
    }
}
