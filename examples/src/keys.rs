//! Cluster keys on the command line: 64 hex digits (32 bytes), as `openssl rand -hex 32`
//! prints them.

/// Why a key or hex string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// The string has the wrong number of hex digits.
    #[error("a cluster key is {expected} hex digits (32 bytes), got {got}")]
    Length {
        /// Digits expected.
        expected: usize,
        /// Digits given.
        got: usize,
    },
    /// A character is not a hex digit.
    #[error("not a hex digit at position {0}")]
    NotHex(usize),
}

/// Decodes hex (upper or lower case, no prefix, no separators) into bytes.
pub fn decode_hex(s: &str) -> Result<Vec<u8>, KeyError> {
    let b = s.as_bytes();
    if b.len() % 2 != 0 {
        return Err(KeyError::Length {
            expected: b.len() + 1,
            got: b.len(),
        });
    }
    let digit = |i: usize| -> Result<u8, KeyError> {
        match b[i] {
            c @ b'0'..=b'9' => Ok(c - b'0'),
            c @ b'a'..=b'f' => Ok(c - b'a' + 10),
            c @ b'A'..=b'F' => Ok(c - b'A' + 10),
            _ => Err(KeyError::NotHex(i)),
        }
    };
    (0..b.len() / 2)
        .map(|i| Ok(digit(2 * i)? << 4 | digit(2 * i + 1)?))
        .collect()
}

/// Encodes bytes as lower-case hex.
pub fn encode_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 15)] as char);
    }
    s
}

/// Parses a 32-byte cluster key from 64 hex digits (surrounding whitespace ignored).
pub fn parse_cluster_key(s: &str) -> Result<[u8; 32], KeyError> {
    let s = s.trim();
    if s.len() != 64 {
        return Err(KeyError::Length {
            expected: 64,
            got: s.len(),
        });
    }
    let v = decode_hex(s)?;
    let mut key = [0u8; 32];
    key.copy_from_slice(&v);
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_and_bad_input_is_refused() {
        let key: [u8; 32] = std::array::from_fn(|i| (i * 7) as u8);
        let hex = encode_hex(&key);
        assert_eq!(parse_cluster_key(&hex), Ok(key));
        assert_eq!(parse_cluster_key(&hex.to_uppercase()), Ok(key));
        assert_eq!(parse_cluster_key(&format!(" {hex}\n")), Ok(key));
        assert!(matches!(
            parse_cluster_key("abcd"),
            Err(KeyError::Length { got: 4, .. })
        ));
        let mut bad = hex.clone();
        bad.replace_range(10..11, "g");
        assert_eq!(parse_cluster_key(&bad), Err(KeyError::NotHex(10)));
        assert!(decode_hex("abc").is_err());
        assert_eq!(decode_hex(""), Ok(vec![]));
    }
}
