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

/// Lowercase hex. [`hash`] runs on every call with a token, and a formatting call per byte
/// cost it about 1 us.
fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut text = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        text.push(char::from(DIGITS[usize::from(b >> 4)]));
        text.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    text
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
        // Stored hashes must keep matching: SHA-256 of "abc", lowercase hex.
        assert_eq!(
            hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert!(!hash(&a).contains(&a[PREFIX.len()..]));
        for bad in ["", "kbt_", "kbt_zz", "c_0123456789abcdef", &a[1..]] {
            assert!(!well_formed(bad), "{bad}");
        }
    }
}
