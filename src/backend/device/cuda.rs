//! Opening a CUDA device in the `cuda` build, as one line of error where it cannot be had.
//!
//! The build loads the CUDA libraries when a CUDA device is first asked for (cudarc's dynamic
//! loading, `vendor/README.md`), so the binary starts on machines without them; but cudarc
//! panics, rather than returning an error, when a library is missing. So the libraries it will
//! load are probed here first (with cudarc's own search), the device is opened with any panic
//! contained, and one matrix product and one reduction run on it, so that a driver too old for
//! the kernels, or a GPU they were not built for, is found now and not in the middle of a run.

use std::panic::{catch_unwind, AssertUnwindSafe};

use anyhow::{bail, Result};
use candle_core::{DType, Device, Tensor};

/// A library cudarc loads at run time: its name on Linux, what it is, cudarc's probe.
struct Library {
    file: &'static str,
    probe: unsafe fn() -> bool,
}

/// cuBLAS and cuRAND: what opening a candle device loads besides the driver. (candle uses no
/// nvrtc, and cuBLAS loads its own cuBLASLt.)
const RUNTIME: [Library; 2] = [
    Library {
        file: "libcublas.so.13",
        probe: cudarc::cublas::sys::is_culib_present,
    },
    Library {
        file: "libcurand.so.10",
        probe: cudarc::curand::sys::is_culib_present,
    },
];

/// The CUDA device `ordinal`, working; `name` is what the user wrote, for the message.
pub fn open(ordinal: usize, name: &str) -> Result<Device> {
    // SAFETY: the probes open and close a shared library by name (no code of it runs but its
    // initializers, as for any library the process loads).
    if !unsafe { cudarc::driver::sys::is_culib_present() } {
        bail!(
            "device `{name}`: no NVIDIA driver on this machine (libcuda.so.1 not found); use \
             --device cpu, or run on a machine with an NVIDIA GPU and its driver"
        );
    }
    let missing: Vec<&str> = RUNTIME
        .iter()
        // SAFETY: as above.
        .filter(|lib| !unsafe { (lib.probe)() })
        .map(|lib| lib.file)
        .collect();
    if !missing.is_empty() {
        bail!(
            "device `{name}`: the NVIDIA driver is here but not CUDA 13's {}; install them (pip \
             install nvidia-cublas==13.* nvidia-curand==10.*, then add its nvidia/cu13/lib to \
             LD_LIBRARY_PATH, or a CUDA 13 toolkit's lib64) or use --device cpu",
            missing.join(", ")
        );
    }
    let dev = match contained(|| Ok(Device::new_cuda(ordinal)?)) {
        Ok(dev) => dev,
        Err(e) => bail!(
            "device `{name}`: no usable NVIDIA GPU ({e}); use --device cpu, or see nvidia-smi \
             for the GPUs of this machine"
        ),
    };
    if let Err(e) = contained(|| smoke_test(&dev)) {
        bail!(
            "device `{name}`: the GPU did not run marl's kernels ({e}); the binary's kernels are \
             built for one compute capability (CUDA_COMPUTE_CAP, 90 by default: H100/H200) and \
             need a driver for CUDA 13.0 or newer (nvidia-smi shows both); rebuild with \
             CUDA_COMPUTE_CAP=<this GPU's> scripts/build-cuda.sh, or use --device cpu"
        );
    }
    Ok(dev)
}

/// A product on cuBLAS and a sum by a PTX kernel, checked on the host.
fn smoke_test(dev: &Device) -> Result<()> {
    let ones = Tensor::ones((2, 2), DType::F32, dev)?;
    let sum = ones.matmul(&ones)?.sum_all()?.to_scalar::<f32>()?;
    if sum != 8.0 {
        bail!("a 2x2 product of ones summed to {sum}, not 8");
    }
    Ok(())
}

/// `f`'s result with a panic turned into an error, all on one line.
fn contained<T>(f: impl FnOnce() -> Result<T>) -> Result<T> {
    let one_line = |s: &str| s.lines().next().unwrap_or("").trim().to_string();
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => bail!("{}", one_line(&format!("{e:#}"))),
        Err(panic) => {
            let text = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "a panic".into());
            bail!("{}", one_line(&text))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_and_panics_become_one_line() {
        let e = contained::<()>(|| bail!("first\nsecond")).unwrap_err();
        assert_eq!(e.to_string(), "first");
        let e = contained::<()>(|| panic!("loading failed\nmore")).unwrap_err();
        assert_eq!(e.to_string(), "loading failed");
    }
}
