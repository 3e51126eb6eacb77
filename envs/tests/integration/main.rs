//! The environments' integration tests, one binary:
//!
//! | module | what it checks |
//! |---|---|
//! | [`parity`] | every recorded reference episode replays bit for bit |
//! | [`conformance`] | every registered environment keeps the API's contract |
//! | [`foraging`] | Level-Based Foraging's rules and heuristic agents |
//! | [`predator_prey`] | IC3Net's predator-prey: observation, moves, rewards, terminations |
//! | [`reference`] | `simple_reference_v3` without its environment channel |
//! | [`warehouse`] | the warehouse's moves, and no allocation per step |

mod conformance;
mod foraging;
mod parity;
mod predator_prey;
mod reference;
mod warehouse;
