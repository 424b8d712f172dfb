//! Container names: validation of user-given names and generated `adjective_surname` names.

use rand::Rng;

use crate::error::{EngineError, Result};

const LEFT: &[&str] = &[
    "admiring",
    "amazing",
    "boring",
    "brave",
    "busy",
    "clever",
    "cool",
    "dazzling",
    "eager",
    "ecstatic",
    "elegant",
    "epic",
    "festive",
    "focused",
    "friendly",
    "gallant",
    "gifted",
    "happy",
    "hopeful",
    "jolly",
    "keen",
    "kind",
    "laughing",
    "loving",
    "lucid",
    "modest",
    "nifty",
    "nostalgic",
    "optimistic",
    "peaceful",
    "practical",
    "quirky",
    "relaxed",
    "serene",
    "sharp",
    "stoic",
    "sweet",
    "tender",
    "trusting",
    "vibrant",
    "wizardly",
    "zen",
];

const RIGHT: &[&str] = &[
    "agnesi",
    "archimedes",
    "babbage",
    "bell",
    "bohr",
    "curie",
    "darwin",
    "dijkstra",
    "einstein",
    "euler",
    "faraday",
    "fermat",
    "feynman",
    "galileo",
    "gauss",
    "hopper",
    "hypatia",
    "johnson",
    "kepler",
    "knuth",
    "lamport",
    "lovelace",
    "maxwell",
    "meitner",
    "newton",
    "noether",
    "pascal",
    "pike",
    "ritchie",
    "shannon",
    "thompson",
    "torvalds",
    "turing",
    "wozniak",
    "yalow",
];

/// Validates a user-given name (`[a-zA-Z0-9][a-zA-Z0-9_.-]+`, optional leading slash) and
/// returns it without the slash.
pub fn validate(name: &str) -> Result<String> {
    let n = name.strip_prefix('/').unwrap_or(name);
    let mut chars = n.chars();
    let ok = match chars.next() {
        Some(c) if c.is_ascii_alphanumeric() => {
            n.len() >= 2 && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
        }
        _ => false,
    };
    if ok {
        Ok(n.to_string())
    } else {
        Err(EngineError::InvalidArgument(format!(
            "Invalid container name ({name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
        )))
    }
}

/// A random `adjective_surname`, with a digit appended after `retry` collisions.
pub fn generate(retry: u32) -> String {
    let mut rng = rand::rng();
    let l = LEFT[rng.random_range(0..LEFT.len())];
    let r = RIGHT[rng.random_range(0..RIGHT.len())];
    if retry == 0 {
        format!("{l}_{r}")
    } else {
        format!("{l}_{r}{}", rng.random_range(0..10))
    }
}

/// A new random 64-hex id.
pub fn new_id() -> String {
    let bytes: [u8; 32] = rand::random();
    hex::encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validates_like_docker() {
        assert_eq!(validate("/web-1").ok().as_deref(), Some("web-1"));
        assert!(validate("a").is_err());
        assert!(validate("-x").is_err());
        assert!(validate("bad name").is_err());
        assert!(validate("ok_name.2").is_ok());
    }

    #[test]
    fn generated_names_are_valid() {
        for i in 0..20 {
            assert!(validate(&generate(i % 2)).is_ok());
        }
        assert_eq!(new_id().len(), 64);
    }
}
