//! What both client builders collect, and how it becomes an [`ExecutorConfig`].

use std::sync::Arc;
use std::time::Duration;

use std::fmt;

use basiq_core::auth::{parse_base_url, ExecutorConfig, DEFAULT_BASE_URL};
use basiq_core::clock::{Clock, SystemClock};
use basiq_core::refresh::{MemoryLedger, RefreshPolicy};
use basiq_core::retry::RetryPolicy;
use basiq_core::secret::ApiKey;
use basiq_core::token::{TokenPolicy, TokenStore};
use basiq_core::Error;
use url::Url;

use crate::flows::{Policies, SharedRefreshLedger, DEFAULT_MAX_REFRESHES_PER_MINUTE};

/// Default connect timeout of the built-in transports.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default request timeout of the built-in transports (see the builders' `timeout`): both apply it
/// to the whole request, from connecting until the response body has been read. A call's
/// retries and waits are bounded by the builders' `call_deadline` on top.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) api_key: Option<ApiKey>,
    pub(crate) base_url: Option<String>,
    pub(crate) clock: Option<Arc<dyn Clock>>,
    pub(crate) token_policy: TokenPolicy,
    pub(crate) retry_policy: RetryPolicy,
    pub(crate) connect_timeout: Duration,
    pub(crate) timeout: Duration,
    pub(crate) refresh_policy: RefreshPolicy,
    pub(crate) refresh_ledger: Option<LedgerHandle>,
    pub(crate) consent_base_url: Option<String>,
    pub(crate) max_refreshes_per_minute: u32,
    pub(crate) token_store: Option<Arc<dyn TokenStore>>,
    pub(crate) max_response_bytes: u64,
    pub(crate) call_deadline: Option<Duration>,
    pub(crate) allow_insecure_http: bool,
    pub(crate) page_limits: basiq_core::pagination::PageLimits,
    pub(crate) freshness_ledger: Option<Arc<dyn basiq_core::freshness::FreshnessLedger>>,
}

/// A [`SharedRefreshLedger`] that prints as a name (the trait has no `Debug`).
#[derive(Clone)]
pub(crate) struct LedgerHandle(pub(crate) SharedRefreshLedger);

impl fmt::Debug for LedgerHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RefreshLedger")
    }
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            api_key: None,
            base_url: None,
            clock: None,
            token_policy: TokenPolicy::default(),
            retry_policy: RetryPolicy::default(),
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            timeout: DEFAULT_REQUEST_TIMEOUT,
            refresh_policy: RefreshPolicy::default(),
            refresh_ledger: None,
            consent_base_url: None,
            max_refreshes_per_minute: DEFAULT_MAX_REFRESHES_PER_MINUTE,
            token_store: None,
            max_response_bytes: basiq_core::auth::DEFAULT_MAX_RESPONSE_BYTES,
            call_deadline: Some(basiq_core::auth::DEFAULT_CALL_DEADLINE),
            allow_insecure_http: false,
            page_limits: basiq_core::pagination::PageLimits::default(),
            freshness_ledger: None,
        }
    }
}

impl Settings {
    pub(crate) fn config(&self) -> Result<ExecutorConfig, Error> {
        let api_key = match &self.api_key {
            Some(key) if !key.is_empty() => key.clone(),
            Some(_) => return Err(Error::config("the API key is empty")),
            None => {
                return Err(Error::config(
                    "an API key is required (builder().api_key(..))",
                ))
            }
        };
        let base_url = parse_base_url(self.base_url.as_deref().unwrap_or(DEFAULT_BASE_URL))?;
        let clock = self
            .clock
            .clone()
            .unwrap_or_else(|| Arc::new(SystemClock) as Arc<dyn Clock>);
        let mut config = ExecutorConfig::new(base_url, api_key)
            .with_clock(clock)
            .with_token_policy(self.token_policy)
            .with_retry_policy(self.retry_policy)
            .with_max_response_bytes(self.max_response_bytes)
            .with_call_deadline(self.call_deadline)
            .with_insecure_http(self.allow_insecure_http);
        if let Some(store) = &self.token_store {
            config = config.with_token_store(Arc::clone(store));
        }
        config.validate()?;
        Ok(config)
    }

    /// What a client builder's `build` needs, in this order of checks: the executor's
    /// configuration, the transport (the host's `custom` one, or `default(connect_timeout,
    /// timeout)`), and the facade's policies.
    pub(crate) fn assemble<T: ?Sized>(
        &self,
        custom: Option<Arc<T>>,
        default: impl FnOnce(Duration, Duration) -> Result<Arc<T>, Error>,
    ) -> Result<(ExecutorConfig, Arc<T>, Policies), Error> {
        let config = self.config()?;
        let transport = match custom {
            Some(transport) => transport,
            None => default(self.connect_timeout, self.timeout)?,
        };
        let policies = self.policies()?;
        Ok((config, transport, policies))
    }

    /// The facade's policies; a bad consent URL is an [`Error::Config`] at build time.
    pub(crate) fn policies(&self) -> Result<Policies, Error> {
        let consent_base = match &self.consent_base_url {
            None => None,
            Some(raw) => {
                let url = Url::parse(raw)
                    .map_err(|e| Error::config(format!("consent URL {raw:?}: {e}")))?;
                if !matches!(url.scheme(), "http" | "https") || url.cannot_be_a_base() {
                    return Err(Error::config(format!(
                        "consent URL {raw:?} is not an http(s) URL"
                    )));
                }
                Some(url)
            }
        };
        if self.max_refreshes_per_minute == 0 {
            return Err(Error::config("max_refreshes_per_minute must be at least 1"));
        }
        Ok(Policies {
            refresh_policy: self.refresh_policy,
            ledger: match &self.refresh_ledger {
                Some(handle) => handle.0.clone(),
                None => Arc::new(std::sync::Mutex::new(MemoryLedger::new())),
            },
            consent_base,
            max_refreshes_per_minute: self.max_refreshes_per_minute,
            page_limits: self.page_limits,
            freshness: self.freshness_ledger.clone(),
        })
    }
}

/// The `ClientBuilder` struct of a client and its `Debug` (never the API key), given the client's
/// transport trait and sleep function types.
macro_rules! client_builder {
    ($(#[$meta:meta])* transport: $transport:ty, sleep: $sleep:ty, fleet: $fleet:ty $(,)?) => {
        $(#[$meta])*
        #[derive(Clone, Default)]
        #[must_use = "a builder does nothing until `build()`"]
        pub struct ClientBuilder {
            settings: $crate::settings::Settings,
            transport: Option<std::sync::Arc<$transport>>,
            sleep: Option<std::sync::Arc<$sleep>>,
            fleet: Option<$fleet>,
        }

        impl std::fmt::Debug for ClientBuilder {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct("ClientBuilder")
                    .field("settings", &self.settings)
                    .field("transport", &self.transport)
                    .field("sleep", &self.sleep.as_ref().map(|_| "custom"))
                    .field("fleet", &self.fleet)
                    .finish()
            }
        }
    };
}

pub(crate) use client_builder;

/// Builder methods shared by both client builders (the only difference is the transport type).
macro_rules! builder_methods {
    () => {
        /// The API key, exactly as Basiq's dashboard shows it. Required.
        pub fn api_key(mut self, key: impl Into<$crate::secret::ApiKey>) -> Self {
            self.settings.api_key = Some(key.into());
            self
        }

        /// The API root. Defaults to `https://au-api.basiq.io`; point it at an emulator
        /// (`basiq_mock::MockServer::url()`) in tests.
        pub fn base_url(mut self, url: impl Into<String>) -> Self {
            self.settings.base_url = Some(url.into());
            self
        }

        /// Where the client reads `now` for token lifetimes. Defaults to the system clock; pass
        /// a [`ManualClock`]($crate::clock::ManualClock) to drive virtual time in tests.
        pub fn clock(mut self, clock: impl $crate::clock::Clock + 'static) -> Self {
            self.settings.clock = Some(std::sync::Arc::new(clock));
            self
        }

        /// Where the server token is shared with other processes, so a whole fleet
        /// authenticates once per token lifetime (Basiq: "cache it for global use"). Defaults
        /// to a process-local [`MemoryTokenStore`]($crate::token::MemoryTokenStore).
        ///
        /// Inside its single-flight fetch gate the client first asks the store for a token that
        /// is valid beyond the refresh-ahead margin (and is not one Basiq just rejected), and
        /// only otherwise fetches one and saves it. Store errors are logged (never the token)
        /// and never fail a request: the client fetches a token itself. The store is called
        /// about once per token lifetime, synchronously — keep it fast (Redis, memcached, a
        /// file) or bound it with a short timeout.
        ///
        /// Two clients sharing one store (standing in for two processes sharing Redis):
        ///
        /// ```
        /// use std::sync::{Arc, Mutex};
        /// use basiq::token::{StoreError, StoredToken, TokenStore};
        ///
        /// #[derive(Debug, Default)]
        /// struct SharedSlot(Mutex<Option<StoredToken>>);
        ///
        /// impl TokenStore for SharedSlot {
        ///     fn load(&self) -> Result<Option<StoredToken>, StoreError> {
        ///         let slot = self.0.lock().map_err(|_| StoreError::new("poisoned"))?;
        ///         Ok(slot.clone())
        ///     }
        ///     fn save(&self, token: &StoredToken) -> Result<(), StoreError> {
        ///         let mut slot = self.0.lock().map_err(|_| StoreError::new("poisoned"))?;
        ///         *slot = Some(token.clone());
        ///         Ok(())
        ///     }
        /// }
        ///
        /// // `server`: the emulator, `basiq_mock::MockServer::start()`.
        /// # let server = basiq_mock::MockServer::start();
        /// let store: Arc<dyn TokenStore> = Arc::new(SharedSlot::default());
        /// let process = || {
        ///     basiq::blocking::Client::builder()
        ///         .api_key(server.api_key())
        ///         .base_url(server.url())
        ///         .token_store(store.clone())
        ///         .build()
        /// };
        /// let (a, b) = (process()?, process()?);
        /// let new_user = || basiq::models::NewUser {
        ///     mobile: Some("+61410888666".into()),
        ///     ..Default::default()
        /// };
        /// a.users().create(new_user())?;
        /// b.users().create(new_user())?;
        /// assert_eq!(server.stats().token_requests, 1); // b used a's token
        /// # Ok::<(), basiq::Error>(())
        /// ```
        pub fn token_store(mut self, store: std::sync::Arc<dyn $crate::token::TokenStore>) -> Self {
            self.settings.token_store = Some(store);
            self
        }

        /// When to refresh the server token (default: up to 60 s ahead, capped at 1/20 of its
        /// lifetime).
        pub fn token_policy(mut self, policy: $crate::token::TokenPolicy) -> Self {
            self.settings.token_policy = policy;
            self
        }

        /// When to repeat failed *idempotent* requests (transport errors, 429, 5xx) — default
        /// [`RetryPolicy::default`]($crate::retry::RetryPolicy): 4 attempts, jittered backoff,
        /// a client-wide budget. [`RetryPolicy::never`]($crate::retry::RetryPolicy::never) turns
        /// retries off. Non-idempotent operations are never repeated, whatever the policy.
        pub fn retry_policy(mut self, policy: $crate::retry::RetryPolicy) -> Self {
            self.settings.retry_policy = policy;
            self
        }

        /// When [`connections().refresh`](Connections::refresh) may send a refresh. Default
        /// [`RefreshPolicy::default`]($crate::refresh::RefreshPolicy): at most once per 24 h per
        /// connection and 20 a day for open banking — Basiq asks to refresh *rarely*, because
        /// banks lock users out (or block Basiq) when refreshed too often. Lower `min_interval`
        /// only for a user-initiated "refresh now".
        pub fn refresh_policy(mut self, policy: $crate::refresh::RefreshPolicy) -> Self {
            self.settings.refresh_policy = policy;
            self
        }

        /// Where refreshes are counted per connection per UTC day (Basiq: 20 a day for open
        /// banking). Default: one in-memory [`MemoryLedger`]($crate::refresh::MemoryLedger)
        /// shared by the client's clones; pass a ledger over a shared store so a fleet keeps
        /// one count.
        pub fn refresh_ledger(mut self, ledger: $crate::SharedRefreshLedger) -> Self {
            self.settings.refresh_ledger = Some($crate::settings::LedgerHandle(ledger));
            self
        }

        /// The freshness ledger the guarded [`refresh`](Connections::refresh) consults first:
        /// a connection Basiq refreshed within the policy's `min_interval` (as its webhooks said,
        /// recorded by a [`WebhookReceiver`]($crate::webhooks::WebhookReceiver) sharing this
        /// ledger) is `Skipped(RefreshedByBasiq)` without any request. Default: none.
        pub fn freshness_ledger(
            mut self,
            ledger: std::sync::Arc<dyn $crate::freshness::FreshnessLedger>,
        ) -> Self {
            self.settings.freshness_ledger = Some(ledger);
            self
        }

        /// The most refreshes [`plan_refreshes`](Connections::plan_refreshes) puts in any 60
        /// seconds (default [`DEFAULT_MAX_REFRESHES_PER_MINUTE`]($crate::DEFAULT_MAX_REFRESHES_PER_MINUTE)):
        /// Basiq warns that bulk refreshes get users locked out or Basiq blocked.
        pub fn max_refreshes_per_minute(mut self, max: u32) -> Self {
            self.settings.max_refreshes_per_minute = max;
            self
        }

        /// Basiq's Consent UI address (default [`DEFAULT_CONSENT_URL`]($crate::DEFAULT_CONSENT_URL));
        /// point it at the emulator's `/consent/home` in tests.
        pub fn consent_base_url(mut self, url: impl Into<String>) -> Self {
            self.settings.consent_base_url = Some(url.into());
            self
        }

        /// Connect timeout of the built-in transport (ignored with a custom transport).
        pub fn connect_timeout(mut self, timeout: std::time::Duration) -> Self {
            self.settings.connect_timeout = timeout;
            self
        }

        /// Request timeout of the built-in transport (ignored with a custom transport); default
        /// [`DEFAULT_REQUEST_TIMEOUT`]($crate::DEFAULT_REQUEST_TIMEOUT). Both clients bound the
        /// whole request with it, from connecting until the response body has been read (a
        /// slowly dripping body included).
        pub fn timeout(mut self, timeout: std::time::Duration) -> Self {
            self.settings.timeout = timeout;
            self
        }

        /// How long one call may take in all — every attempt, backoff and `Retry-After` wait,
        /// and reading a slow body — default
        /// [`DEFAULT_CALL_DEADLINE`]($crate::auth::DEFAULT_CALL_DEADLINE) (150 s). No retry is
        /// started whose wait would end past it, and each request is given only what is left
        /// of it. `None` leaves calls bounded by the retry policy and [`timeout`](Self::timeout)
        /// alone.
        pub fn call_deadline(mut self, deadline: Option<std::time::Duration>) -> Self {
            self.settings.call_deadline = deadline;
            self
        }

        /// The largest response body accepted, default
        /// [`DEFAULT_MAX_RESPONSE_BYTES`]($crate::auth::DEFAULT_MAX_RESPONSE_BYTES) (64 MiB).
        /// A larger one fails with a transport error of kind
        /// [`TooLarge`]($crate::error::TransportErrorKind::TooLarge), never retried.
        pub fn max_response_bytes(mut self, max: u64) -> Self {
            self.settings.max_response_bytes = max;
            self
        }

        /// How far the pagers (`transactions().all` / `iter`, the user's jobs) follow
        /// `links.next` before stopping with [`Error::PageLimit`]($crate::Error::PageLimit).
        /// Default [`PageLimits::new`]($crate::pagination::PageLimits): derived from the first
        /// page's `size` (what the list says it holds, plus a page of slack), else
        /// [`DEFAULT_MAX_PAGES`]($crate::pagination::DEFAULT_MAX_PAGES). An empty page always
        /// ends a walk.
        pub fn page_limits(mut self, limits: $crate::pagination::PageLimits) -> Self {
            self.settings.page_limits = limits;
            self
        }

        /// Allows an `http://` base URL for a host that is not a loopback address (`localhost`,
        /// `127.0.0.0/8`, `[::1]` are always allowed, for emulators). Off by default: a typo
        /// would send the API key and tokens in clear. Only for a TLS-terminating proxy on a
        /// trusted network.
        pub fn allow_insecure_http(mut self, allow: bool) -> Self {
            self.settings.allow_insecure_http = allow;
            self
        }
    };
}

pub(crate) use builder_methods;
