//! The queue's Lua scripts, run by `EVALSHA` (only the SHA1 and the
//! arguments go over the wire) and by `EVAL` where the server does not know
//! them (restarted, another cluster node, or `SCRIPT` refused), which also
//! caches them there.

use redis::aio::ConnectionLike;
use redis::{FromRedisValue, RedisError};

/// Adds only when the stream holds fewer than ARGV[1] entries.
pub(super) const ADD_IF_ROOM: &str = "if redis.call('XLEN', KEYS[1]) >= tonumber(ARGV[1]) then return false end \
return redis.call('XADD', KEYS[1], '*', 'b', ARGV[2])";

/// Acknowledges ARGV[2..] in group ARGV[1] and deletes them, in one step
/// (one command instead of `MULTI`, `XACK`, `XDEL`, `EXEC`). In slices, as
/// `unpack` has a limit on how many values it returns.
pub(super) const ACK_DEL: &str = "local n = 0 \
for i = 2, #ARGV, 1000 do \
local j = math.min(i + 999, #ARGV) \
n = n + redis.call('XACK', KEYS[1], ARGV[1], unpack(ARGV, i, j)) \
redis.call('XDEL', KEYS[1], unpack(ARGV, i, j)) \
end \
return n";

/// A script and its SHA1 (empty when `SCRIPT LOAD` was refused).
pub(super) struct Script {
    pub text: &'static str,
    pub sha: String,
}

impl Script {
    /// Loads `text`; a server (or proxy, or ACL) that refuses `SCRIPT`
    /// still runs `EVAL`, so a refusal leaves the SHA1 empty.
    pub async fn load<C: ConnectionLike>(conn: &mut C, text: &'static str) -> Script {
        match redis::cmd("SCRIPT")
            .arg("LOAD")
            .arg(text)
            .query_async::<String>(conn)
            .await
        {
            Ok(sha) => Script { text, sha },
            Err(e) => {
                tracing::warn!(error = %e, "redis queue: SCRIPT LOAD refused; sending the script text with every call (EVAL)");
                Script {
                    text,
                    sha: String::new(),
                }
            }
        }
    }

    /// Runs the script on one key with `args` (each an argument).
    pub async fn run<C, T, F>(&self, conn: &mut C, key: &str, args: F) -> Result<T, RedisError>
    where
        C: ConnectionLike + Send,
        T: FromRedisValue,
        F: Fn(&mut redis::Cmd) + Send + Sync,
    {
        let cmd = |name: &str, script: &str| {
            let mut c = redis::cmd(name);
            c.arg(script).arg(1).arg(key);
            args(&mut c);
            c
        };
        if !self.sha.is_empty() {
            match cmd("EVALSHA", &self.sha).query_async(conn).await {
                Err(e) if e.code() == Some("NOSCRIPT") => {}
                r => return r,
            }
        }
        cmd("EVAL", self.text).query_async(conn).await
    }
}
