//! The Multi-Agent Particle Environments, exact ports of mpe2 1.1.1 (PettingZoo MPE v3
//! semantics): one physics core ([`core`]), the env wrapper ([`env`](mod@env)) and one file per scenario,
//! each opening with its spec table.

pub mod adversary;
pub mod core;
pub mod env;
pub mod numpy_exp;
pub mod reference;
pub mod speaker_listener;
pub mod spread;
pub mod tag;

pub use env::{ParticleEnv, Scenario};

use crate::error::EnvError;
use adversary::{Adversary, AdversaryParams};
use reference::{Reference, ReferenceParams};
use speaker_listener::{SpeakerListener, SpeakerListenerParams};
use spread::{Spread, SpreadParams};
use tag::{Tag, TagParams};

fn check_cycles(id: &str, max_cycles: usize) -> Result<(), EnvError> {
    if max_cycles == 0 {
        return Err(EnvError::invalid_params(
            id,
            "`max_cycles` must be at least 1",
        ));
    }
    Ok(())
}

fn check_ratio(id: &str, local_ratio: f64) -> Result<(), EnvError> {
    if !(0.0..=1.0).contains(&local_ratio) {
        return Err(EnvError::invalid_params(
            id,
            format!("`local_ratio` must be in [0, 1], got {local_ratio}"),
        ));
    }
    Ok(())
}

/// Id of the spread scenario.
pub const SPREAD_ID: &str = "mpe/simple_spread_v3";
/// Id of the speaker-listener scenario.
pub const SPEAKER_LISTENER_ID: &str = "mpe/simple_speaker_listener_v4";
/// Id of the reference scenario.
pub const REFERENCE_ID: &str = "mpe/simple_reference_v3";
/// Id of the tag scenario.
pub const TAG_ID: &str = "mpe/simple_tag_v3";
/// Id of the adversary scenario.
pub const ADVERSARY_ID: &str = "mpe/simple_adversary_v3";

/// `mpe/simple_spread_v3` with the given parameters.
pub fn spread(p: &SpreadParams) -> Result<ParticleEnv<Spread>, EnvError> {
    if p.n == 0 {
        return Err(EnvError::invalid_params(
            SPREAD_ID,
            "`N` must be at least 1",
        ));
    }
    check_cycles(SPREAD_ID, p.max_cycles)?;
    check_ratio(SPREAD_ID, p.local_ratio)?;
    let tag = format!("{SPREAD_ID} {p:?}");
    Ok(ParticleEnv::new(
        SPREAD_ID,
        tag,
        Spread::new(p),
        p.max_cycles,
        p.continuous_actions,
    ))
}

/// `mpe/simple_speaker_listener_v4` with the given parameters.
pub fn speaker_listener(
    p: &SpeakerListenerParams,
) -> Result<ParticleEnv<SpeakerListener>, EnvError> {
    check_cycles(SPEAKER_LISTENER_ID, p.max_cycles)?;
    let tag = format!("{SPEAKER_LISTENER_ID} {p:?}");
    let s = SpeakerListener::default();
    Ok(ParticleEnv::new(
        SPEAKER_LISTENER_ID,
        tag,
        s,
        p.max_cycles,
        p.continuous_actions,
    ))
}

/// `mpe/simple_reference_v3` with the given parameters.
pub fn reference(p: &ReferenceParams) -> Result<ParticleEnv<Reference>, EnvError> {
    check_cycles(REFERENCE_ID, p.max_cycles)?;
    check_ratio(REFERENCE_ID, p.local_ratio)?;
    let tag = format!("{REFERENCE_ID} {p:?}");
    Ok(ParticleEnv::new(
        REFERENCE_ID,
        tag,
        Reference::new(p),
        p.max_cycles,
        p.continuous_actions,
    ))
}

/// `mpe/simple_tag_v3` with the given parameters.
pub fn tag(p: &TagParams) -> Result<ParticleEnv<Tag>, EnvError> {
    if p.num_good == 0 || p.num_adversaries == 0 {
        return Err(EnvError::invalid_params(
            TAG_ID,
            "`num_good` and `num_adversaries` must be at least 1",
        ));
    }
    check_cycles(TAG_ID, p.max_cycles)?;
    let tag = format!("{TAG_ID} {p:?}");
    Ok(ParticleEnv::new(
        TAG_ID,
        tag,
        Tag::new(p),
        p.max_cycles,
        p.continuous_actions,
    ))
}

/// `mpe/simple_adversary_v3` with the given parameters.
pub fn adversary(p: &AdversaryParams) -> Result<ParticleEnv<Adversary>, EnvError> {
    if p.n == 0 {
        return Err(EnvError::invalid_params(
            ADVERSARY_ID,
            "`N` must be at least 1",
        ));
    }
    check_cycles(ADVERSARY_ID, p.max_cycles)?;
    let tag = format!("{ADVERSARY_ID} {p:?}");
    Ok(ParticleEnv::new(
        ADVERSARY_ID,
        tag,
        Adversary::new(p),
        p.max_cycles,
        p.continuous_actions,
    ))
}
