//! Content digests (`sha256:<64 hex>`), as the OCI image spec defines them.

use super::OciError;
use sha2::{Digest as _, Sha256, Sha512};
use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest {
    algorithm: String,
    hex: String,
}

impl Digest {
    /// Parses `algorithm:encoded`. sha256 and sha512 are supported.
    pub fn parse(s: &str) -> Result<Digest, OciError> {
        let err = |reason: &str| OciError::InvalidDigest {
            input: s.to_string(),
            reason: reason.to_string(),
        };
        let (algorithm, hex) = s
            .split_once(':')
            .ok_or_else(|| err("invalid checksum digest format"))?;
        let valid_alg = !algorithm.is_empty()
            && algorithm
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "+._-".contains(c));
        if !valid_alg {
            return Err(err("invalid checksum digest format"));
        }
        let len = match algorithm {
            "sha256" => 64,
            "sha512" => 128,
            _ => return Err(err("unsupported digest algorithm")),
        };
        if hex.len() != len {
            return Err(err("invalid checksum digest length"));
        }
        if !hex
            .chars()
            .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
        {
            return Err(err("invalid checksum digest format"));
        }
        Ok(Digest {
            algorithm: algorithm.to_string(),
            hex: hex.to_string(),
        })
    }

    /// The sha256 digest of `bytes`.
    pub fn sha256(bytes: &[u8]) -> Digest {
        Digest {
            algorithm: "sha256".into(),
            hex: hex::encode(Sha256::digest(bytes)),
        }
    }

    /// The digest of `bytes` with this digest's algorithm (to verify content).
    pub fn of_same_kind(&self, bytes: &[u8]) -> Digest {
        match self.algorithm.as_str() {
            "sha512" => Digest {
                algorithm: "sha512".into(),
                hex: hex::encode(Sha512::digest(bytes)),
            },
            _ => Digest::sha256(bytes),
        }
    }

    /// Fails with a digest mismatch unless `bytes` hash to this digest.
    pub fn verify(&self, what: &str, bytes: &[u8]) -> Result<(), OciError> {
        let actual = self.of_same_kind(bytes);
        if &actual != self {
            return Err(OciError::DigestMismatch {
                what: what.to_string(),
                expected: self.to_string(),
                actual: actual.to_string(),
            });
        }
        Ok(())
    }

    pub fn algorithm(&self) -> &str {
        &self.algorithm
    }

    pub fn encoded(&self) -> &str {
        &self.hex
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.algorithm, self.hex)
    }
}

impl std::str::FromStr for Digest {
    type Err = OciError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Digest::parse(s)
    }
}

impl serde::Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Digest::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_checks() {
        let d = Digest::sha256(b"");
        assert_eq!(
            d.to_string(),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(Digest::parse(&d.to_string()).unwrap(), d);
        assert!(d.verify("x", b"").is_ok());
        assert!(matches!(
            d.verify("x", b"a"),
            Err(OciError::DigestMismatch { .. })
        ));
        for bad in [
            "sha256:abc",
            "md5:d41d8cd98f00b204e9800998ecf8427e",
            "nocolon",
            "sha256:",
        ] {
            assert!(Digest::parse(bad).is_err(), "{bad}");
        }
        let upper = format!("sha256:{}", "A".repeat(64));
        assert!(Digest::parse(&upper).is_err());
    }
}
