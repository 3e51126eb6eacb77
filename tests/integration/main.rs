//! marl's integration tests, one binary (one link of the library instead of one per file):
//!
//! | module | what it checks |
//! |---|---|
//! | [`backends`] | the agreement suite: both backends, every network variant, finite differences |
//! | [`train`] | training end to end on each device: resume, stops, metrics, errors |
//! | [`cli`] | the binary's commands and their errors |
//! | [`learning`] | learning reaches stated returns |
//! | [`results`] | eval, compare, plot and render on trained runs |
//! | [`python_bridge`] | environments written in Python, through the bridge |
//! | [`sweep`] | `marl sweep`, locally and on a Slurm cluster |

mod common;

mod backends;
mod cli;
mod learning;
mod python_bridge;
mod results;
mod sweep;
mod train;
