//! The Redis backend: for processes on several machines sharing one store.
//!
//! Owns the key layout on the server and the commands of each operation. A store's values live
//! at `<key_prefix>v:<key>`; a sorted set `<key_prefix>index` (all scores 0, so ordered by bytes)
//! lists its keys, which is what lets `list` return keys in ascending byte order page by page,
//! exactly as SQLite does (Redis's `SCAN` has no order and may repeat). Every operation that
//! touches both is one Lua script, so it is atomic on the server; expiry is Redis's own, and
//! `list` drops index entries whose value has expired. The connection is a reconnecting
//! `ConnectionManager`, connected lazily: a store whose server is down at start, or restarts,
//! answers `unavailable` until it is back and then works again by itself.

use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{RedisError, Script};

use super::{KvError, Page, prefix_end};
use crate::config::StoreLimits;

/// Index entries examined per round of a listing, beyond the page itself, before giving the
/// caller a cursor to continue from: bounds the work of one call when many keys have expired.
const LIST_ROUNDS: u32 = 8;

pub(super) struct RedisStore {
    name: String,
    conn: ConnectionManager,
    values: Vec<u8>,
    index: Vec<u8>,
    scripts: Scripts,
}

struct Scripts {
    set: Script,
    delete: Script,
    incr: Script,
    cas: Script,
    list: Script,
}

impl Scripts {
    fn new() -> Scripts {
        // KEYS[1] = the value's key, KEYS[2] = the index; ARGV: see each.
        const SET_VALUE: &str = "
            local function put(key, value, ttl)
              if tonumber(ttl) > 0 then
                redis.call('SET', key, value, 'PX', ttl)
              else
                redis.call('SET', key, value)
              end
            end";
        Scripts {
            // ARGV: value, ttl_ms (0: none), member.
            set: Script::new(&format!(
                "{SET_VALUE}
                put(KEYS[1], ARGV[1], ARGV[2])
                redis.call('ZADD', KEYS[2], 0, ARGV[3])
                return 1"
            )),
            // ARGV: member.
            delete: Script::new(
                "local n = redis.call('DEL', KEYS[1])
                redis.call('ZREM', KEYS[2], ARGV[1])
                return n",
            ),
            // ARGV: delta, member. INCRBY keeps an expiry and refuses a non-integer value.
            incr: Script::new(
                "local v = redis.call('INCRBY', KEYS[1], ARGV[1])
                redis.call('ZADD', KEYS[2], 0, ARGV[2])
                return v",
            ),
            // ARGV: expected_present ('1'/'0'), expected, new, ttl_ms, member.
            cas: Script::new(&format!(
                "{SET_VALUE}
                local cur = redis.call('GET', KEYS[1])
                if ARGV[1] == '0' then
                  if cur then return 0 end
                elseif cur ~= ARGV[2] then
                  return 0
                end
                put(KEYS[1], ARGV[3], ARGV[4])
                redis.call('ZADD', KEYS[2], 0, ARGV[5])
                return 1"
            )),
            // KEYS[1] = the index; ARGV: min, max, fetch (page + 1), value-key prefix, rounds.
            // Returns {live members..., ''} when the index ran out, or {live..., last examined}
            // when the rounds ran out first (the caller continues from there).
            list: Script::new(
                "local out = {}
                local min = ARGV[1]
                local fetch = tonumber(ARGV[3])
                for round = 1, tonumber(ARGV[5]) do
                  local members = redis.call('ZRANGEBYLEX', KEYS[1], min, ARGV[2], 'LIMIT', 0, fetch)
                  for _, m in ipairs(members) do
                    if redis.call('EXISTS', ARGV[4] .. m) == 1 then
                      table.insert(out, m)
                      if #out >= fetch then
                        table.insert(out, '')
                        return out
                      end
                    else
                      redis.call('ZREM', KEYS[1], m)
                    end
                  end
                  if #members < fetch then
                    table.insert(out, '')
                    return out
                  end
                  min = '(' .. members[#members]
                end
                table.insert(out, string.sub(min, 2))
                return out",
            ),
        }
    }
}

impl RedisStore {
    /// A store on the server at `url`; connects on first use.
    pub(super) fn new(
        name: &str,
        url: &str,
        key_prefix: &str,
        limits: &StoreLimits,
    ) -> Result<RedisStore, KvError> {
        let client = redis::Client::open(url).map_err(|e| KvError::Unavailable {
            store: name.to_string(),
            reason: format!("invalid Redis URL: {e}"),
        })?;
        // Reconnect attempts are paced, not unbounded: each failing operation triggers one more.
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(limits.timeout))
            .set_response_timeout(Some(limits.timeout))
            .set_number_of_retries(2)
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(limits.timeout);
        let conn = ConnectionManager::new_lazy_with_config(client, config).map_err(|e| {
            KvError::Unavailable {
                store: name.to_string(),
                reason: e.to_string(),
            }
        })?;
        let mut values = key_prefix.as_bytes().to_vec();
        values.extend_from_slice(b"v:");
        let mut index = key_prefix.as_bytes().to_vec();
        index.extend_from_slice(b"index");
        Ok(RedisStore {
            name: name.to_string(),
            conn,
            values,
            index,
            scripts: Scripts::new(),
        })
    }

    fn value_key(&self, key: &[u8]) -> Vec<u8> {
        let mut k = self.values.clone();
        k.extend_from_slice(key);
        k
    }

    fn error(&self, e: RedisError) -> KvError {
        if e.is_timeout() {
            return KvError::Timeout {
                store: self.name.clone(),
                after: Duration::ZERO,
            };
        }
        KvError::Unavailable {
            store: self.name.clone(),
            reason: e.to_string(),
        }
    }

    pub(super) async fn ping(&self) -> Result<(), KvError> {
        let mut c = self.conn.clone();
        redis::cmd("PING")
            .query_async::<String>(&mut c)
            .await
            .map(drop)
            .map_err(|e| self.error(e))
    }

    pub(super) async fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, KvError> {
        let mut c = self.conn.clone();
        redis::cmd("GET")
            .arg(self.value_key(key))
            .query_async(&mut c)
            .await
            .map_err(|e| self.error(e))
    }

    pub(super) async fn set(
        &self,
        key: &[u8],
        value: &[u8],
        ttl: Option<Duration>,
    ) -> Result<(), KvError> {
        let mut c = self.conn.clone();
        self.scripts
            .set
            .key(self.value_key(key))
            .key(&self.index)
            .arg(value)
            .arg(ttl_ms(ttl))
            .arg(key)
            .invoke_async::<i64>(&mut c)
            .await
            .map(drop)
            .map_err(|e| self.error(e))
    }

    pub(super) async fn delete(&self, key: &[u8]) -> Result<bool, KvError> {
        let mut c = self.conn.clone();
        self.scripts
            .delete
            .key(self.value_key(key))
            .key(&self.index)
            .arg(key)
            .invoke_async::<i64>(&mut c)
            .await
            .map(|n| n > 0)
            .map_err(|e| self.error(e))
    }

    pub(super) async fn exists(&self, key: &[u8]) -> Result<bool, KvError> {
        let mut c = self.conn.clone();
        redis::cmd("EXISTS")
            .arg(self.value_key(key))
            .query_async::<i64>(&mut c)
            .await
            .map(|n| n > 0)
            .map_err(|e| self.error(e))
    }

    pub(super) async fn incr(&self, key: &[u8], delta: i64) -> Result<i64, KvError> {
        let mut c = self.conn.clone();
        self.scripts
            .incr
            .key(self.value_key(key))
            .key(&self.index)
            .arg(delta)
            .arg(key)
            .invoke_async::<i64>(&mut c)
            .await
            .map_err(|e| {
                // INCRBY's own refusal: "value is not an integer or out of range" (also on
                // overflow), a fact about the value, not about the server.
                let text = e.to_string();
                if text.contains("not an integer") || text.contains("overflow") {
                    KvError::Invalid(
                        "the value is not an integer (its decimal text), or the result overflows"
                            .into(),
                    )
                } else {
                    self.error(e)
                }
            })
    }

    pub(super) async fn cas(
        &self,
        key: &[u8],
        expected: Option<&[u8]>,
        new: &[u8],
        ttl: Option<Duration>,
    ) -> Result<bool, KvError> {
        let mut c = self.conn.clone();
        self.scripts
            .cas
            .key(self.value_key(key))
            .key(&self.index)
            .arg(if expected.is_some() { "1" } else { "0" })
            .arg(expected.unwrap_or_default())
            .arg(new)
            .arg(ttl_ms(ttl))
            .arg(key)
            .invoke_async::<i64>(&mut c)
            .await
            .map(|n| n == 1)
            .map_err(|e| self.error(e))
    }

    pub(super) async fn list(
        &self,
        prefix: &[u8],
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Page, KvError> {
        let lex = |open: u8, bytes: &[u8]| {
            let mut b = vec![open];
            b.extend_from_slice(bytes);
            b
        };
        // Strictly after the cursor, or from the prefix itself; up to the prefix's end.
        let min = match after {
            Some(a) if a >= prefix => lex(b'(', a),
            _ if prefix.is_empty() => b"-".to_vec(),
            _ => lex(b'[', prefix),
        };
        let max = prefix_end(prefix).map_or_else(|| b"+".to_vec(), |end| lex(b'(', &end));
        let mut c = self.conn.clone();
        let mut found: Vec<Vec<u8>> = self
            .scripts
            .list
            .key(&self.index)
            .arg(min)
            .arg(max)
            .arg(limit + 1)
            .arg(&self.values)
            .arg(LIST_ROUNDS)
            .invoke_async(&mut c)
            .await
            .map_err(|e| self.error(e))?;
        let resume = found.pop().unwrap_or_default();
        let more = found.len() > limit;
        found.truncate(limit);
        let next = if more {
            found.last().cloned()
        } else if !resume.is_empty() {
            // The rounds ran out among expired entries: continue after the last one examined.
            Some(resume)
        } else {
            None
        };
        Ok(Page { keys: found, next })
    }
}

/// A TTL in milliseconds as the scripts take it: 0 for none, else at least 1 (a sub-millisecond
/// TTL still expires).
fn ttl_ms(ttl: Option<Duration>) -> u64 {
    ttl.filter(|t| !t.is_zero()).map_or(0, |t| {
        u64::try_from(t.as_millis()).unwrap_or(u64::MAX).max(1)
    })
}
