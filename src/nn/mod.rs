//! Networks: the MLP ([`mlp`]), orthogonal initialization from our seeded generator
//! ([`init`]), the fast CPU tanh ([`tanh`]) and the action distributions ([`dist`]).

pub mod comm;
pub mod cpu_comm;
pub mod cpu_gru;
pub mod cpu_mlp;
pub mod cpu_net;
pub mod dist;
pub mod init;
pub mod layer_norm;
pub mod mlp;
pub mod optim;
pub mod simd;
pub mod tanh;
