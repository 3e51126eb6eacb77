//! The MLP of actors and critics: optional input LayerNorm, then per hidden layer Linear ->
//! activation -> optional LayerNorm (on-policy's MLPBase), then a linear head.
//!
//! Internally a linear layer keeps its bias as the last column of one `[out, in + 1]` matrix, so
//! the bias gradient falls out of the matrix product (candle's bias-gradient reduction is slow;
//! CANDLE.md measured 1.4-1.6x on the update). Checkpoints always hold the plain layout,
//! `weight [out, in]` and `bias [out]`, whatever the inside (`backend::layout`).
//!
//! # Shapes
//! `forward`: `[batch, in_dim]` -> `[batch, out_dim]`.

use anyhow::Result;
use candle_core::{DType, Device, Tensor, Var};

use super::tanh::tanh;
use crate::config::Activation;

/// A linear layer with its bias folded into the weight matrix.
#[derive(Debug)]
pub struct Linear {
    /// `[out, in + 1]`: weight columns, then the bias column.
    w: Var,
}

impl Linear {
    /// Zero weights and bias (the backend loads the real ones).
    pub fn zeros(in_dim: usize, out_dim: usize, dev: &Device) -> Result<Self> {
        let w = Var::from_tensor(&Tensor::zeros((out_dim, in_dim + 1), DType::F32, dev)?)?;
        Ok(Self { w })
    }

    /// `x W^T + b`, in `x`'s dtype (the f32 weights cast to bf16 for a bf16 pass).
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let ones = Tensor::ones((x.dim(0)?, 1), x.dtype(), x.device())?;
        let xa = Tensor::cat(&[x, &ones], 1)?; // [B, in + 1]
        let w = self.w.as_tensor().to_dtype(x.dtype())?;
        Ok(xa.matmul(&w.t()?)?)
    }
}

/// LayerNorm over the last dimension with a learned scale and shift (eps 1e-5).
#[derive(Debug)]
pub struct LayerNorm {
    gamma: Var,
    beta: Var,
}

impl LayerNorm {
    /// Scale 1, shift 0.
    pub fn new(dim: usize, dev: &Device) -> Result<Self> {
        Ok(Self {
            gamma: Var::from_tensor(&Tensor::ones(dim, DType::F32, dev)?)?,
            beta: Var::from_tensor(&Tensor::zeros(dim, DType::F32, dev)?)?,
        })
    }

    /// Normalizes each row (in f32 whatever `x`'s dtype, which the result keeps).
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let y = super::layer_norm::layer_norm(
            &x.to_dtype(DType::F32)?,
            self.gamma.as_tensor(),
            self.beta.as_tensor(),
        )?;
        Ok(y.to_dtype(x.dtype())?)
    }
}

/// An MLP (without a head: the stack of activated layers before a GRU).
#[derive(Debug)]
pub struct Mlp {
    input_norm: Option<LayerNorm>,
    hidden: Vec<(Linear, Option<LayerNorm>)>,
    head: Option<Linear>,
    activation: Activation,
}

impl Mlp {
    /// The network's structure with zero weights (the backend loads the real ones, in the
    /// order of [`vars`](Self::vars)).
    pub fn new(
        in_dim: usize,
        hidden: &[usize],
        out_dim: Option<usize>,
        activation: Activation,
        layer_norm: bool,
        dev: &Device,
    ) -> Result<Self> {
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
            layers.push((Linear::zeros(d, h, dev)?, norm));
            d = h;
        }
        let head = match out_dim {
            Some(o) => Some(Linear::zeros(d, o, dev)?),
            None => None,
        };
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
        match &self.head {
            Some(head) => head.forward(&h),
            None => Ok(h),
        }
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
        v.extend(self.head.as_ref().map(|h| h.w.clone()));
        v
    }
}
