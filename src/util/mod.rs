//! Leaf helpers that several rooms use and that depend on nothing of marl's.

pub mod parallel;
pub mod real;
pub mod signals;
