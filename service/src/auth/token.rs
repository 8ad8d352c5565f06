//! Bearer tokens: 256 random bits, shown once, stored only as their SHA-256 hash.

use sha2::{Digest as _, Sha256};

/// What every bearer token starts with (claim tokens start with `c_`, so the two never mix).
pub const PREFIX: &str = "kbt_";

/// Prefix of a token's public id (what lists and revocation name; not a secret).
pub const ID_PREFIX: &str = "k_";

/// A fresh token: [`PREFIX`] and 64 hex digits (256 random bits).
pub fn generate() -> String {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("the operating system's random source");
    format!("{PREFIX}{}", hex(&bytes))
}

/// The hash a token is stored and looked up by (lowercase hex of its SHA-256).
pub fn hash(token: &str) -> String {
    hex(&Sha256::digest(token.as_bytes()))
}

/// Whether `text` has the shape of a bearer token (a cheap check before hashing).
pub fn well_formed(text: &str) -> bool {
    text.strip_prefix(PREFIX)
        .is_some_and(|hex| hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_well_formed_and_hashed() {
        let a = generate();
        assert!(well_formed(&a), "{a}");
        assert_ne!(a, generate());
        assert_eq!(hash(&a), hash(&a));
        assert_eq!(hash(&a).len(), 64);
        assert!(!hash(&a).contains(&a[PREFIX.len()..]));
        for bad in ["", "kbt_", "kbt_zz", "c_0123456789abcdef", &a[1..]] {
            assert!(!well_formed(bad), "{bad}");
        }
    }
}
