//! File writes that cannot leave a torn file ([`write_atomic`]), and failed file operations as
//! one readable line: what was being done, to which path, and the
//! operating system's reason once (`writing checkpoint runs/r/checkpoints/000400: No space left
//! on device (os error 28)`). Libraries that repeat an I/O error's text in their own message
//! (safetensors' `I/O error: {0}` over the same error as its source) would otherwise print the
//! reason twice under `{:#}`.

use std::io;
use std::path::Path;

/// `err` as `action path: reason`, where the reason is the innermost I/O error of `err` (its
/// wrappers dropped) or, without one, `err` itself.
pub fn failed(action: &str, path: &Path, err: impl Into<anyhow::Error>) -> anyhow::Error {
    let err: anyhow::Error = err.into();
    let what = format!("{action} {}", path.display());
    let innermost = err
        .chain()
        .filter_map(|e| e.downcast_ref::<io::Error>())
        .last();
    match innermost {
        Some(e) => {
            // io::Error is not Clone: the same kind and text (and OS code, where there is one).
            let reason = match e.raw_os_error() {
                Some(code) => io::Error::from_raw_os_error(code),
                None => io::Error::new(e.kind(), e.to_string()),
            };
            anyhow::Error::new(reason).context(what)
        }
        None => err.context(what),
    }
}

/// Writes `bytes` to `path` through a temporary file beside it and a rename, so a reader (or a
/// crash) sees the old file or the new one, never half of it; an error names `path`.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let tmp = path.with_extension("tmp-write");
    let written = std::fs::write(&tmp, bytes).and_then(|()| std::fs::rename(&tmp, path));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(failed("writing", path, e));
    }
    Ok(())
}

/// Writes `bytes` to `path` (`action` names it in errors: `writing checkpoint`).
pub fn write(action: &str, path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    std::fs::write(path, bytes).map_err(|e| failed(action, path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Wrapper(io::Error);

    impl std::fmt::Display for Wrapper {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "I/O error: {}", self.0)
        }
    }

    impl std::error::Error for Wrapper {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn the_reason_appears_once_after_the_action_and_path() {
        let wrapped = Wrapper(io::Error::from_raw_os_error(28));
        assert_eq!(
            format!("{:#}", anyhow::Error::new(Wrapper(io::Error::from_raw_os_error(28)))),
            "I/O error: No space left on device (os error 28): No space left on device (os error 28)",
            "the problem"
        );
        let e = failed(
            "writing checkpoint",
            Path::new("runs/r/checkpoints/000400"),
            wrapped,
        );
        assert_eq!(
            format!("{e:#}"),
            "writing checkpoint runs/r/checkpoints/000400: No space left on device (os error 28)"
        );
        let e = e.chain().last().and_then(|e| e.downcast_ref::<io::Error>());
        assert_eq!(e.map(io::Error::kind), Some(io::ErrorKind::StorageFull));
    }

    #[test]
    fn errors_without_an_io_cause_keep_their_text() {
        let e = failed("writing", Path::new("x"), anyhow::anyhow!("shape mismatch"));
        assert_eq!(format!("{e:#}"), "writing x: shape mismatch");
    }
}
