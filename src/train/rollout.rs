//! The environments of a run, stepped inline or by crossbeam worker threads.
//!
//! Worker `k` owns a contiguous shard of the environments as its own `VecEnv` (environment `i`
//! is seeded from `(seed, i)` whatever the shard), so the numbers are the same for any number
//! of workers. Per step the trainer hands each worker its slice of the actions and gets back
//! its slice of the results through two bounded channels; the buffers travel back and forth,
//! so nothing is allocated per step. `num_workers = 0` steps the shards on the calling thread.
//!
//! The results are the envs crate's [`VecStep`], which a `VecEnv` writes at
//! the rows its caller names: an inline shard writes its rows of the pool's data directly; a
//! worker writes its own buffer (the pool's cannot be lent to another thread), which
//! [`VecStep::copy_rows_from`] puts in place, the one copy per step.

use std::thread::JoinHandle;

use anyhow::{anyhow, Context, Result};
use crossbeam_channel::{bounded, Receiver, Sender};
use marl_envs::{registry, EnvSpec, VecEnv, VecStep};

enum Command {
    Reset(u64, Box<VecStep>),
    Step(Vec<f32>, Box<VecStep>),
    Snapshot,
    Restore(Vec<u8>, Box<VecStep>),
}

enum Reply {
    Data(Vec<f32>, Box<VecStep>),
    Snapshot(Vec<u8>),
    Failed(String),
}

struct Worker {
    tx: Sender<Command>,
    rx: Receiver<Reply>,
    handle: Option<JoinHandle<()>>,
    first: usize,
    n: usize,
    actions: Vec<f32>,
    data: Option<Box<VecStep>>,
}

enum Shards {
    /// Each shard with the index of its first environment; results go straight into the
    /// pool's data.
    Inline(Vec<(usize, VecEnv)>),
    Threads(Vec<Worker>),
}

/// The run's environments.
pub struct EnvPool {
    spec: EnvSpec,
    metric_names: &'static [&'static str],
    shards: Shards,
    /// The latest step's data for all environments.
    pub data: VecStep,
    n_envs: usize,
}

fn make_shard(id: &str, params: &toml::Table, first: usize, n: usize) -> Result<VecEnv> {
    if id == marl_envs::python::ID {
        // One Python process serves the whole shard.
        let envs = marl_envs::python::make_envs(params, n)?
            .into_iter()
            .map(|e| Box::new(e) as Box<dyn marl_envs::MultiAgentEnv>)
            .collect();
        return Ok(VecEnv::new(envs, first as u64)?);
    }
    Ok(VecEnv::from_fn(n, first as u64, || {
        registry::make(id, params)
    })?)
}

impl EnvPool {
    /// `n_envs` environments split among `num_workers` threads (0: inline).
    pub fn new(id: &str, params: &toml::Table, n_envs: usize, num_workers: usize) -> Result<Self> {
        let probe = registry::make(id, params)?;
        let spec = probe.spec().clone();
        let metric_names = probe.metric_names();
        let parts = num_workers.clamp(1, n_envs.max(1));
        let bounds: Vec<(usize, usize)> = (0..parts)
            .map(|k| {
                (
                    k * n_envs / parts,
                    (k + 1) * n_envs / parts - k * n_envs / parts,
                )
            })
            .collect();
        let shards = if num_workers == 0 {
            let mut v = Vec::new();
            for &(first, n) in &bounds {
                v.push((first, make_shard(id, params, first, n)?));
            }
            Shards::Inline(v)
        } else {
            let mut workers = Vec::new();
            for (k, &(first, n)) in bounds.iter().enumerate() {
                // Build the shard before spawning, so construction errors surface here.
                let mut venv = make_shard(id, params, first, n)?;
                let (tx, crx) = bounded::<Command>(1);
                let (ctx, rx) = bounded::<Reply>(1);
                let handle = std::thread::Builder::new()
                    .name(format!("env-worker-{k}"))
                    .spawn(move || worker_loop(&mut venv, &crx, &ctx))
                    .context("cannot spawn an environment worker")?;
                workers.push(Worker {
                    tx,
                    rx,
                    handle: Some(handle),
                    first,
                    n,
                    actions: vec![0.0; n * spec.action_len()],
                    data: Some(Box::new(VecStep::new(n, &spec, metric_names.len()))),
                });
            }
            Shards::Threads(workers)
        };
        let data = VecStep::new(n_envs, &spec, metric_names.len());
        Ok(Self {
            spec,
            metric_names,
            shards,
            data,
            n_envs,
        })
    }

    /// A pool of no environments, for a learner that only acts in pools it is given
    /// (`marl eval`'s): it starts nothing, and stepping or collecting with it is a bug.
    pub fn detached(spec: &EnvSpec) -> Self {
        Self {
            spec: spec.clone(),
            metric_names: &[],
            shards: Shards::Inline(Vec::new()),
            data: VecStep::new(0, spec, 0),
            n_envs: 0,
        }
    }

    /// The environments' spec.
    pub fn spec(&self) -> &EnvSpec {
        &self.spec
    }

    /// Names of the task figures in `data.final_metrics`.
    pub fn metric_names(&self) -> &'static [&'static str] {
        self.metric_names
    }

    /// Number of environments.
    pub fn len(&self) -> usize {
        self.n_envs
    }

    /// Whether the pool is empty (only a [`detached`](Self::detached) one).
    pub fn is_empty(&self) -> bool {
        self.n_envs == 0
    }

    /// Resets every environment from the master seed.
    pub fn reset(&mut self, seed: u64) -> Result<()> {
        match &mut self.shards {
            Shards::Inline(v) => {
                for (first, venv) in v.iter_mut() {
                    venv.reset(seed, &mut self.data, *first);
                }
            }
            Shards::Threads(ws) => {
                for w in ws.iter_mut() {
                    let d = w.data.take().context("worker buffer in flight")?;
                    w.tx.send(Command::Reset(seed, d))
                        .map_err(|_| anyhow!("environment worker stopped"))?;
                }
                Self::collect(ws, &mut self.data)?;
            }
        }
        Ok(())
    }

    /// Steps every environment with `actions` (`[n_envs, action_len]`).
    pub fn step(&mut self, actions: &[f32]) -> Result<()> {
        let w = self.spec.action_len();
        match &mut self.shards {
            Shards::Inline(v) => {
                for (first, venv) in v.iter_mut() {
                    let a = &actions[*first * w..(*first + venv.len()) * w];
                    venv.step(a, &mut self.data, *first)?;
                }
            }
            Shards::Threads(ws) => {
                for wk in ws.iter_mut() {
                    let mut a = std::mem::take(&mut wk.actions);
                    a.copy_from_slice(&actions[wk.first * w..(wk.first + wk.n) * w]);
                    let d = wk.data.take().context("worker buffer in flight")?;
                    wk.tx
                        .send(Command::Step(a, d))
                        .map_err(|_| anyhow!("environment worker stopped"))?;
                }
                Self::collect(ws, &mut self.data)?;
            }
        }
        Ok(())
    }

    fn collect(ws: &mut [Worker], all: &mut VecStep) -> Result<()> {
        let mut failure = None;
        for wk in ws.iter_mut() {
            match wk.rx.recv() {
                Ok(Reply::Data(a, d)) => {
                    all.copy_rows_from(wk.first, &d);
                    // Resets and restores send no action buffer back: keep ours.
                    if !a.is_empty() {
                        wk.actions = a;
                    }
                    wk.data = Some(d);
                }
                Ok(Reply::Failed(e)) => failure = Some(anyhow!("environment worker: {e}")),
                Ok(Reply::Snapshot(_)) => failure = Some(anyhow!("unexpected snapshot reply")),
                Err(_) => failure = Some(anyhow!("an environment worker died")),
            }
        }
        failure.map_or(Ok(()), Err)
    }

    /// Every environment's state, per shard, for exact resume.
    pub fn snapshot(&mut self) -> Result<Vec<Vec<u8>>> {
        match &mut self.shards {
            Shards::Inline(v) => Ok(v.iter().map(|(_, venv)| venv.snapshot()).collect()),
            Shards::Threads(ws) => {
                let mut out = Vec::new();
                for wk in ws.iter_mut() {
                    wk.tx
                        .send(Command::Snapshot)
                        .map_err(|_| anyhow!("environment worker stopped"))?;
                    match wk.rx.recv() {
                        Ok(Reply::Snapshot(s)) => out.push(s),
                        _ => return Err(anyhow!("environment worker failed to snapshot")),
                    }
                }
                Ok(out)
            }
        }
    }

    /// Restores [`snapshot`](Self::snapshot) (the same number of environments and workers).
    pub fn restore(&mut self, shards: &[Vec<u8>]) -> Result<()> {
        match &mut self.shards {
            Shards::Inline(v) => {
                anyhow::ensure!(
                    v.len() == shards.len(),
                    "snapshot has {} shards, the pool {}",
                    shards.len(),
                    v.len()
                );
                for ((first, venv), s) in v.iter_mut().zip(shards) {
                    venv.restore(s, &mut self.data, *first)?;
                }
            }
            Shards::Threads(ws) => {
                anyhow::ensure!(
                    ws.len() == shards.len(),
                    "snapshot has {} shards, the pool {}",
                    shards.len(),
                    ws.len()
                );
                for (wk, s) in ws.iter_mut().zip(shards) {
                    let d = wk.data.take().context("worker buffer in flight")?;
                    wk.tx
                        .send(Command::Restore(s.clone(), d))
                        .map_err(|_| anyhow!("environment worker stopped"))?;
                }
                Self::collect(ws, &mut self.data)?;
            }
        }
        Ok(())
    }
}

fn worker_loop(venv: &mut VecEnv, rx: &Receiver<Command>, tx: &Sender<Reply>) {
    while let Ok(cmd) = rx.recv() {
        let reply = match cmd {
            Command::Reset(seed, mut d) => {
                venv.reset(seed, &mut d, 0);
                Reply::Data(Vec::new(), d)
            }
            Command::Step(actions, mut d) => match venv.step(&actions, &mut d, 0) {
                Ok(()) => Reply::Data(actions, d),
                Err(e) => Reply::Failed(e.to_string()),
            },
            Command::Snapshot => Reply::Snapshot(venv.snapshot()),
            Command::Restore(s, mut d) => match venv.restore(&s, &mut d, 0) {
                Ok(()) => Reply::Data(Vec::new(), d),
                Err(e) => Reply::Failed(e.to_string()),
            },
        };
        if tx.send(reply).is_err() {
            break;
        }
    }
}

impl Drop for EnvPool {
    fn drop(&mut self) {
        if let Shards::Threads(ws) = &mut self.shards {
            for wk in ws.iter_mut() {
                // Closing the command channel ends the worker's loop.
                let (dead_tx, _) = bounded(1);
                drop(std::mem::replace(&mut wk.tx, dead_tx));
                if let Some(h) = wk.handle.take() {
                    let _ = h.join();
                }
            }
        }
    }
}
