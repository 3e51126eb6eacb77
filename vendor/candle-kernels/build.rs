use cudaforge::{KernelBuilder, Result};
use std::env;
use std::path::PathBuf;

const CUTILE_FEATURE: &str = "CARGO_FEATURE_CUTILE";
/// marl: set to type-check (`cargo check`, `cargo clippy`) without nvcc.
const CHECK_ONLY: &str = "CANDLE_KERNELS_CHECK_ONLY";

fn main() -> Result<()> {
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rerun-if-changed=src");
    println!("cargo::rerun-if-changed=src/compatibility.cuh");
    println!("cargo::rerun-if-changed=src/cuda_utils.cuh");
    println!("cargo::rerun-if-changed=src/binary_op_macros.cuh");

    // Build for PTX
    let out_dir = PathBuf::from(env::var("OUT_DIR").unwrap());
    let ptx_path = out_dir.join("ptx.rs");
    // marl: type-check without nvcc (see vendor/README.md).
    println!("cargo::rerun-if-env-changed={CHECK_ONLY}");
    if env::var_os(CHECK_ONLY).is_some() {
        return check_only(&out_dir, &ptx_path);
    }
    let bindings = KernelBuilder::new()
        .source_dir("src") // Scan src/ for .cu files
        .exclude(&["moe_*.cu", "mmvq_gguf.cu", "mmq_*.cu"]) // Exclude statically compiled kernels from ptx build
        .arg("--expt-relaxed-constexpr")
        .arg("-std=c++17")
        .arg("-O3")
        .build_ptx()?;

    bindings.write(&ptx_path)?;

    let mut moe_sources = vec![
        "src/moe/moe_gguf.cu",
        "src/moe/moe_wmma.cu",
        "src/moe/moe_wmma_gguf.cu",
        "src/mmvq_gguf.cu",
        "src/mmq_gguf/mmq_quantize.cu",
        "src/mmq_gguf/mmq_instance_q4_0.cu",
        "src/mmq_gguf/mmq_instance_q4_1.cu",
        "src/mmq_gguf/mmq_instance_q5_0.cu",
        "src/mmq_gguf/mmq_instance_q5_1.cu",
        "src/mmq_gguf/mmq_instance_q8_0.cu",
        "src/mmq_gguf/mmq_instance_q2_k.cu",
        "src/mmq_gguf/mmq_instance_q3_k.cu",
        "src/mmq_gguf/mmq_instance_q4_k.cu",
        "src/mmq_gguf/mmq_instance_q5_k.cu",
        "src/mmq_gguf/mmq_instance_q6_k.cu",
    ];
    if env::var_os(CUTILE_FEATURE).is_some() {
        moe_sources.push("src/moe/moe_align.cu");
    }

    let mut moe_builder = KernelBuilder::default()
        .source_files(moe_sources)
        .arg("--expt-relaxed-constexpr")
        .arg("-std=c++17")
        .arg("-O3");

    // Disable bf16 WMMA kernels on GPUs older than sm_80 (Ampere).
    // bf16 WMMA fragments require compute capability >= 8.0.
    let compute_cap = cudaforge::detect_compute_cap()
        .map(|arch| arch.base())
        .unwrap_or(80);
    if compute_cap < 80 {
        moe_builder = moe_builder.arg("-DNO_BF16_KERNEL");
    }

    let mut is_target_msvc = false;
    if let Ok(target) = std::env::var("TARGET") {
        if target.contains("msvc") {
            is_target_msvc = true;
            moe_builder = moe_builder.arg("-D_USE_MATH_DEFINES");
        }
    }

    if !is_target_msvc {
        moe_builder = moe_builder.arg("-Xcompiler").arg("-fPIC");
    }

    moe_builder.build_lib(out_dir.join("libmoe.a"))?;
    println!("cargo:rustc-link-search={}", out_dir.display());
    println!("cargo:rustc-link-lib=moe");
    // marl: the CUDA runtime linked statically (libcudart_static.a), so that the binary needs
    // no CUDA library to start (see vendor/README.md).
    for var in ["CUDA_HOME", "CUDA_PATH", "CUDA_ROOT"] {
        println!("cargo::rerun-if-env-changed={var}");
        if let Some(root) = env::var_os(var) {
            println!("cargo:rustc-link-search=native={}", PathBuf::from(root).join("lib64").display());
        }
    }
    println!("cargo:rustc-link-lib=static=cudart_static");
    if !is_target_msvc {
        println!("cargo:rustc-link-lib=stdc++");
    }
    Ok(())
}

/// marl: empty PTX modules under the names `build_ptx` gives them, and no `libmoe.a`: enough
/// for `cargo check` and `cargo clippy`. Linking a binary fails (`-lmoe` is not found), so
/// such a build can never run.
fn check_only(out_dir: &std::path::Path, ptx_path: &std::path::Path) -> Result<()> {
    println!("cargo:warning={CHECK_ONLY} is set: no kernels compiled, for checking only");
    let mut rs = String::new();
    let mut names: Vec<String> = std::fs::read_dir("src")?
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".cu"))
        .filter(|n| !(n.starts_with("moe_") || n.starts_with("mmq_") || n == "mmvq_gguf.cu"))
        .map(|n| n.trim_end_matches(".cu").to_string())
        .collect();
    names.sort();
    for name in names {
        std::fs::write(out_dir.join(format!("{name}.ptx")), "")?;
        rs += &format!(
            "pub const {}: &str = include_str!(concat!(env!(\"OUT_DIR\"), \"/{name}.ptx\"));\n",
            name.to_uppercase().replace(['.', '-'], "_")
        );
    }
    std::fs::write(ptx_path, rs)?;
    println!("cargo:rustc-link-lib=moe");
    Ok(())
}
