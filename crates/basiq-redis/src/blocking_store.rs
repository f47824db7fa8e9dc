//! [`BlockingRedisStore`]: the fleet's store for the blocking client (no tokio).

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use basiq_core::policy::fleet::{FleetAnswer, FleetOp, FleetStore};
use basiq_core::policy::token::StoreError;

use crate::{answer, prepare, store_error, Prepared};

/// Runs [`FleetOp`]s on one plain Redis connection with connect, read and write timeouts. The
/// connection is opened on first use and dropped after any error, so the next operation
/// reconnects (Redis restarted or back after an outage). Operations from several threads queue
/// on the connection's mutex; they take well under a millisecond each.
pub struct BlockingRedisStore {
    client: redis::Client,
    timeout: Duration,
    connection: Mutex<Option<redis::Connection>>,
    round_trips: Arc<AtomicU64>,
}

impl fmt::Debug for BlockingRedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BlockingRedisStore")
            .field(
                "addr",
                &self.client.get_connection_info().addr().to_string(),
            )
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl BlockingRedisStore {
    pub(crate) fn new(
        client: redis::Client,
        timeout: Duration,
        round_trips: Arc<AtomicU64>,
    ) -> Self {
        Self {
            client,
            timeout,
            connection: Mutex::new(None),
            round_trips,
        }
    }

    fn connect(&self) -> Result<redis::Connection, redis::RedisError> {
        let connection = self.client.get_connection_with_timeout(self.timeout)?;
        connection.set_read_timeout(Some(self.timeout))?;
        connection.set_write_timeout(Some(self.timeout))?;
        Ok(connection)
    }
}

impl FleetStore for BlockingRedisStore {
    fn execute(&self, op: &FleetOp) -> Result<FleetAnswer, StoreError> {
        let mut slot = self
            .connection
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut connection = match slot.take() {
            Some(connection) => connection,
            None => self.connect().map_err(|e| store_error(op, &e))?,
        };
        self.round_trips.fetch_add(1, Ordering::Relaxed);
        let reply: Result<redis::Value, redis::RedisError> = match prepare(op) {
            Prepared::Cmd(cmd) => cmd.query(&mut connection),
            Prepared::Script(invocation) => invocation.invoke(&mut connection),
        };
        match reply {
            Ok(reply) => {
                *slot = Some(connection);
                answer(op, reply)
            }
            // Dropped: the next operation reconnects.
            Err(e) => Err(store_error(op, &e)),
        }
    }
}
