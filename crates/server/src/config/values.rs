//! The value syntax of `wasmgate.toml`: durations (`"250ms"`), delays that may be zero, sizes
//! (`"64MiB"`), positive counts and listen addresses, each a `Deserialize` impl so the TOML parser
//! reports a bad value with its exact position and what would be valid.
//!
//! Owns the grammar of single values only; which keys exist and how they combine is `file.rs`'s.

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};

/// A non-zero duration written `"250ms"`, `"10s"` or `"2m"`.
#[derive(Clone, Copy)]
pub(super) struct Dur(Duration);

impl From<Dur> for Duration {
    fn from(d: Dur) -> Duration {
        d.0
    }
}

/// Parses `"250ms"`, `"10s"`, `"2m"`; `None` for anything else or zero.
pub(crate) fn parse_duration(s: &str) -> Option<Duration> {
    let split = s.find(|c: char| !c.is_ascii_digit())?;
    let n: u64 = s[..split].parse().ok()?;
    let d = match &s[split..] {
        "ms" => Duration::from_millis(n),
        "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(n.checked_mul(60)?),
        _ => return None,
    };
    (!d.is_zero()).then_some(d)
}

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        parse_duration(&s).map(Dur).ok_or_else(|| {
            de::Error::custom(format!(
                "invalid duration `{s}`: expected a non-zero whole number followed by ms, s or m, e.g. \"250ms\", \"10s\", \"2m\""
            ))
        })
    }
}

/// A duration that may be zero (`"0s"`): a delay that can be switched off.
#[derive(Clone, Copy)]
pub(super) struct Delay(Duration);

impl From<Delay> for Duration {
    fn from(d: Delay) -> Duration {
        d.0
    }
}

impl<'de> Deserialize<'de> for Delay {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        let zero = s
            .strip_suffix("ms")
            .or_else(|| s.strip_suffix('s'))
            .or_else(|| s.strip_suffix('m'))
            == Some("0");
        match parse_duration(&s) {
            Some(d) => Ok(Delay(d)),
            None if zero => Ok(Delay(Duration::ZERO)),
            None => Err(de::Error::custom(format!(
                "invalid duration `{s}`: expected a whole number followed by ms, s or m, e.g. \"0s\", \"5s\""
            ))),
        }
    }
}

/// A non-zero byte size: an integer, or a string with a unit (`"512KiB"`, `"64MiB"`, `"1GiB"`).
#[derive(Clone, Copy)]
pub(super) struct Size(u64);

macro_rules! size_into {
    ($($t:ty),*) => {$(
        impl From<Size> for $t {
            fn from(s: Size) -> $t {
                // Validated to fit when deserialized (see `Size::fits`).
                <$t>::try_from(s.0).unwrap_or(<$t>::MAX)
            }
        }
    )*};
}
size_into!(u64, u32, usize);

/// Parses a size with an optional binary unit; `None` for bad syntax, overflow or zero.
pub(crate) fn parse_size(s: &str) -> Option<u64> {
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let n: u64 = s[..split].parse().ok()?;
    let mult: u64 = match s[split..].trim_start() {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        _ => return None,
    };
    n.checked_mul(mult)
        .filter(|&v| v > 0 && v <= u64::from(u32::MAX) * 16)
}

impl<'de> Deserialize<'de> for Size {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Size;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a non-zero size: a number of bytes, or a string like \"512KiB\", \"64MiB\", \"1GiB\"")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Size, E> {
                u64::try_from(v)
                    .ok()
                    .filter(|&v| v > 0)
                    .map(Size)
                    .ok_or_else(|| {
                        E::custom(format!(
                            "invalid size {v}: must be a positive number of bytes"
                        ))
                    })
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Size, E> {
                parse_size(v).map(Size).ok_or_else(|| {
                    E::custom(format!(
                        "invalid size `{v}`: expected a positive number with an optional unit B, KiB, MiB or GiB, e.g. \"64MiB\""
                    ))
                })
            }
        }
        d.deserialize_any(V)
    }
}

/// A positive whole number (TOML integers are signed 64-bit, so up to `i64::MAX`).
#[derive(Clone, Copy)]
pub(super) struct Count(u64);

impl From<Count> for u64 {
    fn from(c: Count) -> u64 {
        c.0
    }
}

impl From<Count> for usize {
    fn from(c: Count) -> usize {
        // 64-bit targets only (wasmgate needs 64-bit address space for the pooling allocator).
        usize::try_from(c.0).unwrap_or(usize::MAX)
    }
}

impl<'de> Deserialize<'de> for Count {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = i64::deserialize(d)?;
        u64::try_from(v)
            .ok()
            .filter(|&v| v > 0)
            .map(Count)
            .ok_or_else(|| {
                de::Error::custom(format!(
                    "invalid value {v}: must be a positive whole number"
                ))
            })
    }
}

/// A positive whole number that must fit 32 bits (counts wasmtime takes as `u32`).
#[derive(Clone, Copy)]
pub(super) struct Count32(u32);

impl From<Count32> for u32 {
    fn from(c: Count32) -> u32 {
        c.0
    }
}

impl<'de> Deserialize<'de> for Count32 {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = i64::deserialize(d)?;
        u32::try_from(v)
            .ok()
            .filter(|&v| v > 0)
            .map(Count32)
            .ok_or_else(|| {
                de::Error::custom(format!(
                    "invalid value {v}: must be a whole number from 1 to {}",
                    u32::MAX
                ))
            })
    }
}

/// A socket address to listen on.
#[derive(Clone, Copy)]
pub(super) struct Listen(SocketAddr);

impl From<Listen> for SocketAddr {
    fn from(l: Listen) -> SocketAddr {
        l.0
    }
}

impl<'de> Deserialize<'de> for Listen {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map(Listen).map_err(|_| {
            de::Error::custom(format!(
                "invalid listen address `{s}`: expected IP:PORT, e.g. \"127.0.0.1:8080\" or \"[::]:8080\""
            ))
        })
    }
}
