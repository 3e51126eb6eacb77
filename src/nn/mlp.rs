//! The MLP of actors and critics: optional input LayerNorm, then per hidden layer Linear ->
//! activation -> optional LayerNorm (on-policy's MLPBase), then a linear head.
//!
//! Internally a linear layer keeps its bias as the last column of one `[out, in + 1]` matrix, so
//! the bias gradient falls out of the matrix product (candle's bias-gradient reduction is slow;
//! CANDLE.md measured 1.4-1.6x on the update). Checkpoints always hold the plain layout,
//! `weight [out, in]` and `bias [out]`, whatever the inside.
//!
//! # Shapes
//! `forward`: `[batch, in_dim]` -> `[batch, out_dim]`.

use std::collections::HashMap;

use anyhow::{bail, Context, Result};
use candle_core::{DType, Device, Tensor, Var};
use rand_chacha::ChaCha8Rng;

use super::init::orthogonal;
use super::tanh::tanh;
use crate::config::Activation;

/// A linear layer with its bias folded into the weight matrix.
#[derive(Debug)]
pub struct Linear {
    /// `[out, in + 1]`: weight columns, then the bias column.
    w: Var,
    in_dim: usize,
    out_dim: usize,
}

impl Linear {
    /// Orthogonal weights times `gain`, zero bias.
    pub fn new(
        in_dim: usize,
        out_dim: usize,
        gain: f64,
        rng: &mut ChaCha8Rng,
        dev: &Device,
    ) -> Result<Self> {
        let w = orthogonal(out_dim, in_dim, gain, rng);
        let mut folded = vec![0.0f32; out_dim * (in_dim + 1)];
        for o in 0..out_dim {
            folded[o * (in_dim + 1)..o * (in_dim + 1) + in_dim]
                .copy_from_slice(&w[o * in_dim..(o + 1) * in_dim]);
        }
        let w = Var::from_tensor(&Tensor::from_vec(folded, (out_dim, in_dim + 1), dev)?)?;
        Ok(Self { w, in_dim, out_dim })
    }

    /// `x W^T + b`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let ones = Tensor::ones((x.dim(0)?, 1), x.dtype(), x.device())?;
        let xa = Tensor::cat(&[x, &ones], 1)?; // [B, in + 1]
        Ok(xa.matmul(&self.w.as_tensor().t()?)?)
    }

    fn export(&self, prefix: &str, out: &mut Vec<(String, Tensor)>) -> Result<()> {
        let w = self.w.as_tensor();
        out.push((
            format!("{prefix}.weight"),
            w.narrow(1, 0, self.in_dim)?.contiguous()?,
        ));
        out.push((
            format!("{prefix}.bias"),
            w.narrow(1, self.in_dim, 1)?.squeeze(1)?.contiguous()?,
        ));
        Ok(())
    }

    fn import(&self, prefix: &str, map: &HashMap<String, Tensor>) -> Result<()> {
        let weight = get(
            map,
            &format!("{prefix}.weight"),
            &[self.out_dim, self.in_dim],
        )?;
        let bias = get(map, &format!("{prefix}.bias"), &[self.out_dim])?;
        let folded = Tensor::cat(&[weight, bias.unsqueeze(1)?], 1)?;
        self.w.set(&folded.to_device(self.w.device())?)?;
        Ok(())
    }
}

fn get(map: &HashMap<String, Tensor>, name: &str, shape: &[usize]) -> Result<Tensor> {
    let t = map
        .get(name)
        .with_context(|| format!("checkpoint has no tensor `{name}`"))?;
    if t.dims() != shape {
        bail!(
            "tensor `{name}` has shape {:?}, expected {shape:?}",
            t.dims()
        );
    }
    Ok(t.to_dtype(DType::F32)?)
}

/// LayerNorm over the last dimension with a learned scale and shift (eps 1e-5).
#[derive(Debug)]
pub struct LayerNorm {
    gamma: Var,
    beta: Var,
    dim: usize,
}

impl LayerNorm {
    /// Scale 1, shift 0.
    pub fn new(dim: usize, dev: &Device) -> Result<Self> {
        Ok(Self {
            gamma: Var::from_tensor(&Tensor::ones(dim, DType::F32, dev)?)?,
            beta: Var::from_tensor(&Tensor::zeros(dim, DType::F32, dev)?)?,
            dim,
        })
    }

    /// Normalizes each row.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        Ok(super::layer_norm::layer_norm(
            x,
            self.gamma.as_tensor(),
            self.beta.as_tensor(),
        )?)
    }

    fn export(&self, prefix: &str, out: &mut Vec<(String, Tensor)>) {
        out.push((format!("{prefix}.weight"), self.gamma.as_tensor().clone()));
        out.push((format!("{prefix}.bias"), self.beta.as_tensor().clone()));
    }

    fn import(&self, prefix: &str, map: &HashMap<String, Tensor>) -> Result<()> {
        self.gamma.set(
            &get(map, &format!("{prefix}.weight"), &[self.dim])?.to_device(self.gamma.device())?,
        )?;
        self.beta.set(
            &get(map, &format!("{prefix}.bias"), &[self.dim])?.to_device(self.beta.device())?,
        )?;
        Ok(())
    }
}

/// An MLP.
#[derive(Debug)]
pub struct Mlp {
    input_norm: Option<LayerNorm>,
    hidden: Vec<(Linear, Option<LayerNorm>)>,
    head: Linear,
    activation: Activation,
}

impl Mlp {
    /// Builds the network; the head is initialized with `head_gain` (0.01 for a policy, 1 for
    /// a value), hidden layers with 5/3 (tanh) or sqrt 2 (ReLU).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        in_dim: usize,
        hidden: &[usize],
        out_dim: usize,
        activation: Activation,
        layer_norm: bool,
        head_gain: f64,
        rng: &mut ChaCha8Rng,
        dev: &Device,
    ) -> Result<Self> {
        let gain = match activation {
            Activation::Tanh => 5.0 / 3.0,
            Activation::Relu => std::f64::consts::SQRT_2,
        };
        let input_norm = if layer_norm {
            Some(LayerNorm::new(in_dim, dev)?)
        } else {
            None
        };
        let mut layers = Vec::new();
        let mut d = in_dim;
        for &h in hidden {
            let norm = if layer_norm {
                Some(LayerNorm::new(h, dev)?)
            } else {
                None
            };
            layers.push((Linear::new(d, h, gain, rng, dev)?, norm));
            d = h;
        }
        let head = Linear::new(d, out_dim, head_gain, rng, dev)?;
        Ok(Self {
            input_norm,
            hidden: layers,
            head,
            activation,
        })
    }

    /// The network's output for a batch of inputs.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let mut h = match &self.input_norm {
            Some(n) => n.forward(x)?,
            None => x.clone(),
        };
        for (lin, norm) in &self.hidden {
            h = lin.forward(&h)?;
            h = match self.activation {
                Activation::Tanh => tanh(&h)?,
                Activation::Relu => h.relu()?,
            };
            if let Some(n) = norm {
                h = n.forward(&h)?;
            }
        }
        self.head.forward(&h)
    }

    /// Layer widths `[in, hidden..., out]`, whether hidden layers are ReLU, and whether the
    /// network has on-policy's LayerNorms: the shape [`super::cpu_mlp::CpuMlp`] computes by
    /// hand.
    pub fn cpu_shape(&self) -> (Vec<usize>, bool, bool) {
        let mut dims: Vec<usize> = self.hidden.iter().map(|(l, _)| l.in_dim).collect();
        dims.push(self.head.in_dim);
        dims.push(self.head.out_dim);
        let ln = self.input_norm.is_some();
        (dims, self.activation == Activation::Relu, ln)
    }

    /// Every trainable variable, in a fixed order.
    pub fn vars(&self) -> Vec<Var> {
        let mut v = Vec::new();
        if let Some(n) = &self.input_norm {
            v.extend([n.gamma.clone(), n.beta.clone()]);
        }
        for (lin, norm) in &self.hidden {
            v.push(lin.w.clone());
            if let Some(n) = norm {
                v.extend([n.gamma.clone(), n.beta.clone()]);
            }
        }
        v.push(self.head.w.clone());
        v
    }

    /// The frozen checkpoint layout: `{prefix}.input_norm.{weight,bias}`,
    /// `{prefix}.layers.{i}.{weight,bias}`, `{prefix}.norms.{i}.{weight,bias}`,
    /// `{prefix}.head.{weight,bias}`.
    pub fn export(&self, prefix: &str, out: &mut Vec<(String, Tensor)>) -> Result<()> {
        if let Some(n) = &self.input_norm {
            n.export(&format!("{prefix}.input_norm"), out);
        }
        for (i, (lin, norm)) in self.hidden.iter().enumerate() {
            lin.export(&format!("{prefix}.layers.{i}"), out)?;
            if let Some(n) = norm {
                n.export(&format!("{prefix}.norms.{i}"), out);
            }
        }
        self.head.export(&format!("{prefix}.head"), out)
    }

    /// Loads what [`export`](Self::export) wrote.
    pub fn import(&self, prefix: &str, map: &HashMap<String, Tensor>) -> Result<()> {
        if let Some(n) = &self.input_norm {
            n.import(&format!("{prefix}.input_norm"), map)?;
        }
        for (i, (lin, norm)) in self.hidden.iter().enumerate() {
            lin.import(&format!("{prefix}.layers.{i}"), map)?;
            if let Some(n) = norm {
                n.import(&format!("{prefix}.norms.{i}"), map)?;
            }
        }
        self.head.import(&format!("{prefix}.head"), map)
    }
}
