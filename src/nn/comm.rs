//! Learned communication between the actors of a channel within one step, written once for
//! both backends: who hears whom ([`Channels`]), what a receiver is given ([`MessageMode`]),
//! and where each message layer's parameters live in a group's flat vector ([`CommLayers`]).
//!
//! | stage | what each agent `i` of a channel computes | shape |
//! |---|---|---|
//! | encode | `h = tanh(W_e x_i + b_e)` from its host row | `[width]` |
//! | send (mean, CommNet) | `m_i = W_m h_i + b_m` | `[dim]` |
//! | send (attention, TarMAC) | `q_i = W_q h_i + b_q`, `k_i = W_k h_i + b_k`, `v_i = W_v h_i + b_v` | `[key]`, `[key]`, `[dim]` |
//! | receive (mean) | `c_i = mean_{j != i, live} m_j` | `[dim]` |
//! | receive (attention) | `c_i = sum_j softmax_j(q_i . k_j / sqrt(key)) v_j` over `j != i`, live | `[dim]` |
//! | update | `h_i += g ⊙ tanh(W_u c_i + b_u)`, a learned gate `g` per round starting at 0 | `[width]` |
//!
//! The encoder is the actor's first hidden layer (`network.hidden[0]` wide); send, receive and
//! update repeat for each round with layers of their own; the rest of the actor's network (its
//! other hidden layers, a GRU, the head) then reads `h_i`. The update is residual and reads the
//! aggregate only, so that a round costs two `width x dim` products per agent: CommNet's
//! `tanh(H h + C c)` would triple it, and the residual path already carries `h`. The gate
//! starts closed, so a communicating actor starts as the same actor without messages and opens
//! the channel as far as the messages help (with it open from the start, simple_spread learned
//! 1.5 per agent worse at 1M steps). An agent that is not live (done before its
//! environment's episode ended) neither sends nor receives (`c_i = 0`), as does an agent
//! alone in its channel. Sums over senders run in member order, so a row's numbers do not
//! depend on which other channels share its batch: acting and training agree to the bit.

use crate::config::CommKind;

/// The channels of a batch of rows: `members[c * n_members + k]` is the row of member `k`
/// of channel `c` (the agents of one group in one environment and step); every row is in
/// exactly one channel.
#[derive(Debug, Clone, Copy)]
pub struct Channels<'a> {
    /// Rows of each channel's members, `[channels, n_members]`.
    pub members: &'a [u32],
    /// Members per channel (the group's agents).
    pub n_members: usize,
    /// 1 where the row's agent is live (still in its episode), `[rows]`.
    pub live: &'a [f32],
}

impl Channels<'_> {
    /// Number of channels.
    pub fn len(&self) -> usize {
        self.members.len() / self.n_members.max(1)
    }

    /// Whether there are no channels.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// The rows of channel `c`.
    pub fn of(&self, c: usize) -> &[u32] {
        &self.members[c * self.n_members..(c + 1) * self.n_members]
    }

    /// Whether `row` sends and receives.
    pub fn is_live(&self, row: u32) -> bool {
        self.live.get(row as usize).is_none_or(|&l| l > 0.0)
    }

    /// The weight of each heard message in the mean a live member of channel `c` receives:
    /// `1 / (live members - 1)`, or None when fewer than two members are live (nobody hears
    /// anybody).
    pub fn mean_weight(&self, c: usize) -> Option<f32> {
        let live = self.of(c).iter().filter(|&&m| self.is_live(m)).count();
        (live >= 2).then(|| 1.0 / (live - 1) as f32)
    }
}

/// The member table of one step's rows, agent-major (`row = k * n_envs + e`): channel `e`
/// holds the group's agents in environment `e`.
pub fn step_members(n_envs: usize, n_agents: usize, out: &mut Vec<u32>) {
    out.clear();
    for e in 0..n_envs {
        out.extend((0..n_agents).map(|k| (k * n_envs + e) as u32));
    }
}

impl MessageMode {
    /// The name `--messages` takes.
    pub fn name(self) -> &'static str {
        match self {
            MessageMode::Sent => "sent",
            MessageMode::Zero => "zero",
            MessageMode::Shuffle => "shuffle",
        }
    }
}

impl std::str::FromStr for MessageMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "sent" => Ok(MessageMode::Sent),
            "zero" => Ok(MessageMode::Zero),
            "shuffle" => Ok(MessageMode::Shuffle),
            _ => Err(format!("`{s}`: expected sent, zero or shuffle")),
        }
    }
}

/// What receivers are given when acting (`marl eval --messages`): the messages as sent, zeros,
/// or the aggregate another environment's agent of the same place received (the channel
/// after it in the batch). Training always uses the messages as sent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum MessageMode {
    /// The messages the others sent.
    #[default]
    Sent,
    /// Zeros instead of every received aggregate.
    Zero,
    /// Each receiver gets what its counterpart in the next channel received.
    Shuffle,
}

/// Where the message layers' parameters lie in their range of the flat vector: the encoder,
/// then per round its senders (mean: the message; attention: query, key, value) and its
/// update, each a linear layer stored as `weight [out, in]` then `bias [out]`; then each
/// round's gate `[width]`.
#[derive(Debug, Clone, PartialEq)]
pub struct CommLayers {
    /// Host row width.
    pub in_dim: usize,
    /// Hidden state width.
    pub width: usize,
    /// Message size.
    pub dim: usize,
    /// Query and key size (attention; 0 for mean).
    pub key_dim: usize,
    /// Rounds.
    pub rounds: usize,
    /// Mean or attention.
    pub kind: CommKind,
}

/// One linear layer of the message layers: its name (after `{prefix}.comm.`), output and
/// input widths, and whether tanh follows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommLinear {
    /// `encoder`, `rounds.{r}.message`, `rounds.{r}.query`, ..., `rounds.{r}.update`.
    pub name: String,
    /// Output width.
    pub out: usize,
    /// Input width.
    pub inp: usize,
    /// tanh after the layer (encoder and updates).
    pub tanh: bool,
}

impl CommLinear {
    /// Parameters of the layer.
    pub fn len(&self) -> usize {
        self.out * self.inp + self.out
    }

    /// Whether the layer has no parameters.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl CommLayers {
    /// The layers in parameter order.
    pub fn linears(&self) -> Vec<CommLinear> {
        let lin = |name: String, out, inp, tanh| CommLinear {
            name,
            out,
            inp,
            tanh,
        };
        let (h, c, k) = (self.width, self.dim, self.key_dim);
        let mut v = vec![lin("encoder".into(), h, self.in_dim, true)];
        for r in 0..self.rounds {
            match self.kind {
                CommKind::Mean => v.push(lin(format!("rounds.{r}.message"), c, h, false)),
                CommKind::Attention => {
                    v.push(lin(format!("rounds.{r}.query"), k, h, false));
                    v.push(lin(format!("rounds.{r}.key"), k, h, false));
                    v.push(lin(format!("rounds.{r}.value"), c, h, false));
                }
            }
            v.push(lin(format!("rounds.{r}.update"), h, c, true));
        }
        v
    }

    /// Senders per round (1 for mean, 3 for attention).
    pub fn senders(&self) -> usize {
        match self.kind {
            CommKind::Mean => 1,
            CommKind::Attention => 3,
        }
    }

    /// The gates, one `[width]` vector per round, stored after every linear layer.
    pub fn gates(&self) -> Vec<String> {
        (0..self.rounds)
            .map(|r| format!("rounds.{r}.gate"))
            .collect()
    }

    /// Parameters of all the message layers.
    pub fn param_count(&self) -> usize {
        self.linears().iter().map(CommLinear::len).sum::<usize>() + self.rounds * self.width
    }
}

/// Each live receiver's softmax weights over the others of its channel: `scores` holds
/// `q_a . k_b / sqrt(key)` for `b` in `0..n` (entries of senders that are not heard are
/// ignored); writes the weights into `alpha` (0 for those not heard). Returns false when
/// nobody is heard.
pub fn softmax_heard(scores: &[f32], heard: impl Fn(usize) -> bool, alpha: &mut [f32]) -> bool {
    let mut max = f32::NEG_INFINITY;
    for (b, &s) in scores.iter().enumerate() {
        if heard(b) && s > max {
            max = s;
        }
    }
    if max == f32::NEG_INFINITY {
        alpha.fill(0.0);
        return false;
    }
    let mut sum = 0.0f32;
    for (b, (a, &s)) in alpha.iter_mut().zip(scores).enumerate() {
        *a = if heard(b) { (s - max).exp() } else { 0.0 };
        sum += *a;
    }
    for a in alpha.iter_mut() {
        *a /= sum;
    }
    true
}
