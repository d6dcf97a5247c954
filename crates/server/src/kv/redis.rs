//! The Redis backend: for processes on several machines sharing one store.
//!
//! Owns the key layout on the server and the commands of each operation. A store's values live
//! at `<key_prefix>v:<key>`; a sorted set `<key_prefix>index` (all scores 0, so ordered by bytes)
//! lists its keys, which is what lets `list` return keys in ascending byte order page by page,
//! exactly as SQLite does (Redis's `SCAN` has no order and may repeat). Every operation that
//! touches both is one Lua script, so it is atomic on the server. Expiry is Redis's own for
//! values; the index's entries of expired keys are found through a second sorted set,
//! `<key_prefix>expiry` (members with a TTL, scored by when they expire), and dropped by every
//! write (a few each, in the same script) and by the upkeep task's sweep, so the index holds
//! about the live keys even for a plugin that never lists. Which Redis errors mean the store is
//! down is [`classify`]'s (a script or argument error never does). The connection is a reconnecting
//! `ConnectionManager`, connected lazily: a store whose server is down at start, or restarts,
//! answers `unavailable` until it is back and then works again by itself.

use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{ErrorKind, RedisError, Script, ServerErrorKind};

use super::{Fault, KvError, Page, Remaining, prefix_end};
use crate::config::StoreLimits;

/// Index entries examined per round of a listing, beyond the page itself, before giving the
/// caller a cursor to continue from: bounds the work of one call when many keys have expired.
const LIST_ROUNDS: u32 = 8;
/// Due entries of the expiry set each write examines (and drops from the index if their value
/// has expired), in its own script: more than the one entry a write can add, so the index sheds
/// expired keys faster than any steady TTL workload makes them.
const SWEEP_PER_WRITE: u32 = 2;
/// Due entries one round of the upkeep task's sweep examines (one short script each).
const SWEEP_BATCH: u32 = 256;
/// Rounds of the upkeep task's sweep per tick: bounds the server time it takes.
const SWEEP_ROUNDS: u32 = 16;

pub(super) struct RedisStore {
    name: String,
    conn: ConnectionManager,
    values: Vec<u8>,
    index: Vec<u8>,
    /// The sorted set of keys with a TTL, scored by their expiry (ms, the server's clock).
    expiry: Vec<u8>,
    /// The store's `timeout` (what a silent server's error reports).
    timeout: Duration,
    scripts: Scripts,
}

struct Scripts {
    set: Script,
    delete: Script,
    incr_ttl: Script,
    cas: Script,
    list: Script,
    sweep: Script,
}

impl Scripts {
    fn new() -> Scripts {
        // Every script: KEYS[1] = the value's key, KEYS[2] = the index, KEYS[3] = the expiry set;
        // ARGV: see each. The time is the server's (`TIME`), so the expiry set agrees with
        // Redis's own expiry whatever the clocks of the wasmgate machines say.
        const COMMON: &str = "
            local function now_ms()
              local t = redis.call('TIME')
              return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
            end
            local function put(key, value, ttl, member)
              if tonumber(ttl) > 0 then
                redis.call('SET', key, value, 'PX', ttl)
                redis.call('ZADD', KEYS[3], now_ms() + tonumber(ttl), member)
              else
                redis.call('SET', key, value)
                redis.call('ZREM', KEYS[3], member)
              end
              redis.call('ZADD', KEYS[2], 0, member)
            end
            -- Examines up to n entries of the expiry set that are due: an expired value leaves
            -- the index; one that lost its TTL leaves the expiry set; one given a later expiry
            -- is scored again. How many it examined.
            local function sweep(values, n)
              local now = now_ms()
              local due = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now, 'LIMIT', 0, n)
              for _, m in ipairs(due) do
                local pttl = redis.call('PTTL', values .. m)
                if pttl == -2 then
                  redis.call('ZREM', KEYS[2], m)
                  redis.call('ZREM', KEYS[3], m)
                elseif pttl == -1 then
                  redis.call('ZREM', KEYS[3], m)
                else
                  redis.call('ZADD', KEYS[3], now + pttl, m)
                end
              end
              return #due
            end";
        Scripts {
            // ARGV: value, ttl_ms (0: none), member, value-key prefix, sweep.
            set: Script::new(&format!(
                "{COMMON}
                put(KEYS[1], ARGV[1], ARGV[2], ARGV[3])
                sweep(ARGV[4], tonumber(ARGV[5]))
                return 1"
            )),
            // ARGV: member.
            delete: Script::new(
                "local n = redis.call('DEL', KEYS[1])
                redis.call('ZREM', KEYS[2], ARGV[1])
                redis.call('ZREM', KEYS[3], ARGV[1])
                return n",
            ),
            // ARGV: delta, member, value-key prefix, sweep, ttl_ms (0: none). INCRBY keeps an
            // expiry (and its entry in the expiry set) and refuses a non-integer before anything
            // is written; a key it created (EXISTS said 0: absent or expired) expires after
            // ttl_ms. The one increment script: a plain `incr` is this with no TTL.
            incr_ttl: Script::new(&format!(
                "{COMMON}
                local existed = redis.call('EXISTS', KEYS[1])
                local v = redis.call('INCRBY', KEYS[1], ARGV[1])
                redis.call('ZADD', KEYS[2], 0, ARGV[2])
                local ttl = tonumber(ARGV[5])
                if existed == 0 and ttl > 0 then
                  redis.call('PEXPIRE', KEYS[1], ttl)
                  redis.call('ZADD', KEYS[3], now_ms() + ttl, ARGV[2])
                end
                sweep(ARGV[3], tonumber(ARGV[4]))
                return v"
            )),
            // ARGV: expected_present ('1'/'0'), expected, new, ttl_ms, member, value-key prefix,
            // sweep.
            cas: Script::new(&format!(
                "{COMMON}
                local cur = redis.call('GET', KEYS[1])
                if ARGV[1] == '0' then
                  if cur then return 0 end
                elseif cur ~= ARGV[2] then
                  return 0
                end
                put(KEYS[1], ARGV[3], ARGV[4], ARGV[5])
                sweep(ARGV[6], tonumber(ARGV[7]))
                return 1"
            )),
            // KEYS[1] = the index, KEYS[2] = the expiry set; ARGV: min, max, fetch (page + 1),
            // value-key prefix, rounds. Returns {live members..., ''} when the index ran out, or
            // {live..., last examined} when the rounds ran out first (the caller continues from
            // there).
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
                      redis.call('ZREM', KEYS[2], m)
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
            // KEYS[1] = unused, KEYS[2] = the index, KEYS[3] = the expiry set; ARGV: value-key
            // prefix, batch.
            sweep: Script::new(&format!(
                "{COMMON}
                return sweep(ARGV[1], tonumber(ARGV[2]))"
            )),
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
        let mut expiry = key_prefix.as_bytes().to_vec();
        expiry.extend_from_slice(b"expiry");
        Ok(RedisStore {
            name: name.to_string(),
            conn,
            values,
            index,
            expiry,
            timeout: limits.timeout,
            scripts: Scripts::new(),
        })
    }

    fn value_key(&self, key: &[u8]) -> Vec<u8> {
        let mut k = self.values.clone();
        k.extend_from_slice(key);
        k
    }

    fn error(&self, e: RedisError) -> KvError {
        classify(&e).error(&self.name, e.to_string(), self.timeout)
    }

    #[cfg(test)]
    pub(super) async fn stored_members(&self) -> (u64, u64) {
        let mut c = self.conn.clone();
        let mut count = async |set: &[u8]| -> u64 {
            redis::cmd("ZCARD")
                .arg(set)
                .query_async(&mut c)
                .await
                .expect("ZCARD")
        };
        (count(&self.index).await, count(&self.expiry).await)
    }

    /// Examines due entries of the expiry set in rounds of [`SWEEP_BATCH`], at most
    /// [`SWEEP_ROUNDS`]; how many.
    pub(super) async fn sweep(&self) -> Result<u64, KvError> {
        let mut total = 0;
        for _ in 0..SWEEP_ROUNDS {
            let mut c = self.conn.clone();
            let n: u64 = self
                .scripts
                .sweep
                .key(&self.index)
                .key(&self.index)
                .key(&self.expiry)
                .arg(&self.values)
                .arg(SWEEP_BATCH)
                .invoke_async(&mut c)
                .await
                .map_err(|e| self.error(e))?;
            total += n;
            if n < u64::from(SWEEP_BATCH) {
                break;
            }
        }
        Ok(total)
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
            .key(&self.expiry)
            .arg(value)
            .arg(ttl_ms(ttl))
            .arg(key)
            .arg(&self.values)
            .arg(SWEEP_PER_WRITE)
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
            .key(&self.expiry)
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
        self.incr_with_ttl(key, delta, None).await
    }

    /// An increment's error: INCRBY's own refusal ("value is not an integer or out of range",
    /// also on overflow) is a fact about the value, not about the server.
    fn incr_error(&self, e: RedisError) -> KvError {
        if classify(&e) == Fault::Refusal {
            KvError::Invalid(
                "the value is not an integer (its decimal text), or the result overflows".into(),
            )
        } else {
            self.error(e)
        }
    }

    pub(super) async fn incr_with_ttl(
        &self,
        key: &[u8],
        delta: i64,
        ttl: Option<Duration>,
    ) -> Result<i64, KvError> {
        let mut c = self.conn.clone();
        self.scripts
            .incr_ttl
            .key(self.value_key(key))
            .key(&self.index)
            .key(&self.expiry)
            .arg(delta)
            .arg(key)
            .arg(&self.values)
            .arg(SWEEP_PER_WRITE)
            .arg(ttl_ms(ttl))
            .invoke_async::<i64>(&mut c)
            .await
            .map_err(|e| self.incr_error(e))
    }

    /// `PTTL`: -2 absent, -1 no expiry, else the milliseconds left, which Redis reports as 0
    /// in the last millisecond of a key it still serves: reported as 1, as SQLite would.
    pub(super) async fn ttl(&self, key: &[u8]) -> Result<Option<Remaining>, KvError> {
        let mut c = self.conn.clone();
        let pttl: i64 = redis::cmd("PTTL")
            .arg(self.value_key(key))
            .query_async(&mut c)
            .await
            .map_err(|e| self.error(e))?;
        Ok(match pttl {
            -1 => Some(Remaining::Forever),
            ms if ms >= 0 => Some(Remaining::Ms(ms.max(1))),
            _ => None,
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
            .key(&self.expiry)
            .arg(if expected.is_some() { "1" } else { "0" })
            .arg(expected.unwrap_or_default())
            .arg(new)
            .arg(ttl_ms(ttl))
            .arg(key)
            .arg(&self.values)
            .arg(SWEEP_PER_WRITE)
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
            .key(&self.expiry)
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

/// A TTL in milliseconds as the scripts take it: 0 for none, else rounded up (a sub-millisecond
/// TTL still expires), as SQLite's expiry is. The store has checked it against `max_ttl`, so it
/// fits; the saturation is never reached.
fn ttl_ms(ttl: Option<Duration>) -> u64 {
    ttl.filter(|t| !t.is_zero()).map_or(0, |t| {
        let ms = t.as_millis() + u128::from(!t.subsec_nanos().is_multiple_of(1_000_000));
        u64::try_from(ms).unwrap_or(u64::MAX)
    })
}

/// What a Redis error says about the store. A command that got no answer within the timeout is
/// silence; a lost or refused connection, an I/O error, a server that will not serve (loading,
/// read-only replica, cluster down, no permission, out of memory, authentication) is a
/// connectivity fault; an error reply about the call itself (`ERR` from a command or a script,
/// `WRONGTYPE`, an unexpected reply type) is a refusal: the server answered.
pub(super) fn classify(e: &RedisError) -> Fault {
    if e.is_timeout() {
        return Fault::Silence;
    }
    if e.is_io_error() || e.is_connection_refusal() || e.is_connection_dropped() {
        return Fault::Connectivity;
    }
    match e.kind() {
        ErrorKind::Server(
            ServerErrorKind::ResponseError
            | ServerErrorKind::ExecAbort
            | ServerErrorKind::NoScript
            | ServerErrorKind::NotBusy
            | ServerErrorKind::NoSub,
        )
        | ErrorKind::UnexpectedReturnType => Fault::Refusal,
        // A script of another client that will not yield: the server is there, and busy.
        ErrorKind::Extension if e.code() == Some("BUSY") => Fault::Contention,
        ErrorKind::Extension if e.code() == Some("OOM") => Fault::Connectivity,
        ErrorKind::Extension => Fault::Refusal,
        _ => Fault::Connectivity,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The error the client makes of a reply of `resp` (one RESP error line).
    fn reply(resp: &str) -> RedisError {
        let value = redis::parse_redis_value(resp.as_bytes()).expect("a RESP reply");
        value.extract_error().expect_err("an error reply")
    }

    #[test]
    fn only_connectivity_failures_are_faults_of_the_store() {
        let refusals = [
            "-ERR invalid expire time in 'set' command\r\n",
            "-ERR Error running script (call to f_0123): @user_script:3: ERR value is not an integer or out of range\r\n",
            "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n",
            "-NOSCRIPT No matching script.\r\n",
        ];
        for r in refusals {
            assert_eq!(classify(&reply(r)), Fault::Refusal, "{r}");
        }
        let down = [
            "-LOADING Redis is loading the dataset in memory\r\n",
            "-READONLY You can't write against a read only replica.\r\n",
            "-MASTERDOWN Link with MASTER is down\r\n",
            "-NOPERM this user has no permissions\r\n",
            "-OOM command not allowed when used memory > 'maxmemory'.\r\n",
        ];
        for r in down {
            assert_eq!(classify(&reply(r)), Fault::Connectivity, "{r}");
        }
        assert_eq!(
            classify(&reply("-BUSY Redis is busy running a script.\r\n")),
            Fault::Contention
        );
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        assert_eq!(classify(&refused.into()), Fault::Connectivity);
        let reset = std::io::Error::from(std::io::ErrorKind::ConnectionReset);
        assert_eq!(classify(&reset.into()), Fault::Connectivity);
        let timeout = std::io::Error::from(std::io::ErrorKind::TimedOut);
        assert_eq!(classify(&timeout.into()), Fault::Silence);
        let auth = RedisError::from((ErrorKind::AuthenticationFailed, "WRONGPASS"));
        assert_eq!(classify(&auth), Fault::Connectivity);
    }
}
