//! Arrow IPC segment files of one store, and the commit protocol that makes a micro-batch appear
//! whole or not at all.
//!
//! Layout: `<root>/{events,profiles,signals}/p<partition>/<seq>.arrow`, up to three per
//! micro-batch. A batch writes its profiles and signals segments first and its events segment
//! last: the events segment is the commit marker. A profiles or signals segment whose seq is
//! above the highest events seq belongs to a batch that never committed and is deleted on open. Every file is written to `*.tmp`, synced,
//! then renamed, so readers never see half a file.

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::ipc::reader::FileReader;
use datafusion::arrow::ipc::writer::FileWriter;

#[derive(Debug, thiserror::Error)]
pub enum SegmentError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("{path}: {detail}")]
    Corrupt { path: PathBuf, detail: String },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> SegmentError + '_ {
    move |source| SegmentError::Io {
        path: path.to_owned(),
        source,
    }
}

/// The entries of `dir`; none when it does not exist yet.
fn read_dir_or_empty(dir: &Path) -> Result<Vec<io::Result<fs::DirEntry>>, SegmentError> {
    match fs::read_dir(dir) {
        Ok(entries) => Ok(entries.collect()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(io_err(dir)(e)),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Events,
    Profiles,
    /// A batch's signals, kept until a newer batch with signals commits.
    Signals,
}

impl Kind {
    fn dir(self) -> &'static str {
        match self {
            Kind::Events => "events",
            Kind::Profiles => "profiles",
            Kind::Signals => "signals",
        }
    }
}

/// One segment file: its sequence number, path and size.
#[derive(Debug, Clone)]
pub struct Segment {
    pub seq: u64,
    pub path: PathBuf,
    pub bytes: u64,
}

#[derive(Debug, Clone)]
pub struct Segments {
    root: PathBuf,
}

impl Segments {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn dir(&self, kind: Kind, partition: i32) -> PathBuf {
        self.root.join(kind.dir()).join(format!("p{partition:04}"))
    }

    /// Partitions with at least one committed batch.
    pub fn partitions(&self) -> Result<Vec<i32>, SegmentError> {
        let dir = self.root.join(Kind::Events.dir());
        let mut out = Vec::new();
        for entry in read_dir_or_empty(&dir)? {
            let entry = entry.map_err(io_err(&dir))?;
            if let Some(p) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.strip_prefix('p'))
                .and_then(|n| n.parse().ok())
            {
                out.push(p);
            }
        }
        out.sort();
        Ok(out)
    }

    /// Segments of `kind` for `partition`, by ascending seq.
    pub fn list(&self, kind: Kind, partition: i32) -> Result<Vec<Segment>, SegmentError> {
        let dir = self.dir(kind, partition);
        let mut out = Vec::new();
        for entry in read_dir_or_empty(&dir)? {
            let entry = entry.map_err(io_err(&dir))?;
            let name = entry.file_name();
            let Some(seq) = name
                .to_str()
                .and_then(|n| n.strip_suffix(".arrow"))
                .and_then(|n| n.parse().ok())
            else {
                continue;
            };
            let bytes = entry.metadata().map_err(io_err(&entry.path()))?.len();
            out.push(Segment {
                seq,
                path: entry.path(),
                bytes,
            });
        }
        out.sort_by_key(|s| s.seq);
        Ok(out)
    }

    /// Highest committed seq of `partition`.
    pub fn committed(&self, partition: i32) -> Result<Option<u64>, SegmentError> {
        Ok(self.list(Kind::Events, partition)?.last().map(|s| s.seq))
    }

    /// Deletes temporary files, and profiles and signals segments of batches that never
    /// committed.
    pub fn clean(&self, partition: i32) -> Result<(), SegmentError> {
        let committed = self.committed(partition)?;
        for kind in [Kind::Events, Kind::Profiles, Kind::Signals] {
            let dir = self.dir(kind, partition);
            if let Ok(entries) = fs::read_dir(&dir) {
                for entry in entries.flatten() {
                    if entry.file_name().to_string_lossy().ends_with(".tmp") {
                        fs::remove_file(entry.path()).map_err(io_err(&entry.path()))?;
                    }
                }
            }
        }
        for kind in [Kind::Profiles, Kind::Signals] {
            for s in self.list(kind, partition)? {
                if committed.is_none_or(|c| s.seq > c) {
                    tracing::warn!(path = %s.path.display(), ?kind, "removing a segment of an uncommitted batch");
                    fs::remove_file(&s.path).map_err(io_err(&s.path))?;
                }
            }
        }
        Ok(())
    }

    /// Writes one segment atomically (temp file, fsync, rename, directory fsync).
    pub fn write(
        &self,
        kind: Kind,
        partition: i32,
        seq: u64,
        schema: &SchemaRef,
        batches: &[RecordBatch],
    ) -> Result<(), SegmentError> {
        let dir = self.dir(kind, partition);
        fs::create_dir_all(&dir).map_err(io_err(&dir))?;
        let path = dir.join(format!("{seq:016}.arrow"));
        let tmp = dir.join(format!("{seq:016}.arrow.tmp"));
        let file = File::create(&tmp).map_err(io_err(&tmp))?;
        let corrupt = |e: datafusion::arrow::error::ArrowError| SegmentError::Corrupt {
            path: tmp.clone(),
            detail: e.to_string(),
        };
        let mut writer = FileWriter::try_new(file, schema).map_err(corrupt)?;
        for b in batches {
            writer.write(b).map_err(corrupt)?;
        }
        writer.finish().map_err(corrupt)?;
        let file = writer.into_inner().map_err(corrupt)?;
        file.sync_all().map_err(io_err(&tmp))?;
        fs::rename(&tmp, &path).map_err(io_err(&path))?;
        File::open(&dir)
            .and_then(|d| d.sync_all())
            .map_err(io_err(&dir))?;
        Ok(())
    }

    /// Every record batch of one segment file.
    pub fn read_file(path: &Path) -> Result<Vec<RecordBatch>, SegmentError> {
        let file = File::open(path).map_err(io_err(path))?;
        let corrupt = |e: datafusion::arrow::error::ArrowError| SegmentError::Corrupt {
            path: path.to_owned(),
            detail: e.to_string(),
        };
        let reader = FileReader::try_new(file, None).map_err(corrupt)?;
        reader.map(|b| b.map_err(corrupt)).collect()
    }

    /// Every record batch of `kind` for `partition`, in seq order.
    pub fn read(&self, kind: Kind, partition: i32) -> Result<Vec<RecordBatch>, SegmentError> {
        let mut out = Vec::new();
        for s in self.list(kind, partition)? {
            out.extend(Self::read_file(&s.path)?);
        }
        Ok(out)
    }

    /// Deletes segments (after their rows were merged into a newer one).
    pub fn remove(&self, segments: &[Segment]) -> Result<(), SegmentError> {
        for s in segments {
            fs::remove_file(&s.path).map_err(io_err(&s.path))?;
        }
        Ok(())
    }
}
