//! The conformance suite over every registered environment.

use marl_envs::{registry, testing};

#[test]
fn every_registered_env_conforms() {
    for entry in registry::REGISTRY {
        testing::check_env(entry);
    }
}

#[test]
fn ids_are_versioned_and_unique() {
    let ids = registry::ids();
    for id in &ids {
        let (family, name) = id.split_once('/').expect("family/name");
        assert!(!family.is_empty(), "{id}");
        // `name_vN`, or lbforaging's own `Name-vN` for its task ids.
        let version = name
            .rsplit_once("_v")
            .or_else(|| name.rsplit_once("-v"))
            .map(|(_, v)| v)
            .unwrap_or("");
        assert!(
            !version.is_empty() && version.chars().all(|c| c.is_ascii_digit()),
            "{id}"
        );
    }
    let mut sorted = ids.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), ids.len(), "duplicate ids");
}
