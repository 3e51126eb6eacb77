//! The MLP of actors and critics: optional input LayerNorm, then per hidden layer Linear ->
//! activation -> optional LayerNorm (on-policy's MLPBase), then a linear head.
//!
//! Internally a linear layer keeps its bias as the last column of one `[out, in + 1]` matrix, so
//! the bias gradient falls out of the matrix product (candle's bias-gradient reduction is slow:
//! 1.4-1.6x on the update, docs/candle.md section 3.1). Checkpoints always hold the plain layout,
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

    /// The `[out, in + 1]` variable.
    pub fn var(&self) -> Var {
        self.w.clone()
    }

    /// `x W^T + b`, in `x`'s dtype (the f32 weights cast to bf16 for a bf16 pass).
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let ones = Tensor::ones((x.dim(0)?, 1), x.dtype(), x.device())?;
        let xa = Tensor::cat(&[x, &ones], 1)?; // [B, in + 1]
        let w = self.w.as_tensor().to_dtype(x.dtype())?;
        Ok(xa.matmul(&w.t()?)?)
    }
}

impl Linear {
    /// [`forward`](Self::forward) of rows that begin with shared states: the state's columns
    /// of the weight once per distinct state (`states [U, dim]`), picked for each row by
    /// `of_row` (`[B]`), plus each row's own columns (`own [B, in - dim]`) and the bias.
    /// Autograd sums the state columns' gradient over the rows sharing a state.
    pub fn forward_shared(&self, states: &Tensor, of_row: &Tensor, own: &Tensor) -> Result<Tensor> {
        let dim = states.dim(1)?;
        let w = self.w.as_tensor().to_dtype(own.dtype())?;
        let w_state = w.narrow(1, 0, dim)?.contiguous()?;
        // The own columns and the bias column.
        let w_own = w.narrow(1, dim, w.dim(1)? - dim)?.contiguous()?;
        let part = states.matmul(&w_state.t()?)?; // [U, out]
        let ones = Tensor::ones((own.dim(0)?, 1), own.dtype(), own.device())?;
        let own = if own.dim(1)? == 0 {
            ones
        } else {
            Tensor::cat(&[own, &ones], 1)?
        };
        Ok((part.index_select(of_row, 0)? + own.matmul(&w_own.t()?)?)?)
    }
}

/// What an [`Mlp`] reads: whole rows, or rows that begin with shared states (see
/// [`Linear::forward_shared`]; not under an input LayerNorm).
#[derive(Debug, Clone, Copy)]
pub enum MlpIn<'a> {
    /// `[B, in]`.
    Rows(&'a Tensor),
    /// The distinct states `[U, dim]`, which one each row begins with `[B]` (u32), and each
    /// row's own columns `[B, in - dim]`.
    Shared {
        /// The distinct states.
        states: &'a Tensor,
        /// Each row's state.
        of_row: &'a Tensor,
        /// Each row's columns after its state.
        own: &'a Tensor,
    },
}

impl MlpIn<'_> {
    /// The first layer `lin` on this input.
    fn first_layer(&self, lin: &Linear) -> Result<Tensor> {
        match *self {
            MlpIn::Rows(x) => lin.forward(x),
            MlpIn::Shared {
                states,
                of_row,
                own,
            } => lin.forward_shared(states, of_row, own),
        }
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
        self.forward_input(MlpIn::Rows(x))
    }

    /// Whether rows that share states can be given as such ([`MlpIn::Shared`]).
    pub fn shares_states(&self) -> bool {
        self.input_norm.is_none()
    }

    /// [`forward`](Self::forward) of rows that may share states.
    pub fn forward_input(&self, x: MlpIn<'_>) -> Result<Tensor> {
        // None: the first layer has yet to read the input.
        let mut h = match (&self.input_norm, x) {
            (Some(n), MlpIn::Rows(x)) => Some(n.forward(x)?),
            (Some(_), MlpIn::Shared { .. }) => {
                anyhow::bail!("rows that share states cannot go through an input LayerNorm")
            }
            (None, _) => None,
        };
        let layer = |lin: &Linear, h: &Option<Tensor>| match h {
            Some(h) => lin.forward(h),
            None => x.first_layer(lin),
        };
        for (lin, norm) in &self.hidden {
            let mut y = layer(lin, &h)?;
            y = match self.activation {
                Activation::Tanh => tanh(&y)?,
                Activation::Relu => y.relu()?,
            };
            if let Some(n) = norm {
                y = n.forward(&y)?;
            }
            h = Some(y);
        }
        match (&self.head, h, x) {
            (Some(head), h, _) => layer(head, &h),
            (None, Some(h), _) => Ok(h),
            (None, None, MlpIn::Rows(x)) => Ok(x.clone()),
            (None, None, MlpIn::Shared { .. }) => anyhow::bail!("an MLP without layers"),
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
