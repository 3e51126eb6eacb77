//! A run directory on disk: the files a training run writes and the tools read (checkpoints,
//! metrics, TensorBoard events, the writer's lock, the summary), each written atomically.
//! [`dir::RunDir`] names them all; the other modules read and write one kind each.

pub mod checkpoint;
pub mod dir;
pub mod fsio;
pub mod lock;
pub mod metrics;
pub mod summary;
pub mod tensorboard;

pub use dir::RunDir;
