//! The registry: one static list of every built-in environment, by versioned id.
//!
//! Each entry parses its own parameters struct from a TOML table (unknown keys are an error that
//! lists the valid ones) and builds the environment. Bump an id's `_vN` whenever its dynamics or
//! rewards change, so results and checkpoints stay interpretable.

use crate::api::MultiAgentEnv;
use crate::error::EnvError;
use crate::grid;
use crate::particle;

/// Re-exported from [`crate::params`], where it lives so that environments need not import
/// the registry.
pub use crate::params::parse_params;

/// Builds an environment from its parameters.
pub type MakeFn = fn(&toml::Table) -> Result<Box<dyn MultiAgentEnv>, EnvError>;

/// One registered environment.
pub struct EnvEntry {
    /// Versioned id, `family/name_vN`.
    pub id: &'static str,
    /// One line on what the environment is.
    pub summary: &'static str,
    /// Builds it from a table of parameters (empty: the defaults).
    pub make: MakeFn,
}

macro_rules! particle_entry {
    ($id:expr, $summary:expr, $params:ty, $ctor:path) => {
        EnvEntry {
            id: $id,
            summary: $summary,
            make: |t| Ok(Box::new($ctor(&parse_params::<$params>($id, t)?)?)),
        }
    };
}

macro_rules! rware_task {
    ($id:literal) => {
        EnvEntry {
            id: concat!("rware/", $id),
            summary: "multi-robot warehouse task of the EPyMARL benchmark (rware 2.0.0)",
            make: |t| Ok(Box::new(grid::warehouse::make_task($id, t)?)),
        }
    };
}

macro_rules! predator_prey_task {
    ($id:literal, $setting:literal) => {
        EnvEntry {
            id: concat!("ic3net/", $id),
            summary: concat!(
                "IC3Net's predator-prey, the paper's ",
                $setting,
                " setting (mixed)"
            ),
            make: |t| Ok(Box::new(grid::predator_prey::make_task($id, t)?)),
        }
    };
}

macro_rules! lbf_task {
    ($id:literal) => {
        EnvEntry {
            id: concat!("lbf/", $id),
            summary: "Level-Based Foraging task of the EPyMARL benchmark (lbforaging 2.0.0)",
            make: |t| Ok(Box::new(grid::make_task($id, t)?)),
        }
    };
}

/// Every built-in environment.
pub static REGISTRY: &[EnvEntry] = &[
    particle_entry!(
        particle::SPREAD_ID,
        "N agents cover N landmarks without colliding (cooperative)",
        particle::spread::SpreadParams,
        particle::spread
    ),
    particle_entry!(
        particle::SPEAKER_LISTENER_ID,
        "a fixed speaker guides a silent listener to the goal landmark (cooperative, heterogeneous)",
        particle::speaker_listener::SpeakerListenerParams,
        particle::speaker_listener
    ),
    particle_entry!(
        particle::REFERENCE_ID,
        "two agents tell each other which landmark to reach (cooperative, communication)",
        particle::reference::ReferenceParams,
        particle::reference
    ),
    particle_entry!(
        particle::TAG_ID,
        "adversaries chase faster good agents among obstacles (competitive, heterogeneous)",
        particle::tag::TagParams,
        particle::tag
    ),
    particle_entry!(
        particle::ADVERSARY_ID,
        "good agents guard a goal landmark from an adversary who does not know it (mixed)",
        particle::adversary::AdversaryParams,
        particle::adversary
    ),
    EnvEntry {
        id: grid::foraging::FORAGING_ID,
        summary: "Level-Based Foraging with every lbforaging parameter (cooperative or mixed)",
        make: |t| {
            let p = parse_params(grid::foraging::FORAGING_ID, t)?;
            Ok(Box::new(grid::ForagingEnv::new(grid::foraging::FORAGING_ID, &p)?))
        },
    },
    EnvEntry {
        id: grid::foraging::TEAM_FORAGING_ID,
        summary: "two teams compete for the same food under LBF rules (competitive, zero-sum)",
        make: |t| {
            let p = parse_params(grid::foraging::TEAM_FORAGING_ID, t)?;
            Ok(Box::new(grid::ForagingEnv::teams(&p)?))
        },
    },
    lbf_task!("Foraging-8x8-2p-2f-coop-v3"),
    lbf_task!("Foraging-2s-8x8-2p-2f-coop-v3"),
    lbf_task!("Foraging-10x10-3p-3f-v3"),
    lbf_task!("Foraging-2s-10x10-3p-3f-v3"),
    lbf_task!("Foraging-15x15-3p-5f-v3"),
    lbf_task!("Foraging-15x15-4p-3f-v3"),
    lbf_task!("Foraging-15x15-4p-5f-v3"),
    EnvEntry {
        id: grid::warehouse::RWARE_ID,
        summary: "multi-robot warehouse with every rware parameter (cooperative, partially observed)",
        make: |t| {
            let p = parse_params(grid::warehouse::RWARE_ID, t)?;
            Ok(Box::new(grid::warehouse::WarehouseEnv::new(
                grid::warehouse::RWARE_ID,
                &p,
            )?))
        },
    },
    rware_task!("rware-tiny-2ag-v2"),
    rware_task!("rware-tiny-4ag-v2"),
    rware_task!("rware-small-4ag-v2"),
    EnvEntry {
        id: grid::predator_prey::PREDATOR_PREY_ID,
        summary: "IC3Net's predator-prey: predators with a small view find a fixed prey (mixed, cooperative or competitive)",
        make: |t| {
            let id = grid::predator_prey::PREDATOR_PREY_ID;
            let p = parse_params(id, t)?;
            Ok(Box::new(grid::PredatorPreyEnv::new(id, &p)?))
        },
    },
    predator_prey_task!("predator_prey-5x5-3p-v0", "easy (vision 0)"),
    predator_prey_task!("predator_prey-10x10-5p-v0", "medium (vision 1)"),
    predator_prey_task!("predator_prey-20x20-10p-v0", "hard (vision 1)"),
];

/// Every registered id.
pub fn ids() -> Vec<&'static str> {
    REGISTRY.iter().map(|e| e.id).collect()
}

/// The entry of `id`, or an error listing the valid ids and the closest one.
///
/// The family prefix may be left out (`simple_spread_v3` finds `mpe/simple_spread_v3`).
pub fn lookup(id: &str) -> Result<&'static EnvEntry, EnvError> {
    let exact = REGISTRY.iter().find(|e| e.id == id);
    let short = || {
        let mut it = REGISTRY
            .iter()
            .filter(|e| e.id.rsplit('/').next() == Some(id));
        match (it.next(), it.next()) {
            (Some(e), None) => Some(e),
            _ => None,
        }
    };
    exact.or_else(short).ok_or_else(|| EnvError::UnknownEnv {
        id: id.to_string(),
        suggestion: closest(id, &ids()).map(str::to_string),
        valid: ids().iter().map(|s| s.to_string()).collect(),
    })
}

/// Makes the environment `id` with the given parameters.
///
/// Besides the registered ids, every lbforaging task id
/// (`Foraging{-2s}-{S}x{S}-{P}p-{F}f{-coop}-v3`, 1,920 of them and more) and every rware task id
/// (`rware-{size}-{N}ag{-easy,-hard}-v2` and the longer forms of rware's full registration) is
/// understood; a malformed rware id is an error naming the bad part and the valid values.
pub fn make(id: &str, params: &toml::Table) -> Result<Box<dyn MultiAgentEnv>, EnvError> {
    if id == crate::python::ID {
        return crate::python::make(params);
    }
    match lookup(id) {
        Ok(entry) => (entry.make)(params),
        Err(_) if grid::foraging::task_params(id).is_some() => {
            Ok(Box::new(grid::make_task(id, params)?))
        }
        Err(_) if grid::warehouse::task_params(id).is_some() => {
            Ok(Box::new(grid::warehouse::make_task(id, params)?))
        }
        Err(e) => Err(e),
    }
}

/// The candidate nearest to `word` by edit distance, if it is plausibly a typo of it.
pub fn closest<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    candidates
        .iter()
        .map(|c| {
            // Compare with and without the family prefix and keep the better.
            let short = c.rsplit('/').next().unwrap_or(c);
            (edit_distance(word, c).min(edit_distance(word, short)), *c)
        })
        .filter(|(d, c)| *d <= (c.len() / 3).max(2))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// Levenshtein distance over chars.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_id_lists_the_valid_ones_and_suggests_the_closest() {
        let err = make("mpe/simple_sprad_v3", &toml::Table::new())
            .err()
            .expect("must fail");
        let msg = err.to_string();
        assert!(msg.contains("did you mean `mpe/simple_spread_v3`"), "{msg}");
        assert!(msg.contains("mpe/simple_tag_v3"), "{msg}");
    }

    #[test]
    fn unknown_param_names_it_and_lists_the_valid_ones() {
        let params: toml::Table = toml::from_str("local_ratoi = 0.3").expect("toml");
        let msg = make("mpe/simple_spread_v3", &params)
            .err()
            .expect("must fail")
            .to_string();
        assert!(
            msg.contains("local_ratoi") && msg.contains("local_ratio"),
            "{msg}"
        );
    }

    #[test]
    fn wrong_type_is_reported() {
        let params: toml::Table = toml::from_str("N = \"three\"").expect("toml");
        let msg = make("simple_spread_v3", &params)
            .err()
            .expect("must fail")
            .to_string();
        assert!(
            msg.contains("simple_spread_v3") && msg.contains("invalid type"),
            "{msg}"
        );
    }

    #[test]
    fn short_ids_resolve() {
        assert_eq!(
            lookup("simple_tag_v3").map(|e| e.id).ok(),
            Some("mpe/simple_tag_v3")
        );
    }
}
