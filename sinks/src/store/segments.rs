//! Arrow IPC segment files of one store, and the commit protocol that makes a micro-batch appear
//! whole or not at all.
//!
//! Layout: `<root>/{events,profiles,signals,scores}/p<partition>/<seq>.arrow`, up to four per
//! micro-batch. A batch writes its profiles, signals and scores (lead-score changes) segments
//! first and its events segment last: the events segment is the commit marker. Any other
//! segment whose seq is above the highest events seq belongs to a batch that never committed
//! and is deleted on open.
//! Every file is written to `*.tmp`, synced, then renamed, so readers never see half a file.
//!
//! A file that replaces several (a merge, an erasure) is named by the range of seqs it holds,
//! `<first>-<last>.arrow`. From the moment it is renamed into place it supersedes every file
//! whose seqs it covers: listings skip those and `clean` deletes them. Deleting them is
//! housekeeping, so a crash between the rename and the deletes changes nothing readers see.

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
    /// A batch's lead-score changes, all kept: the contact's score history.
    Scores,
}

impl Kind {
    fn dir(self) -> &'static str {
        match self {
            Kind::Events => "events",
            Kind::Profiles => "profiles",
            Kind::Signals => "signals",
            Kind::Scores => "scores",
        }
    }
}

/// One segment file: the seqs it holds (`first..=seq`), path and size.
#[derive(Debug, Clone)]
pub struct Segment {
    pub first: u64,
    /// The last (for a single batch, the only) seq the file holds.
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

    /// Live segments of `kind` for `partition`, by ascending seq (superseded ones skipped).
    pub fn list(&self, kind: Kind, partition: i32) -> Result<Vec<Segment>, SegmentError> {
        Ok(self.scan(kind, partition)?.0)
    }

    /// Segments of `kind` for `partition`: the live ones by ascending seq, and those superseded
    /// by a file covering their seqs.
    fn scan(
        &self,
        kind: Kind,
        partition: i32,
    ) -> Result<(Vec<Segment>, Vec<Segment>), SegmentError> {
        let dir = self.dir(kind, partition);
        let mut all = Vec::new();
        for entry in read_dir_or_empty(&dir)? {
            let entry = entry.map_err(io_err(&dir))?;
            let name = entry.file_name();
            let Some((first, seq)) = name
                .to_str()
                .and_then(|n| n.strip_suffix(".arrow"))
                .and_then(parse_range)
            else {
                continue;
            };
            let bytes = entry.metadata().map_err(io_err(&entry.path()))?.len();
            all.push(Segment {
                first,
                seq,
                path: entry.path(),
                bytes,
            });
        }
        // Widest first among equal starts: a covering file comes before those it covers.
        all.sort_by_key(|s| (s.first, std::cmp::Reverse(s.seq)));
        let (mut live, mut superseded) = (Vec::<Segment>::new(), Vec::new());
        for s in all {
            match live.last() {
                Some(l) if s.seq <= l.seq => superseded.push(s),
                _ => live.push(s),
            }
        }
        Ok((live, superseded))
    }

    /// Live segments of `kind` for `partition` that belong to committed batches: a profiles or
    /// signals segment past the last events segment is a write in progress (or one a crash cut
    /// short), not data.
    pub fn committed_list(&self, kind: Kind, partition: i32) -> Result<Vec<Segment>, SegmentError> {
        let mut segs = self.list(kind, partition)?;
        if kind != Kind::Events {
            // Events segments are the commit markers: all of them are committed.
            let committed = self.committed(partition)?;
            segs.retain(|s| committed.is_some_and(|c| s.seq <= c));
        }
        Ok(segs)
    }

    /// Highest committed seq of `partition`.
    pub fn committed(&self, partition: i32) -> Result<Option<u64>, SegmentError> {
        Ok(self.list(Kind::Events, partition)?.last().map(|s| s.seq))
    }

    /// Deletes temporary files, superseded segments, and profiles, signals and scores segments
    /// of batches that never committed.
    pub fn clean(&self, partition: i32) -> Result<(), SegmentError> {
        let committed = self.committed(partition)?;
        for kind in [Kind::Events, Kind::Profiles, Kind::Signals, Kind::Scores] {
            let (live, superseded) = self.scan(kind, partition)?;
            if !superseded.is_empty() {
                tracing::info!(
                    partition,
                    ?kind,
                    files = superseded.len(),
                    "removing segments a merged one replaced"
                );
                self.remove(&superseded)?;
            }
            let dir = self.dir(kind, partition);
            if let Ok(entries) = fs::read_dir(&dir) {
                for entry in entries.flatten() {
                    if entry.file_name().to_string_lossy().ends_with(".tmp") {
                        fs::remove_file(entry.path()).map_err(io_err(&entry.path()))?;
                    }
                }
            }
            if kind == Kind::Events {
                continue;
            }
            for s in live.iter().filter(|s| committed.is_none_or(|c| s.seq > c)) {
                tracing::warn!(path = %s.path.display(), ?kind, "removing a segment of an uncommitted batch");
                fs::remove_file(&s.path).map_err(io_err(&s.path))?;
            }
        }
        Ok(())
    }

    /// Writes one batch's segment atomically (temp file, fsync, rename, directory fsync).
    pub fn write(
        &self,
        kind: Kind,
        partition: i32,
        seq: u64,
        schema: &SchemaRef,
        batches: &[RecordBatch],
    ) -> Result<PathBuf, SegmentError> {
        self.write_range(kind, partition, seq..=seq, schema, batches)
    }

    /// Writes, atomically, one segment holding the rows of `seqs`: once it is in place it
    /// supersedes the files it covers. Returns its path.
    pub fn write_range(
        &self,
        kind: Kind,
        partition: i32,
        seqs: std::ops::RangeInclusive<u64>,
        schema: &SchemaRef,
        batches: &[RecordBatch],
    ) -> Result<PathBuf, SegmentError> {
        let dir = self.dir(kind, partition);
        fs::create_dir_all(&dir).map_err(io_err(&dir))?;
        let name = match (*seqs.start(), *seqs.end()) {
            (first, last) if first == last => format!("{last:016}"),
            (first, last) => format!("{first:016}-{last:016}"),
        };
        let path = dir.join(format!("{name}.arrow"));
        let tmp = dir.join(format!("{name}.arrow.tmp"));
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
        Ok(path)
    }

    /// Replaces `files` (a run of live segments, by ascending seq) with one segment of
    /// `batches` covering their seqs: written, then the files it covers deleted.
    pub fn replace(
        &self,
        kind: Kind,
        partition: i32,
        files: &[Segment],
        schema: &SchemaRef,
        batches: &[RecordBatch],
    ) -> Result<(), SegmentError> {
        let (Some(first), Some(last)) = (files.first(), files.last()) else {
            return Ok(());
        };
        let path = self.write_range(kind, partition, first.first..=last.seq, schema, batches)?;
        // Unless it kept its name (one file rewritten), each old file is now covered.
        let covered: Vec<Segment> = files.iter().filter(|s| s.path != path).cloned().collect();
        self.remove(&covered)
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

    /// Every record batch of `kind` for `partition` of committed batches, in seq order. A file
    /// that vanishes between the listing and the read was replaced by a merge (of this process
    /// or of a `keyflow run` beside a reader): the read starts again from a new listing.
    pub fn read(&self, kind: Kind, partition: i32) -> Result<Vec<RecordBatch>, SegmentError> {
        let mut attempt = 0;
        'listing: loop {
            attempt += 1;
            let mut out = Vec::new();
            for s in self.committed_list(kind, partition)? {
                match Self::read_file(&s.path) {
                    Ok(batches) => out.extend(batches),
                    Err(SegmentError::Io { source, .. })
                        if source.kind() == io::ErrorKind::NotFound && attempt < 10 =>
                    {
                        continue 'listing;
                    }
                    Err(e) => return Err(e),
                }
            }
            return Ok(out);
        }
    }

    /// Deletes segments (after a file covering their seqs replaced them).
    pub fn remove(&self, segments: &[Segment]) -> Result<(), SegmentError> {
        for s in segments {
            fs::remove_file(&s.path).map_err(io_err(&s.path))?;
        }
        Ok(())
    }
}

/// `<seq>` or `<first>-<last>`.
fn parse_range(name: &str) -> Option<(u64, u64)> {
    match name.split_once('-') {
        None => name.parse().ok().map(|seq| (seq, seq)),
        Some((first, last)) => {
            let (first, last) = (first.parse().ok()?, last.parse().ok()?);
            (first <= last).then_some((first, last))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::UInt64Array;
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    use std::sync::Arc;

    fn batch(values: &[u64]) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![Field::new("v", DataType::UInt64, false)]));
        RecordBatch::try_new(schema, vec![Arc::new(UInt64Array::from(values.to_vec()))]).unwrap()
    }

    fn values(segs: &Segments) -> Vec<u64> {
        segs.read(Kind::Events, 0)
            .unwrap()
            .iter()
            .flat_map(|b| {
                let col = b.column(0).as_any().downcast_ref::<UInt64Array>().unwrap();
                col.values().to_vec()
            })
            .collect()
    }

    fn put(segs: &Segments, seqs: std::ops::RangeInclusive<u64>, v: &[u64]) {
        let b = batch(v);
        segs.write_range(Kind::Events, 0, seqs, &b.schema(), &[b])
            .unwrap();
    }

    #[test]
    fn a_merged_file_supersedes_the_files_it_covers_before_they_are_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let segs = Segments::new(dir.path());
        for seq in 0..4 {
            put(&segs, seq..=seq, &[seq]);
        }
        // A merge of 1..=3 renamed into place, then a crash before the old files go.
        put(&segs, 1..=3, &[1, 2, 3]);
        put(&segs, 4..=4, &[4]);
        let seqs = |s: &Segments| {
            s.list(Kind::Events, 0)
                .unwrap()
                .iter()
                .map(|s| (s.first, s.seq))
                .collect::<Vec<_>>()
        };
        assert_eq!(seqs(&segs), vec![(0, 0), (1, 3), (4, 4)]);
        assert_eq!(values(&segs), vec![0, 1, 2, 3, 4], "each row once");
        assert_eq!(segs.committed(0).unwrap(), Some(4));

        // A second merge over the first one's output and the rest.
        put(&segs, 0..=4, &[0, 1, 2, 3, 4]);
        assert_eq!(seqs(&segs), vec![(0, 4)]);
        assert_eq!(values(&segs), vec![0, 1, 2, 3, 4]);

        segs.clean(0).unwrap();
        let files = fs::read_dir(dir.path().join("events/p0000"))
            .unwrap()
            .count();
        assert_eq!(files, 1, "clean deletes the superseded files");
        assert_eq!(values(&segs), vec![0, 1, 2, 3, 4]);
    }

    #[test]
    fn names_parse_as_single_seqs_or_ranges() {
        assert_eq!(parse_range("0000000000000007"), Some((7, 7)));
        assert_eq!(
            parse_range("0000000000000002-0000000000000009"),
            Some((2, 9))
        );
        assert_eq!(parse_range("9-2"), None);
        assert_eq!(parse_range("x"), None);
    }
}
