//! The message layers of [`super::comm`] by hand on the CPU: each linear layer a one-layer
//! [`CpuMlp`] (so its products and packing are the MLP's), the aggregation over each channel's
//! members in plain loops, and the backward pass through both, so that a receiver's loss
//! reaches its senders' layers. Buffers are kept between calls: nothing is allocated once the
//! first batch of a size has run.

use rand_chacha::ChaCha8Rng;

use super::comm::{softmax_heard, Channels, CommLayers, MessageMode};
use super::cpu_mlp::CpuMlp;
use super::init::orthogonal;
use crate::config::CommKind;

/// The message layers of one group, with the activations of the last forward.
#[derive(Debug, Clone)]
pub struct CpuComm {
    layers: CommLayers,
    /// Per linear layer (parameter order): the network and where its parameters start.
    nets: Vec<CpuMlp>,
    offsets: Vec<usize>,
    /// Where the gates start (one `[width]` per round).
    gates_at: usize,
    param_count: usize,
    /// Hidden states before each round and after the last, `[rounds + 1][rows, width]`.
    hidden: Vec<Vec<f32>>,
    /// Each round's received aggregates (the update's input), `[rounds][rows, dim]`.
    update_in: Vec<Vec<f32>>,
    /// Attention weights per round, `[rounds][channels, members, members]`.
    alpha: Vec<Vec<f32>>,
    /// Aggregates received in a shuffled pass, before they move channel.
    shuffled: Vec<f32>,
    scores: Vec<f32>,
    // Gradients of the backward pass.
    d_hidden: Vec<f32>,
    d_update_in: Vec<f32>,
    d_send: [Vec<f32>; 3],
    d_x: Vec<f32>,
    rows: usize,
}

impl CpuComm {
    /// The layers of `layers`.
    pub fn new(layers: &CommLayers) -> Self {
        let mut offsets = Vec::new();
        let mut at = 0;
        let nets = layers
            .linears()
            .iter()
            .map(|l| {
                offsets.push(at);
                at += l.len();
                CpuMlp::new(&[l.inp, l.out], false, false, l.tanh)
            })
            .collect();
        Self {
            layers: layers.clone(),
            nets,
            offsets,
            gates_at: at,
            param_count: at + layers.rounds * layers.width,
            hidden: vec![Vec::new(); layers.rounds + 1],
            update_in: vec![Vec::new(); layers.rounds],
            alpha: vec![Vec::new(); layers.rounds],
            shuffled: Vec::new(),
            scores: Vec::new(),
            d_hidden: Vec::new(),
            d_update_in: Vec::new(),
            d_send: [Vec::new(), Vec::new(), Vec::new()],
            d_x: Vec::new(),
            rows: 0,
        }
    }

    /// Parameters of the message layers.
    pub fn param_count(&self) -> usize {
        self.param_count
    }

    /// The output width (the hidden state).
    pub fn width(&self) -> usize {
        self.layers.width
    }

    /// The last forward's output, `[rows, width]`.
    pub fn output(&self) -> &[f32] {
        &self.hidden[self.layers.rounds]
    }

    /// Initial parameters, drawn layer by layer from `rng`: orthogonal weights, zero biases;
    /// the encoder with tanh's gain 5/3, the senders with 1, the updates with 0.1, so that the
    /// first messages nudge the hidden state rather than drown it.
    pub fn init(&self, rng: &mut ChaCha8Rng, out: &mut [f32]) {
        for (i, (l, &at)) in self.layers.linears().iter().zip(&self.offsets).enumerate() {
            let gain = match (i, l.tanh) {
                (0, _) => 5.0 / 3.0,
                (_, true) => 0.1,
                (_, false) => 1.0,
            };
            let (w, b) = out[at..at + l.len()].split_at_mut(l.out * l.inp);
            w.copy_from_slice(&orthogonal(l.out, l.inp, gain, rng));
            b.fill(0.0);
        }
        out[self.gates_at..].fill(0.0);
    }

    /// Round `r`'s gate.
    fn gate(&self, r: usize) -> std::ops::Range<usize> {
        let w = self.layers.width;
        self.gates_at + r * w..self.gates_at + (r + 1) * w
    }

    /// Index of round `r`'s first sender and its update in `nets`.
    fn round(&self, r: usize) -> (usize, usize) {
        let per = self.layers.senders() + 1;
        (1 + r * per, 1 + r * per + self.layers.senders())
    }

    /// Runs layer `i` forward on `x` (`rows` rows).
    fn run(&mut self, i: usize, params: &[f32], x: &[f32], rows: usize, version: Option<u64>) {
        let p = &params[self.offsets[i]..self.offsets[i] + self.nets[i].param_count()];
        self.nets[i].forward_versioned(p, super::cpu_mlp::MlpInput::Rows(x), rows, version);
    }

    /// The final hidden state of every row, `[rows, width]`, for host rows `x` `[rows,
    /// in_dim]` exchanging messages over `channels`; receivers get what `mode` says.
    /// `version`: as [`CpuMlp::forward_versioned`].
    pub fn forward(
        &mut self,
        params: &[f32],
        x: &[f32],
        rows: usize,
        channels: &Channels<'_>,
        mode: MessageMode,
        version: Option<u64>,
    ) -> &[f32] {
        assert_eq!(params.len(), self.param_count);
        let c = self.layers.dim;
        self.rows = rows;
        self.run(0, params, x, rows, version);
        let mut h0 = std::mem::take(&mut self.hidden[0]);
        h0.clear();
        h0.extend_from_slice(self.nets[0].output());
        self.hidden[0] = h0;
        for r in 0..self.layers.rounds {
            let (first, update) = self.round(r);
            let hr = std::mem::take(&mut self.hidden[r]);
            for s in 0..self.layers.senders() {
                self.run(first + s, params, &hr, rows, version);
            }
            let mut upd = std::mem::take(&mut self.update_in[r]);
            upd.clear();
            upd.resize(rows * c, 0.0);
            self.receive(r, channels, &mut upd);
            match mode {
                MessageMode::Sent => {}
                MessageMode::Zero => upd.fill(0.0),
                MessageMode::Shuffle => self.shuffle(channels, &mut upd),
            }
            self.run(update, params, &upd, rows, version);
            let mut next = std::mem::take(&mut self.hidden[r + 1]);
            next.clear();
            let gate = &params[self.gate(r)];
            let u = self.nets[update].output();
            for (h_row, u_row) in hr.chunks_exact(gate.len()).zip(u.chunks_exact(gate.len())) {
                next.extend(
                    h_row
                        .iter()
                        .zip(u_row)
                        .zip(gate)
                        .map(|((h, u), g)| h + g * u),
                );
            }
            self.hidden[r + 1] = next;
            self.hidden[r] = hr;
            self.update_in[r] = upd;
        }
        &self.hidden[self.layers.rounds]
    }

    /// Writes each row's received aggregate of round `r` into `upd` (`[rows, dim]`, zeros
    /// where a row hears nobody).
    fn receive(&mut self, r: usize, ch: &Channels<'_>, upd: &mut [f32]) {
        let (c, n) = (self.layers.dim, ch.n_members);
        let (first, _) = self.round(r);
        match self.layers.kind {
            CommKind::Mean => {
                let msg = self.nets[first].output();
                for ci in 0..ch.len() {
                    let Some(scale) = ch.mean_weight(ci) else {
                        continue;
                    };
                    let members = ch.of(ci);
                    for (a, &ra) in members.iter().enumerate() {
                        if !ch.is_live(ra) {
                            continue;
                        }
                        let dst = &mut upd[ra as usize * c..(ra as usize + 1) * c];
                        for (b, &rb) in members.iter().enumerate() {
                            if b == a || !ch.is_live(rb) {
                                continue;
                            }
                            let m = &msg[rb as usize * c..(rb as usize + 1) * c];
                            for (d, &v) in dst.iter_mut().zip(m) {
                                *d += v;
                            }
                        }
                        for d in dst.iter_mut() {
                            *d *= scale;
                        }
                    }
                }
            }
            CommKind::Attention => {
                let k = self.layers.key_dim;
                let inv = 1.0 / (k as f32).sqrt();
                let mut alpha = std::mem::take(&mut self.alpha[r]);
                alpha.clear();
                alpha.resize(ch.len() * n * n, 0.0);
                self.scores.resize(n, 0.0);
                let (q, kk, v) = (
                    self.nets[first].output(),
                    self.nets[first + 1].output(),
                    self.nets[first + 2].output(),
                );
                for ci in 0..ch.len() {
                    let members = ch.of(ci);
                    for (a, &ra) in members.iter().enumerate() {
                        if !ch.is_live(ra) {
                            continue;
                        }
                        let qa = &q[ra as usize * k..(ra as usize + 1) * k];
                        for (b, &rb) in members.iter().enumerate() {
                            let kb = &kk[rb as usize * k..(rb as usize + 1) * k];
                            let dot: f32 = qa.iter().zip(kb).map(|(x, y)| x * y).sum();
                            self.scores[b] = dot * inv;
                        }
                        let heard = |b: usize| b != a && ch.is_live(members[b]);
                        let al = &mut alpha[(ci * n + a) * n..(ci * n + a + 1) * n];
                        if !softmax_heard(&self.scores, heard, al) {
                            continue;
                        }
                        let dst = &mut upd[ra as usize * c..(ra as usize + 1) * c];
                        for (b, &rb) in members.iter().enumerate() {
                            if !heard(b) {
                                continue;
                            }
                            let vb = &v[rb as usize * c..(rb as usize + 1) * c];
                            for (d, &x) in dst.iter_mut().zip(vb) {
                                *d += al[b] * x;
                            }
                        }
                    }
                }
                self.alpha[r] = alpha;
            }
        }
    }

    /// Moves every received aggregate to the same member of the previous channel: each
    /// receiver hears what its counterpart in the next environment heard.
    fn shuffle(&mut self, ch: &Channels<'_>, upd: &mut [f32]) {
        let (c, n) = (self.layers.dim, ch.n_members);
        let n_ch = ch.len();
        if n_ch < 2 {
            return;
        }
        self.shuffled.resize(n_ch * n * c, 0.0);
        for ci in 0..n_ch {
            for (a, &ra) in ch.of(ci).iter().enumerate() {
                let src = &upd[ra as usize * c..(ra as usize + 1) * c];
                self.shuffled[(ci * n + a) * c..(ci * n + a + 1) * c].copy_from_slice(src);
            }
        }
        for ci in 0..n_ch {
            let from = (ci + 1) % n_ch;
            for (a, &ra) in ch.of(ci).iter().enumerate() {
                let src = &self.shuffled[(from * n + a) * c..(from * n + a + 1) * c];
                upd[ra as usize * c..(ra as usize + 1) * c].copy_from_slice(src);
            }
        }
    }

    /// Adds the parameters' gradients for `d_out` (the loss's gradient w.r.t. the last
    /// forward's output, `[rows, width]`, with messages as sent) into `grads`.
    pub fn backward(
        &mut self,
        params: &[f32],
        grads: &mut [f32],
        x: &[f32],
        ch: &Channels<'_>,
        d_out: &[f32],
    ) {
        let (c, n) = (self.layers.dim, ch.n_members);
        let rows = self.rows;
        let mut dh = std::mem::take(&mut self.d_hidden);
        dh.clear();
        dh.extend_from_slice(d_out);
        let mut d_upd = std::mem::take(&mut self.d_update_in);
        for r in (0..self.layers.rounds).rev() {
            let (first, update) = self.round(r);
            // h_{r+1} = h_r + g ⊙ tanh(W_u c_r + b_u): h_r gets dh as it is, the gate
            // dh ⊙ u, and c_r dh ⊙ g through the update.
            let (gate, width) = (self.gate(r), self.layers.width);
            let mut du = std::mem::take(&mut self.d_x);
            du.resize(dh.len(), 0.0);
            {
                let u = self.nets[update].output();
                let g = &params[gate.clone()];
                let dg = &mut grads[gate];
                for ((dh_row, u_row), du_row) in dh
                    .chunks_exact(width)
                    .zip(u.chunks_exact(width))
                    .zip(du.chunks_exact_mut(width))
                {
                    for (((dg, du), (&d, &u)), &g) in dg
                        .iter_mut()
                        .zip(du_row.iter_mut())
                        .zip(dh_row.iter().zip(u_row))
                        .zip(g)
                    {
                        *dg += d * u;
                        *du = d * g;
                    }
                }
            }
            self.back(update, params, grads, r, false, &du, Some(&mut d_upd));
            self.d_x = du;
            // Each receiver's gradient goes back to what its senders sent.
            let mut d_send = std::mem::take(&mut self.d_send);
            match self.layers.kind {
                CommKind::Mean => {
                    let dm = &mut d_send[0];
                    dm.clear();
                    dm.resize(rows * c, 0.0);
                    for ci in 0..ch.len() {
                        let Some(scale) = ch.mean_weight(ci) else {
                            continue;
                        };
                        let members = ch.of(ci);
                        for (a, &ra) in members.iter().enumerate() {
                            if !ch.is_live(ra) {
                                continue;
                            }
                            let dc = &d_upd[ra as usize * c..(ra as usize + 1) * c];
                            for (b, &rb) in members.iter().enumerate() {
                                if b == a || !ch.is_live(rb) {
                                    continue;
                                }
                                let dst = &mut dm[rb as usize * c..(rb as usize + 1) * c];
                                for (d, &g) in dst.iter_mut().zip(dc) {
                                    *d += g * scale;
                                }
                            }
                        }
                    }
                }
                CommKind::Attention => {
                    let k = self.layers.key_dim;
                    let inv = 1.0 / (k as f32).sqrt();
                    let [dq, dk, dv] = &mut d_send;
                    for (d, width) in [(&mut *dq, k), (&mut *dk, k), (&mut *dv, c)] {
                        d.clear();
                        d.resize(rows * width, 0.0);
                    }
                    let (q, kk, v) = (
                        self.nets[first].output(),
                        self.nets[first + 1].output(),
                        self.nets[first + 2].output(),
                    );
                    let alpha = &self.alpha[r];
                    let d_alpha = &mut self.scores;
                    d_alpha.resize(n, 0.0);
                    for ci in 0..ch.len() {
                        let members = ch.of(ci);
                        for (a, &ra) in members.iter().enumerate() {
                            if !ch.is_live(ra) {
                                continue;
                            }
                            let al = &alpha[(ci * n + a) * n..(ci * n + a + 1) * n];
                            let dc = &d_upd[ra as usize * c..(ra as usize + 1) * c];
                            // d alpha_b = dc . v_b; d score_b = alpha_b (d alpha_b - sum).
                            let mut weighted = 0.0f32;
                            for (b, &rb) in members.iter().enumerate() {
                                if al[b] == 0.0 {
                                    continue;
                                }
                                let vb = &v[rb as usize * c..(rb as usize + 1) * c];
                                let da: f32 = dc.iter().zip(vb).map(|(x, y)| x * y).sum();
                                d_alpha[b] = da;
                                weighted += al[b] * da;
                                let dvb = &mut dv[rb as usize * c..(rb as usize + 1) * c];
                                for (d, &g) in dvb.iter_mut().zip(dc) {
                                    *d += al[b] * g;
                                }
                            }
                            for (b, &rb) in members.iter().enumerate() {
                                if al[b] == 0.0 {
                                    continue;
                                }
                                let ds = al[b] * (d_alpha[b] - weighted) * inv;
                                let (qa, kb) = (ra as usize * k, rb as usize * k);
                                for j in 0..k {
                                    dq[qa + j] += ds * kk[kb + j];
                                    dk[kb + j] += ds * q[qa + j];
                                }
                            }
                        }
                    }
                }
            }
            for s in 0..self.layers.senders() {
                let mut dx = std::mem::take(&mut self.d_x);
                let ds = std::mem::take(&mut d_send[s]);
                self.back(first + s, params, grads, r, true, &ds, Some(&mut dx));
                for (a, b) in dh.iter_mut().zip(&dx) {
                    *a += b;
                }
                d_send[s] = ds;
                self.d_x = dx;
            }
            self.d_send = d_send;
        }
        let p0 = self.offsets[0]..self.offsets[0] + self.nets[0].param_count();
        self.nets[0].backward(&params[p0.clone()], &mut grads[p0], x, &dh, None);
        self.d_hidden = dh;
        self.d_update_in = d_upd;
    }

    /// The backward of layer `i` of round `r`: a sender (`sender`) reads `h_r`, the update
    /// `c_r`.
    #[allow(clippy::too_many_arguments)]
    fn back(
        &mut self,
        i: usize,
        params: &[f32],
        grads: &mut [f32],
        r: usize,
        sender: bool,
        d_out: &[f32],
        dx: Option<&mut Vec<f32>>,
    ) {
        let Self {
            nets,
            offsets,
            hidden,
            update_in,
            ..
        } = self;
        let range = offsets[i]..offsets[i] + nets[i].param_count();
        let input = if sender { &hidden[r] } else { &update_in[r] };
        nets[i].backward(&params[range.clone()], &mut grads[range], input, d_out, dx);
    }
}
