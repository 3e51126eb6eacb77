//! The environments' integration tests, one binary:
//!
//! | module | what it checks |
//! |---|---|
//! | [`parity`] | every recorded reference episode replays bit for bit |
//! | [`conformance`] | every registered environment keeps the API's contract |
//! | [`foraging`] | Level-Based Foraging's rules and heuristic agents |
//! | [`warehouse`] | the warehouse's moves, and no allocation per step |

mod conformance;
mod foraging;
mod parity;
mod warehouse;
