//! [`AsyncRedisStore`]: the fleet's store for the async client.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use basiq_core::policy::fleet::{AsyncFleetStore, FleetAnswer, FleetOp};
use basiq_core::policy::token::StoreError;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use crate::{answer, prepare, store_error, Prepared};

/// Runs [`FleetOp`]s through redis-rs's `ConnectionManager`: one multiplexed connection shared by
/// every task, reconnecting by itself after Redis restarts. It is created on first use (a Redis
/// that is down at start-up is retried on the next operation), and every operation is bounded
/// by the timeout, so a slow Redis costs a request at most that much once per token lifetime.
pub struct AsyncRedisStore {
    client: redis::Client,
    timeout: Duration,
    manager: tokio::sync::Mutex<Option<ConnectionManager>>,
    round_trips: Arc<AtomicU64>,
}

impl fmt::Debug for AsyncRedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsyncRedisStore")
            .field(
                "addr",
                &self.client.get_connection_info().addr().to_string(),
            )
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl AsyncRedisStore {
    pub(crate) fn new(
        client: redis::Client,
        timeout: Duration,
        round_trips: Arc<AtomicU64>,
    ) -> Self {
        Self {
            client,
            timeout,
            manager: tokio::sync::Mutex::new(None),
            round_trips,
        }
    }

    async fn manager(&self, op: &FleetOp) -> Result<ConnectionManager, StoreError> {
        let mut slot = self.manager.lock().await;
        if let Some(manager) = slot.as_ref() {
            return Ok(manager.clone());
        }
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(self.timeout))
            .set_response_timeout(Some(self.timeout))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(500));
        let manager = tokio::time::timeout(
            self.timeout.saturating_mul(2),
            self.client.get_connection_manager_with_config(config),
        )
        .await
        .map_err(|_| StoreError::new(format!("redis {}: connecting timed out", op.name())))?
        .map_err(|e| store_error(op, &e))?;
        *slot = Some(manager.clone());
        Ok(manager)
    }
}

#[async_trait::async_trait]
impl AsyncFleetStore for AsyncRedisStore {
    async fn execute(&self, op: &FleetOp) -> Result<FleetAnswer, StoreError> {
        let mut manager = self.manager(op).await?;
        self.round_trips.fetch_add(1, Ordering::Relaxed);
        let reply = async {
            match prepare(op) {
                Prepared::Cmd(cmd) => cmd.query_async::<redis::Value>(&mut manager).await,
                Prepared::Script(invocation) => {
                    invocation.invoke_async::<redis::Value>(&mut manager).await
                }
            }
        };
        match tokio::time::timeout(self.timeout, reply).await {
            Ok(Ok(reply)) => answer(op, reply),
            Ok(Err(e)) => Err(store_error(op, &e)),
            Err(_) => Err(StoreError::new(format!(
                "redis {} on {}: timed out after {:?}",
                op.name(),
                op.key(),
                self.timeout
            ))),
        }
    }
}
