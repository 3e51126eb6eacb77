//! TensorBoard event files beside metrics.csv: every metrics row becomes one event at step
//! `global_step` holding one scalar per column, under the column's own name
//! (`charts/episodic_return`, `losses/value_loss`, ...); empty cells (no episode finished, no
//! evaluation this update) are left out, and `update` and `global_step` are the axis, not
//! scalars. `tensorboard --logdir runs/` then shows every run.
//!
//! The format, written by hand (no protobuf library): a file of records, each `u64 length`,
//! `u32 masked CRC-32C of the length`, the bytes of an `Event` protocol buffer, `u32 masked
//! CRC-32C of the bytes` (TensorFlow's `record_writer`); the first event holds
//! `file_version = "brain.Event:2"`, the others `wall_time`, `step` and a `Summary` of
//! `Value { tag, simple_value }` (float32). Field numbers are those of TensorFlow's
//! `event.proto` and `summary.proto`.
//!
//! A resumed run keeps the events up to the checkpoint's step and drops the rest, as
//! metrics.csv does, so the file always equals metrics.csv (tests read it back with the
//! TensorBoard package's own reader).

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::run::dir::{Metrics, RunDir};

/// Columns that are the step axis, not scalars.
const AXIS_COLUMNS: [&str; 2] = ["update", "global_step"];

/// Appends scalar events to a run's event file.
pub struct ScalarLog {
    file: File,
    path: PathBuf,
}

impl ScalarLog {
    /// Opens the event file of `dir`. A new run gets a new file. A resumed run (`resume`)
    /// keeps its file's events up to the last `global_step` of metrics.csv (which the caller
    /// has already cut back to the checkpoint), or, when it has no event file, gets one
    /// holding metrics.csv's rows.
    pub fn open(dir: &RunDir, resume: bool) -> Result<Self> {
        let existing = if resume { find(dir)? } else { None };
        let Some(path) = existing else {
            let mut log = Self::create(dir)?;
            if resume {
                let Metrics { header, rows } = dir.read_metrics()?;
                for row in rows {
                    let values: Vec<f64> =
                        row.iter().map(|c| c.parse().unwrap_or(f64::NAN)).collect();
                    log.write(&header, &values)?;
                }
            }
            return Ok(log);
        };
        let last_step = dir.read_metrics()?.last("global_step").map(|s| s as u64);
        let bytes =
            std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
        let keep = records_through(&bytes, last_step);
        let file = OpenOptions::new()
            .write(true)
            .open(&path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        file.set_len(keep as u64)
            .with_context(|| format!("cannot truncate {}", path.display()))?;
        drop(file);
        let file = OpenOptions::new()
            .append(true)
            .open(&path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        Ok(Self { file, path })
    }

    /// A new file; those of an earlier run in the directory go, as its metrics.csv does.
    fn create(dir: &RunDir) -> Result<Self> {
        while let Some(old) = find(dir)? {
            std::fs::remove_file(&old)
                .with_context(|| format!("cannot remove {}", old.display()))?;
        }
        let now = wall_time();
        let path = dir.event_file_path(&format!(
            "{}.{}.marl",
            now as u64,
            crate::run::lock::hostname()
        ));
        let file =
            File::create(&path).with_context(|| format!("cannot create {}", path.display()))?;
        let mut log = Self { file, path };
        let mut event = Vec::new();
        put_double(&mut event, 1, now);
        put_bytes(&mut event, 3, b"brain.Event:2");
        log.append(&event)?;
        Ok(log)
    }

    /// Writes one metrics row (`values` follows `columns`; NaN: missing) as an event at its
    /// `global_step`.
    pub fn write(&mut self, columns: &[String], values: &[f64]) -> Result<()> {
        let step = columns
            .iter()
            .position(|c| c == "global_step")
            .and_then(|i| values.get(i))
            .copied()
            .unwrap_or(0.0);
        let mut summary = Vec::new();
        for (name, &v) in columns.iter().zip(values) {
            if AXIS_COLUMNS.contains(&name.as_str()) || !v.is_finite() {
                continue;
            }
            let mut value = Vec::new();
            put_bytes(&mut value, 1, name.as_bytes());
            put_float(&mut value, 2, v as f32);
            put_bytes(&mut summary, 1, &value);
        }
        let mut event = Vec::new();
        put_double(&mut event, 1, wall_time());
        put_varint_field(&mut event, 2, step as u64);
        put_bytes(&mut event, 5, &summary);
        self.append(&event)
    }

    /// The event file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn append(&mut self, event: &[u8]) -> Result<()> {
        let mut record = Vec::with_capacity(event.len() + 16);
        let len = (event.len() as u64).to_le_bytes();
        record.extend_from_slice(&len);
        record.extend_from_slice(&masked_crc(&len).to_le_bytes());
        record.extend_from_slice(event);
        record.extend_from_slice(&masked_crc(event).to_le_bytes());
        self.file
            .write_all(&record)
            .and_then(|()| self.file.flush())
            .with_context(|| format!("cannot write {}", self.path.display()))
    }
}

/// The run's event file (the newest by name when there are several).
fn find(dir: &RunDir) -> Result<Option<PathBuf>> {
    Ok(dir.event_files()?.pop())
}

/// The length of the leading records whose step is at most `last_step` (all of them but the
/// header when None); a torn record at the end is dropped too.
fn records_through(bytes: &[u8], last_step: Option<u64>) -> usize {
    let mut at = 0;
    let mut first = true;
    while at + 12 <= bytes.len() {
        let len_bytes: [u8; 8] = bytes[at..at + 8].try_into().expect("8 bytes");
        let len = u64::from_le_bytes(len_bytes) as usize;
        let end = at + 12 + len + 4;
        if end > bytes.len() {
            break;
        }
        let event = &bytes[at + 12..at + 12 + len];
        let crc = u32::from_le_bytes(bytes[end - 4..end].try_into().expect("4 bytes"));
        if crc != masked_crc(event) {
            break;
        }
        if !first {
            let step = event_step(event).unwrap_or(0);
            if last_step.is_none_or(|last| step > last) {
                break;
            }
        }
        first = false;
        at = end;
    }
    at
}

/// The `step` field (2) of an encoded `Event`.
fn event_step(mut event: &[u8]) -> Option<u64> {
    while !event.is_empty() {
        let tag = read_varint(&mut event)?;
        let (field, wire) = (tag >> 3, tag & 7);
        match wire {
            0 => {
                let v = read_varint(&mut event)?;
                if field == 2 {
                    return Some(v);
                }
            }
            1 => event = event.get(8..)?,
            2 => {
                let n = read_varint(&mut event)? as usize;
                event = event.get(n..)?;
            }
            5 => event = event.get(4..)?,
            _ => return None,
        }
    }
    None
}

fn read_varint(bytes: &mut &[u8]) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let (&b, rest) = bytes.split_first()?;
        *bytes = rest;
        v |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_varint_field(out: &mut Vec<u8>, field: u64, v: u64) {
    put_varint(out, field << 3);
    put_varint(out, v);
}

fn put_double(out: &mut Vec<u8>, field: u64, v: f64) {
    put_varint(out, (field << 3) | 1);
    out.extend_from_slice(&v.to_le_bytes());
}

fn put_float(out: &mut Vec<u8>, field: u64, v: f32) {
    put_varint(out, (field << 3) | 5);
    out.extend_from_slice(&v.to_le_bytes());
}

fn put_bytes(out: &mut Vec<u8>, field: u64, v: &[u8]) {
    put_varint(out, (field << 3) | 2);
    put_varint(out, v.len() as u64);
    out.extend_from_slice(v);
}

/// TensorFlow's masked CRC-32C (a CRC of data holding CRCs is weak, so it is rotated and
/// offset).
fn masked_crc(bytes: &[u8]) -> u32 {
    let crc = crc32c::crc32c(bytes);
    crc.rotate_right(15).wrapping_add(0xa282_ead8)
}

fn wall_time() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// Reads the scalars of an event file back: `(step, tag, value)` in file order (tests and
/// tools; TensorBoard's reader is the reference).
pub fn read_scalars(path: &Path) -> Result<Vec<(u64, String, f32)>> {
    let mut bytes = Vec::new();
    File::open(path)
        .and_then(|mut f| f.read_to_end(&mut bytes))
        .with_context(|| format!("cannot read {}", path.display()))?;
    let mut out = Vec::new();
    let mut at = 0;
    while at + 12 <= bytes.len() {
        let len = u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes")) as usize;
        let event = bytes
            .get(at + 12..at + 12 + len)
            .with_context(|| format!("{}: truncated record", path.display()))?;
        let step = event_step(event).unwrap_or(0);
        let mut rest = event;
        while !rest.is_empty() {
            let tag = read_varint(&mut rest).context("bad event")?;
            match tag & 7 {
                0 => {
                    read_varint(&mut rest).context("bad event")?;
                }
                1 => rest = rest.get(8..).context("bad event")?,
                5 => rest = rest.get(4..).context("bad event")?,
                2 => {
                    let n = read_varint(&mut rest).context("bad event")? as usize;
                    let body = rest.get(..n).context("bad event")?;
                    rest = &rest[n..];
                    if tag >> 3 == 5 {
                        read_summary(body, step, &mut out).context("bad summary")?;
                    }
                }
                _ => anyhow::bail!("{}: unknown wire type", path.display()),
            }
        }
        at += 12 + len + 4;
    }
    Ok(out)
}

fn read_summary(mut s: &[u8], step: u64, out: &mut Vec<(u64, String, f32)>) -> Option<()> {
    while !s.is_empty() {
        let _tag = read_varint(&mut s)?;
        let n = read_varint(&mut s)? as usize;
        let mut value = s.get(..n)?;
        s = &s[n..];
        let (mut name, mut x) = (String::new(), f32::NAN);
        while !value.is_empty() {
            let tag = read_varint(&mut value)?;
            match (tag >> 3, tag & 7) {
                (1, 2) => {
                    let k = read_varint(&mut value)? as usize;
                    name = String::from_utf8_lossy(value.get(..k)?).to_string();
                    value = &value[k..];
                }
                (2, 5) => {
                    x = f32::from_le_bytes(value.get(..4)?.try_into().ok()?);
                    value = &value[4..];
                }
                _ => return None,
            }
        }
        out.push((step, name, x));
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masked_crc_matches_tensorflow() {
        // RFC 3720, B.4: the CRC-32C of 32 zero bytes is aa 36 91 8a (little-endian);
        // tensorboard.summary.writer.record_writer.masked_crc32c(bytes(32)) gives 0xfd7fffa.
        assert_eq!(crc32c::crc32c(&[0u8; 32]), 0x8a91_36aa);
        assert_eq!(masked_crc(&[0u8; 32]), 0x0fd7_fffa);
    }

    #[test]
    fn rows_read_back_and_a_resume_drops_events_past_the_checkpoint() {
        let tmp = tempfile::tempdir().expect("tmp");
        let dir = &RunDir::new(tmp.path());
        let columns: Vec<String> = ["update", "global_step", "charts/sps", "eval/return"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let mut log = ScalarLog::open(dir, false).expect("open");
        log.write(&columns, &[1.0, 200.0, 1.5, f64::NAN])
            .expect("row");
        log.write(&columns, &[2.0, 400.0, 2.5, -3.25]).expect("row");
        log.write(&columns, &[3.0, 600.0, 3.5, f64::NAN])
            .expect("row");
        let path = log.path().to_path_buf();
        drop(log);
        let read = read_scalars(&path).expect("read");
        assert_eq!(
            read,
            vec![
                (200, "charts/sps".to_string(), 1.5),
                (400, "charts/sps".to_string(), 2.5),
                (400, "eval/return".to_string(), -3.25),
                (600, "charts/sps".to_string(), 3.5),
            ]
        );
        // metrics.csv cut back to update 2 (step 400), as a resume does.
        std::fs::write(
            dir.metrics_csv_path(),
            "update,global_step,charts/sps,eval/return\n1,200,1.5,\n2,400,2.5,-3.25\n",
        )
        .expect("csv");
        let mut log = ScalarLog::open(dir, true).expect("resume");
        assert_eq!(log.path(), path);
        log.write(&columns, &[3.0, 600.0, 9.0, f64::NAN])
            .expect("row");
        let read = read_scalars(&path).expect("read");
        assert_eq!(read.len(), 4);
        assert_eq!(read[3], (600, "charts/sps".to_string(), 9.0));
    }
}
