//! What the integration tests share: tests written once as a function of the device and
//! expanded into a test per device ([`per_device!`]), the CUDA variants skipping, with a
//! message, where no GPU is usable.

// Each test crate uses what it needs of this module.
#![allow(dead_code, unused_macros, unused_imports)]

use candle_core::Device;

/// The variable that turns a skipped CUDA test into a failure: set it on GPU machines, where
/// the CUDA variants must run.
pub const REQUIRE_CUDA: &str = "MARL_REQUIRE_CUDA";

/// The CUDA device where one is usable; elsewhere `None`, after saying on stderr why `test`
/// is skipped (it then passes), or a panic with [`REQUIRE_CUDA`] set.
pub fn cuda_or_skip(test: &str) -> Option<Device> {
    match marl::backend::device::parse("cuda") {
        Ok(dev) => Some(dev),
        Err(e) if std::env::var_os(REQUIRE_CUDA).is_some() => {
            panic!("{test}: {REQUIRE_CUDA} is set, but {e:#}")
        }
        Err(e) => {
            eprintln!("skipped {test}: {e:#}");
            None
        }
    }
}

/// `NAME => BODY` pairs, each `BODY` a function or closure of `&Device` (named unlike the
/// tests, which would shadow it), expanded into the test `cpu::NAME` and, in the `cuda` build,
/// `cuda::NAME` (skipped, saying why, without a GPU).
macro_rules! per_device {
    ($($name:ident => $body:expr),* $(,)?) => {
        mod cpu {
            #[allow(unused_imports)]
            use super::*;
            $(
                #[test]
                fn $name() {
                    ($body)(&candle_core::Device::Cpu)
                }
            )*
        }

        #[cfg(feature = "cuda")]
        mod cuda {
            #[allow(unused_imports)]
            use super::*;
            $(
                #[test]
                fn $name() {
                    let test = concat!(module_path!(), "::", stringify!($name));
                    if let Some(dev) = crate::common::cuda_or_skip(test) {
                        ($body)(&dev)
                    }
                }
            )*
        }
    };
}

/// [`per_device!`]'s form for what runs on the CPU only: `NAME => BODY` into the test `NAME`.
macro_rules! cpu_only {
    ($($name:ident => $body:expr),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                ($body)(&candle_core::Device::Cpu)
            }
        )*
    };
}

pub(crate) use {cpu_only, per_device};
