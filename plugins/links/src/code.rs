//! Random link codes: 7 characters of base62 from WASI randomness (the host's CSPRNG), about
//! 3.5 × 10¹² codes, so collisions are rare and unguessable codes stay unguessable.

use wasmgate_sdk::random;

/// The characters of a generated code.
const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
/// The length of a generated code.
pub(crate) const LEN: usize = 7;

/// A fresh random code. Bytes of 248 and above are dropped (248 = 4 × 62), so every character
/// is equally likely.
pub(crate) fn generate() -> String {
    let mut code = String::with_capacity(LEN);
    let mut bytes = [0u8; 16];
    while code.len() < LEN {
        random::fill(&mut bytes);
        for &b in bytes.iter().filter(|&&b| b < 248) {
            if code.len() == LEN {
                break;
            }
            code.push(char::from(ALPHABET[usize::from(b % 62)]));
        }
    }
    code
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_base62_of_the_right_length_and_differ() {
        let codes: std::collections::HashSet<String> = (0..200).map(|_| generate()).collect();
        assert_eq!(codes.len(), 200);
        for code in &codes {
            assert_eq!(code.len(), LEN);
            assert!(code.bytes().all(|b| b.is_ascii_alphanumeric()), "{code}");
            assert!(crate::input::check_code(code).is_ok());
        }
        // Every character class shows up across 1400 draws.
        let all: String = codes.into_iter().collect();
        assert!(all.bytes().any(|b| b.is_ascii_digit()));
        assert!(all.bytes().any(|b| b.is_ascii_uppercase()));
        assert!(all.bytes().any(|b| b.is_ascii_lowercase()));
    }
}
