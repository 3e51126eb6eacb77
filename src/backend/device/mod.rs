//! `"cpu"`, `"cuda"` or `"cuda:N"` to a candle device, with errors that say what to do.
//!
//! The `cuda` build runs on machines without a GPU too: there `cuda` is a one-line error
//! naming what is missing (`device/cuda.rs`).

#[cfg(feature = "cuda")]
mod cuda;

use anyhow::{bail, Result};
use candle_core::Device;

/// The device named by `name`.
pub fn parse(name: &str) -> Result<Device> {
    let name = name.trim();
    if name == "cpu" {
        return Ok(Device::Cpu);
    }
    let ordinal = match name.strip_prefix("cuda") {
        Some("") => 0,
        Some(rest) => match rest.strip_prefix(':').and_then(|n| n.parse::<usize>().ok()) {
            Some(n) => n,
            None => bail!("device `{name}`: expected \"cpu\", \"cuda\" or \"cuda:N\""),
        },
        None => bail!("device `{name}`: expected \"cpu\", \"cuda\" or \"cuda:N\""),
    };
    cuda(ordinal, name)
}

#[cfg(feature = "cuda")]
fn cuda(ordinal: usize, name: &str) -> Result<Device> {
    cuda::open(ordinal, name)
}

#[cfg(not(feature = "cuda"))]
fn cuda(_ordinal: usize, name: &str) -> Result<Device> {
    bail!("device `{name}`: this marl binary was built without CUDA support; use --device cpu, or build the CUDA binary with scripts/build-cuda.sh")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_parses_and_bad_names_are_explained() {
        assert!(parse("cpu").is_ok());
        let e = parse("gpu").unwrap_err().to_string();
        assert!(e.contains("expected \"cpu\""), "{e}");
        let e = parse("cuda:x").unwrap_err().to_string();
        assert!(e.contains("cuda:N"), "{e}");
    }

    /// Where `cuda` fails (any machine without the feature; with it, one without a usable
    /// GPU), it fails in one line that names the device and offers the CPU.
    #[test]
    fn cuda_is_a_device_or_one_line_saying_what_to_do() {
        if let Err(e) = parse("cuda:0") {
            let e = format!("{e:#}");
            assert_eq!(e.lines().count(), 1, "{e}");
            assert!(
                e.starts_with("device `cuda:0`: ") && e.contains("--device cpu"),
                "{e}"
            );
        }
    }

    #[cfg(not(feature = "cuda"))]
    #[test]
    fn cuda_without_the_feature_says_how_to_get_it() {
        let e = parse("cuda").unwrap_err().to_string();
        assert!(
            e.contains("built without CUDA") && e.contains("--device cpu"),
            "{e}"
        );
    }
}
