//! What a module needs from its pool slot — memories, tables and their initial sizes — checked
//! against what a slot holds and what the plugin's limits allow, before wasmtime compiles it.
//!
//! wasmtime refuses a module that does not fit the pooling allocator at compile time, in its own
//! words ("defined memories count of 2 exceeds the per-instance limit of 1"), and a memory that
//! fits the slot but starts above the plugin's `max_memory_bytes` would load and then fail every
//! request. Reading the module's memory and table sections first turns both into one load error
//! in wasmgate's terms, naming the sizes and the setting to change. It reads section headers only;
//! everything else about the module is wasmtime's to validate.

use wasmtime::wasmparser::{Parser, Payload};

use super::engine::{MAX_MEMORIES, MAX_TABLE_ELEMENTS, MAX_TABLES};

/// Bytes in a wasm page.
const PAGE: u64 = 64 * 1024;

/// One way a module does not fit; each message names the sizes and what to change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResourceProblem {
    /// The memory's initial size is above the plugin's `max_memory_bytes`.
    #[error(
        "its memory starts at {initial} bytes ({} pages of 64 KiB), more than the plugin's \
         max_memory_bytes = {max}: raise max_memory_bytes for this plugin (up to [runtime] \
         max_memory_bytes) or build the module with a smaller initial memory",
        initial / PAGE
    )]
    InitialMemory { initial: u64, max: u64 },
    /// More than one defined memory.
    #[error(
        "it defines {found} memories; a plugin has exactly {MAX_MEMORIES}, exported as `memory`"
    )]
    Memories { found: u32 },
    /// A shared (threads) memory.
    #[error("its memory is shared (the threads proposal); a plugin's memory is not shared")]
    SharedMemory,
    /// More than one defined table.
    #[error("it defines {found} tables; a plugin may have at most {MAX_TABLES}")]
    Tables { found: u32 },
    /// A table that starts with more elements than a slot holds.
    #[error(
        "a table starts with {initial} elements, more than the {MAX_TABLE_ELEMENTS} a plugin's \
         table may hold"
    )]
    TableElements { initial: u64 },
}

/// Every problem of `binary` (a wasm binary) against a plugin limited to `max_memory_bytes`.
/// A module that does not parse gives no problem here: compiling it reports that.
pub(crate) fn check(binary: &[u8], max_memory_bytes: u64) -> Vec<ResourceProblem> {
    let mut problems = Vec::new();
    let (mut memories, mut tables) = (0u32, 0u32);
    for payload in Parser::new(0).parse_all(binary) {
        match payload {
            Ok(Payload::MemorySection(reader)) => {
                for memory in reader.into_iter().flatten() {
                    memories = memories.saturating_add(1);
                    let initial = memory.initial.saturating_mul(PAGE);
                    if memory.shared {
                        problems.push(ResourceProblem::SharedMemory);
                    }
                    if initial > max_memory_bytes {
                        problems.push(ResourceProblem::InitialMemory {
                            initial,
                            max: max_memory_bytes,
                        });
                    }
                }
            }
            Ok(Payload::TableSection(reader)) => {
                for table in reader.into_iter().flatten() {
                    tables = tables.saturating_add(1);
                    if table.ty.initial > MAX_TABLE_ELEMENTS as u64 {
                        problems.push(ResourceProblem::TableElements {
                            initial: table.ty.initial,
                        });
                    }
                }
            }
            // The code section and after hold nothing sized here.
            Ok(Payload::CodeSectionStart { .. }) | Err(_) => break,
            Ok(_) => {}
        }
    }
    if memories > MAX_MEMORIES {
        problems.push(ResourceProblem::Memories { found: memories });
    }
    if tables > MAX_TABLES {
        problems.push(ResourceProblem::Tables { found: tables });
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(wat: &str, max: u64) -> Vec<ResourceProblem> {
        check(&wat::parse_str(wat).unwrap(), max)
    }

    #[test]
    fn an_initial_memory_at_the_limit_fits_and_one_page_past_it_is_named() {
        let max = 2 * PAGE;
        assert_eq!(problems("(module (memory 2))", max), []);
        let past = problems("(module (memory 3))", max);
        assert_eq!(
            past,
            [ResourceProblem::InitialMemory {
                initial: 3 * PAGE,
                max
            }]
        );
        let message = past[0].to_string();
        assert!(
            message.contains("196608 bytes (3 pages")
                && message.contains("max_memory_bytes = 131072"),
            "{message}"
        );
    }

    #[test]
    fn pool_slot_limits_are_named_in_wasmgate_terms() {
        let max = 1 << 30;
        assert_eq!(
            problems("(module (memory 1) (memory 1))", max),
            [ResourceProblem::Memories { found: 2 }]
        );
        assert_eq!(
            problems("(module (memory 1 2 shared))", max),
            [ResourceProblem::SharedMemory]
        );
        assert_eq!(
            problems("(module (table 1 funcref) (table 1 funcref))", max),
            [ResourceProblem::Tables { found: 2 }]
        );
        assert_eq!(problems("(module (table 20000 funcref))", max), []);
        assert_eq!(
            problems("(module (table 20001 funcref))", max),
            [ResourceProblem::TableElements { initial: 20_001 }]
        );
    }

    #[test]
    fn garbage_is_left_to_the_compiler() {
        assert_eq!(check(b"\0asm\x01\0\0\0\x05\xff", 0), []);
        assert_eq!(check(b"not wasm", 0), []);
    }
}
