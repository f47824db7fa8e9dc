//! The blocking client, `basiq::blocking::Client` (feature `blocking`).
//!
//! Built on ureq, with no async runtime inside: it can be called from plain threads and also from
//! a thread owned by an async host without panicking. Same resources and semantics as the async
//! [`Client`](crate::Client) — single-flight token, one re-authentication, ids on every error.

use std::sync::Arc;
use std::time::Duration;

use basiq_core::clock::Clock as _;
use basiq_core::engine::operation::Operation;
use basiq_core::engine::transport::BlockingTransport;
use basiq_core::id::{IntoId, UserId};
use basiq_core::secret::{AccessToken, ApiKey};
use basiq_core::Error;

pub use basiq_http_blocking::{BlockingExecutor, UreqTransport, DEFAULT_IDLE_CONNECTIONS};

pub use crate::blocking_pages::{Follow, Items, Pages};
use crate::flows::Policies;
use crate::resources::resources;
use crate::settings::{builder_methods, client_builder};

/// The blocking Basiq client.
///
/// Cheap to clone (an `Arc` inside); clones share one token cache and one connection pool, so
/// threads authenticate once per token lifetime. `Debug` never shows the API key or a token.
#[derive(Debug, Clone)]
pub struct Client {
    executor: BlockingExecutor,
    policies: Arc<Policies>,
}

impl Client {
    /// A builder; only [`api_key`](ClientBuilder::api_key) is required.
    pub fn builder() -> ClientBuilder {
        ClientBuilder::default()
    }

    /// A client over an executor built by hand (e.g. with its own retry sleep), with the default
    /// refresh policy, an in-memory refresh ledger and Basiq's Consent UI address. Following a
    /// job waits with the executor's sleep and reads the executor's clock.
    pub fn from_executor(executor: BlockingExecutor) -> Self {
        Self {
            executor,
            policies: Arc::new(Policies::default()),
        }
    }

    /// A client for Basiq's production API with default settings.
    pub fn new(api_key: impl Into<ApiKey>) -> Result<Self, Error> {
        Self::builder().api_key(api_key).build()
    }

    /// Runs any operation (see [`operations`](crate::operations)). Errors carry its ids.
    pub fn execute<O: Operation>(&self, op: O) -> Result<O::Output, Error> {
        self.executor.execute(op)
    }

    /// A `CLIENT_ACCESS` token bound to `user_id` for the Consent UI. Fetched fresh each time,
    /// never cached, separate from the server token. Never log it.
    pub fn client_token(&self, user_id: impl IntoId<UserId>) -> Result<AccessToken, Error> {
        let user_id = crate::id::IntoId::into_id(user_id)?;
        self.executor.client_token(user_id)
    }

    /// The executor underneath.
    pub fn executor(&self) -> &BlockingExecutor {
        &self.executor
    }

    pub(crate) fn policies(&self) -> &Policies {
        &self.policies
    }

    /// The fleet's configuration when the client shares state with other instances.
    pub(crate) fn fleet_config(&self) -> Option<&basiq_core::policy::fleet::FleetConfig> {
        self.executor.fleet().map(|fleet| &fleet.config)
    }

    /// Runs a fleet attempt to its verdict on the fleet's store (`Ok` without a fleet).
    pub(crate) fn drive_attempt(
        &self,
        attempt: &mut basiq_core::policy::fleet::FleetAttempt,
    ) -> Result<(), basiq_core::policy::fleet::AttemptRefusal> {
        use basiq_core::policy::fleet::AttemptStep;
        let Some(fleet) = self.executor.fleet() else {
            return Ok(());
        };
        let mut step = attempt.start();
        loop {
            step = match step {
                AttemptStep::Store(op) => attempt.on_store(fleet.store.execute(&op)),
                AttemptStep::Proceed => return Ok(()),
                AttemptStep::Refused(refusal) => return Err(refusal),
            };
        }
    }

    /// Tells the fleet's store how an attempt ended (errors are logged: claims lapse and
    /// counters expire by themselves).
    pub(crate) fn settle_attempt(
        &self,
        attempt: &basiq_core::policy::fleet::FleetAttempt,
        result: &basiq_core::policy::fleet::AttemptResult,
    ) {
        let Some(fleet) = self.executor.fleet() else {
            return;
        };
        for op in attempt.settle(result) {
            if let Err(e) = fleet.store.execute(&op) {
                ::tracing::warn!(error = %e, op = op.name(), key = %op.key(), "updating the fleet's attempt state failed");
            }
        }
    }

    /// The client's `now`: its [`Clock`](crate::clock::Clock) (the system clock, or the
    /// [`ManualClock`](crate::clock::ManualClock) given to the builder). Every rule the helpers
    /// apply reads this time, so pass it to [`plan_refreshes`](Connections::plan_refreshes)
    /// and to your own checks too.
    #[must_use]
    pub fn now(&self) -> crate::OffsetDateTime {
        self.executor.clock().now()
    }

    /// Waits with the executor's sleep (virtual in tests that inject one).
    pub(crate) fn sleep_for(&self, duration: Duration) {
        self.executor.sleep(duration);
    }
}

/// Runs a call inside a span.
macro_rules! traced {
    ($span:expr, $call:expr) => {
        $span.in_scope(|| $call)
    };
}

resources!(client = Client, [], [], traced = traced);
crate::endpoints::generated_resources!(client = Client, [], []);
crate::statement_upload::statement_upload!(client = Client, [], []);

client_builder! {
    /// Builds a blocking [`Client`]. `Debug` never shows the API key.
    transport: dyn BlockingTransport,
    sleep: dyn Fn(Duration) + Send + Sync,
    fleet: basiq_core::policy::fleet::BlockingFleet,
}

impl ClientBuilder {
    builder_methods!();

    /// Shares Basiq's per-application state with the app's other instances (fleet mode): one
    /// server token per lifetime for the whole fleet, one daily refresh quota per connection,
    /// one running attempt per connection or user and institution. Usually
    /// `basiq_redis::RedisFleet::connect(..)?.blocking_fleet()?`. The
    /// fleet's store is consulted only when the process's own state cannot answer; its errors
    /// are logged and never fail a request.
    pub fn fleet(mut self, fleet: basiq_core::policy::fleet::BlockingFleet) -> Self {
        self.fleet = Some(fleet);
        self
    }

    /// Sends requests through the host's own transport (e.g. [`UreqTransport::with_agent`]).
    pub fn transport(mut self, transport: impl BlockingTransport + 'static) -> Self {
        self.transport = Some(Arc::new(transport));
        self
    }

    /// How the client waits — between retries and between polls in
    /// [`jobs().wait`](Jobs::wait). Default `std::thread::sleep`. Tests make it advance the
    /// [`ManualClock`](crate::clock::ManualClock) shared with the emulator instead:
    ///
    /// ```
    /// use basiq::clock::ManualClock;
    /// let clock = ManualClock::starting_now();
    /// let tick = clock.clone();
    /// let builder = basiq::blocking::Client::builder()
    ///     .clock(clock)
    ///     .sleep(move |d| tick.advance(d));
    /// # let _ = builder;
    /// ```
    pub fn sleep(mut self, sleep: impl Fn(Duration) + Send + Sync + 'static) -> Self {
        self.sleep = Some(Arc::new(sleep));
        self
    }

    /// Builds the client. Fails with [`Error::Config`] when the API key is missing or empty or
    /// the base URL is not an http(s) URL — before any request is made.
    pub fn build(self) -> Result<Client, Error> {
        let (config, transport, policies) = self.settings.assemble(
            self.transport,
            |connect, request| -> Result<Arc<dyn BlockingTransport>, Error> {
                Ok(Arc::new(UreqTransport::with_timeouts(connect, request)))
            },
        )?;
        let mut executor = BlockingExecutor::in_fleet(config, transport, self.fleet)?;
        if let Some(sleep) = self.sleep {
            executor = executor.with_sleep(move |d| sleep(d));
        }
        Ok(Client {
            executor,
            policies: Arc::new(policies),
        })
    }
}
