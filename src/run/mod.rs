//! A run directory on disk: the files a training run writes and the tools read (checkpoints,
//! metrics, TensorBoard events, the writer's lock), each written atomically.

pub mod checkpoint;
pub mod fsio;
pub mod lock;
pub mod metrics;
pub mod summary;
pub mod tensorboard;
