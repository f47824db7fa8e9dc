//! What both client builders collect, and how it becomes an [`ExecutorConfig`].

use std::sync::Arc;
use std::time::Duration;

use basiq_core::auth::{parse_base_url, ExecutorConfig, DEFAULT_BASE_URL};
use basiq_core::clock::{Clock, SystemClock};
use basiq_core::retry::RetryPolicy;
use basiq_core::secret::ApiKey;
use basiq_core::token::TokenPolicy;
use basiq_core::Error;

/// Default connect timeout of the built-in transports.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default whole-request timeout of the built-in transports.
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
        let config = ExecutorConfig::new(base_url, api_key)
            .with_clock(clock)
            .with_token_policy(self.token_policy)
            .with_retry_policy(self.retry_policy);
        config.validate()?;
        Ok(config)
    }
}

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

        /// Connect timeout of the built-in transport (ignored with a custom transport).
        pub fn connect_timeout(mut self, timeout: std::time::Duration) -> Self {
            self.settings.connect_timeout = timeout;
            self
        }

        /// Whole-request timeout of the built-in transport (ignored with a custom transport).
        pub fn timeout(mut self, timeout: std::time::Duration) -> Self {
            self.settings.timeout = timeout;
            self
        }
    };
}

pub(crate) use builder_methods;
