//! Following Basiq's `links.next`: the next page of a list, without leaking the token.
//!
//! Basiq paginates lists (transactions beyond 500, basiq-api.md §7) with an opaque cursor inside an
//! **absolute** `links.next` URL. Following it means sending the bearer token to whatever URL the
//! response named, so [`NextPage::new`] refuses a link whose scheme, host or port differ from the
//! API base: a tampered or misconfigured response can never make the SDK hand the server token
//! to another origin. A relative link is joined to the base.
//!
//! [`Page`] is implemented by every list model that carries `links.next`, so a caller (or the
//! `basiq` facade) can walk pages of any list the same way.
//!
//! ```
//! use basiq_core::api::models::TransactionList;
//! use basiq_core::policy::pagination::{NextPage, Page};
//! use url::Url;
//!
//! let base = Url::parse("https://au-api.basiq.io")?;
//! let page: TransactionList = serde_json::from_str(
//!     r#"{"type":"list","data":[],"links":{"next":"https://au-api.basiq.io/users/u1/transactions?next=bf1"}}"#,
//! )?;
//! let next: Option<NextPage<TransactionList>> = page.next_page(&base)?;
//! assert_eq!(next.unwrap().url().as_str(), "https://au-api.basiq.io/users/u1/transactions?next=bf1");
//!
//! // Another origin is refused before any request exists.
//! assert!(NextPage::<TransactionList>::new(&base, "https://evil.example/steal?next=1").is_err());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::HashSet;
use std::fmt;
use std::hash::{BuildHasher, RandomState};
use std::marker::PhantomData;

use http::Method;
use serde::de::DeserializeOwned;
use url::Url;

use crate::api::models::{AccountList, ConnectionList, JobList, TransactionList};
use crate::engine::operation::{self, ApiBase, Operation};
use crate::engine::transport::{HttpRequest, HttpResponse};
use crate::error::{Error, ErrorContext};

/// `GET <links.next>`: the next page of a list, read as `T` (e.g. [`TransactionList`]).
///
/// Idempotent (a GET). Build it with [`NextPage::new`] or [`Page::next_page`], which refuse a
/// link to another origin.
pub struct NextPage<T> {
    url: Url,
    context: ErrorContext,
    // `fn() -> T`: the operation produces a T but holds none, so it is Send + Sync for any T.
    output: PhantomData<fn() -> T>,
}

impl<T> NextPage<T> {
    /// The request for `next` (absolute, or relative to `base`).
    ///
    /// Refused with [`Error::InvalidInput`] when `next` does not parse, carries credentials
    /// (`user:pass@`), or points at another scheme, host or port than `base`: the executor
    /// attaches the bearer token to this request, and it must never reach another origin.
    pub fn new(base: &Url, next: &str) -> Result<Self, Error> {
        let url = base.join(next.trim()).map_err(|e| {
            Error::invalid_input(format!("links.next {next:?} is not a usable URL: {e}"))
        })?;
        same_origin(base, &url)?;
        Ok(Self {
            url,
            context: ErrorContext::new(),
            output: PhantomData,
        })
    }

    /// Attaches ids (user, connection) to every error this call produces, as Basiq support
    /// asks; the link itself does not say whose list it is.
    pub fn with_context(mut self, context: ErrorContext) -> Self {
        self.context = context;
        self
    }

    /// The URL that will be fetched.
    pub fn url(&self) -> &Url {
        &self.url
    }
}

/// Same scheme, host and port (the default port counts as given), and no userinfo.
fn same_origin(base: &Url, url: &Url) -> Result<(), Error> {
    if !url.username().is_empty() || url.password().is_some() {
        return Err(Error::invalid_input(
            "links.next carries credentials (user:pass@); refusing to follow it",
        ));
    }
    let origin = |u: &Url| {
        (
            u.scheme().to_ascii_lowercase(),
            u.host_str().map(str::to_ascii_lowercase),
            u.port_or_known_default(),
        )
    };
    if origin(base) != origin(url) {
        return Err(Error::invalid_input(format!(
            "links.next {url} is on another origin than the API base {base}; refusing to send \
             the token there"
        )));
    }
    Ok(())
}

impl<T> fmt::Debug for NextPage<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NextPage")
            .field("url", &self.url.as_str())
            .field("context", &self.context)
            .finish()
    }
}

impl<T> Clone for NextPage<T> {
    fn clone(&self) -> Self {
        Self {
            url: self.url.clone(),
            context: self.context.clone(),
            output: PhantomData,
        }
    }
}

impl<T: DeserializeOwned> Operation for NextPage<T> {
    type Output = T;

    /// Checks the origin again against the base the executor actually uses (the page may have
    /// been built against another base), then GETs the link as is.
    fn request(&self, base: &ApiBase) -> Result<HttpRequest, Error> {
        same_origin(base.url(), &self.url)?;
        Ok(operation::empty_request(Method::GET, self.url.clone()))
    }

    fn parse(&self, response: HttpResponse) -> Result<Self::Output, Error> {
        operation::parse_json(&response, &[200])
    }

    fn is_idempotent(&self) -> bool {
        true
    }

    fn context(&self) -> ErrorContext {
        self.context.clone()
    }
}

/// A list model that may have a next page (`links.next`).
pub trait Page: Sized {
    /// What the list holds.
    type Item;

    /// The raw `links.next`, when there is a next page.
    fn next_link(&self) -> Option<&str>;

    /// The items of this page.
    fn items(&self) -> &[Self::Item];

    /// The items of this page, owned.
    fn into_items(self) -> Vec<Self::Item>;

    /// How many items the whole list holds, when Basiq says (`size` on transactions and jobs).
    fn total(&self) -> Option<u64> {
        None
    }

    /// The operation fetching the next page, `None` on the last page; refused when the link
    /// leaves `base`'s origin (see [`NextPage::new`]). An empty `next` counts as absent.
    fn next_page(&self, base: &Url) -> Result<Option<NextPage<Self>>, Error> {
        match self.next_link().map(str::trim) {
            Some(next) if !next.is_empty() => NextPage::new(base, next).map(Some),
            _ => Ok(None),
        }
    }
}

macro_rules! impl_page {
    ($($list:ty => $item:ty $(, total: $total:ident)?);* $(;)?) => {
        $(
            impl Page for $list {
                type Item = $item;

                fn next_link(&self) -> Option<&str> {
                    self.links.as_ref()?.next.as_deref()
                }

                fn items(&self) -> &[Self::Item] {
                    &self.data
                }

                fn into_items(self) -> Vec<Self::Item> {
                    self.data
                }

                $(
                    fn total(&self) -> Option<u64> {
                        self.$total
                    }
                )?
            }
        )*
    };
}

impl_page!(
    TransactionList => crate::api::models::Transaction, total: size;
    AccountList => crate::api::models::Account;
    ConnectionList => crate::api::models::Connection;
    JobList => crate::api::models::Job, total: size;
    crate::api::models::ConnectorList => crate::api::models::Connector;
    crate::api::models::JobRefList => crate::api::models::JobRef;
    crate::api::models::ConsentList => crate::api::models::Consent;
    crate::api::models::EventList => crate::api::models::Event;
    crate::api::models::EventTypeList => crate::api::models::EventType;
    crate::api::models::IdentityList => crate::api::models::Identity;
    crate::api::models::AffordabilityList => crate::api::models::Affordability;
    crate::api::models::ReportList => crate::api::models::Report;
    crate::api::models::ReportTypeList => crate::api::models::ReportType;
    crate::api::models::WebhookList => crate::api::models::Webhook;
    crate::api::models::WebhookMessageList => crate::api::models::WebhookDelivery;
);

/// How far a walk over `links.next` may go before it is an [`Error::PageLimit`]. A server that
/// hands out a new cursor on every page (a bug, or hostile) would otherwise be followed forever,
/// the items piling up in memory.
///
/// Unset caps are derived from the first page: when it says how many items the list holds
/// (`size`), at most that many items plus one page of slack (items added while walking), and as
/// many pages as that takes at the first page's length plus two; otherwise
/// [`DEFAULT_MAX_PAGES`] pages.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PageLimits {
    /// The most pages fetched in one walk (`None`: derived, see above).
    pub max_pages: Option<u64>,
    /// The most items collected in one walk (`None`: derived, see above).
    pub max_items: Option<u64>,
}

/// The page cap when neither the caller nor the first page says more: 10,000 pages is five
/// million transactions at Basiq's 500 a page.
pub const DEFAULT_MAX_PAGES: u64 = 10_000;

impl PageLimits {
    /// Derived caps (see the type's docs).
    pub fn new() -> Self {
        Self::default()
    }

    /// At most `max` pages per walk.
    pub fn max_pages(mut self, max: u64) -> Self {
        self.max_pages = Some(max);
        self
    }

    /// At most `max` items per walk.
    pub fn max_items(mut self, max: u64) -> Self {
        self.max_items = Some(max);
        self
    }
}

/// One walk over a list's pages: decides after each page whether to follow its `links.next`.
/// It stops on an empty page (a server that keeps sending cursors with no items has nothing more
/// to give), refuses a link already followed (a loop) and stops with [`Error::PageLimit`] at the
/// [`PageLimits`]. Pure: the facade's pagers call it; it never fetches.
#[derive(Debug, Clone, Default)]
pub struct PageWalk {
    limits: PageLimits,
    /// Caps fixed from the first page.
    max_pages: u64,
    max_items: Option<u64>,
    pages: u64,
    items: u64,
    /// A fingerprint of each `links.next` followed, not the URL: a loop is still refused before
    /// any page is fetched twice, and a walk holds 8 bytes a page rather than a copy of every
    /// link (2,000 of them for a million transactions). The fingerprint is std's keyed hash
    /// (`RandomState`, SipHash-1-3 today) under a per-walk random key, so two different links
    /// share one only by chance (about `pages² / 2^65`) and no server can aim for it.
    visited: HashSet<u64>,
    fingerprint: RandomState,
}

impl PageWalk {
    /// A walk under `limits`.
    pub fn new(limits: PageLimits) -> Self {
        Self {
            limits,
            ..Self::default()
        }
    }

    /// Pages seen so far.
    pub fn pages(&self) -> u64 {
        self.pages
    }

    /// After `page` arrived: whether to fetch `next` (its `links.next`, already checked to be on
    /// the API's origin). `Ok(false)` ends the walk normally: no link, or an empty page.
    pub fn follow<P: Page>(
        &mut self,
        page: &P,
        next: Option<&Url>,
        context: &ErrorContext,
    ) -> Result<bool, Error> {
        let len = u64::try_from(page.items().len()).unwrap_or(u64::MAX);
        if self.pages == 0 {
            self.fix_caps(page.total(), len);
        }
        self.pages = self.pages.saturating_add(1);
        self.items = self.items.saturating_add(len);
        let Some(next) = next else {
            return Ok(false);
        };
        if len == 0 {
            tracing::debug!(
                pages = self.pages,
                "an empty page still links to a next one; stopping there"
            );
            return Ok(false);
        }
        if self.pages >= self.max_pages || self.max_items.is_some_and(|max| self.items >= max) {
            return Err(Error::PageLimit {
                pages: self.pages,
                items: self.items,
                context: context.clone(),
            });
        }
        if !self
            .visited
            .insert(self.fingerprint.hash_one(next.as_str()))
        {
            return Err(Error::invalid_input(format!(
                "links.next {next} was already followed; refusing to loop"
            ))
            .with_context(context));
        }
        Ok(true)
    }

    fn fix_caps(&mut self, total: Option<u64>, first_len: u64) {
        let derived_pages = match total {
            Some(total) if first_len > 0 => total.div_ceil(first_len).saturating_add(2),
            _ => DEFAULT_MAX_PAGES,
        };
        self.max_pages = self.limits.max_pages.unwrap_or(derived_pages).max(1);
        self.max_items = self
            .limits
            .max_items
            .or_else(|| total.map(|total| total.saturating_add(first_len)));
    }
}

#[cfg(test)]
mod walk_tests {
    use super::*;

    fn page(items: usize, size: Option<u64>, next: Option<&str>) -> TransactionList {
        serde_json::from_value(serde_json::json!({
            "type": "list",
            "size": size,
            "data": (0..items).map(|i| serde_json::json!({"type": "transaction", "id": format!("t{i}")})).collect::<Vec<_>>(),
            "links": {"next": next},
        }))
        .unwrap()
    }

    fn url(n: u64) -> Url {
        Url::parse(&format!(
            "https://au-api.basiq.io/users/u/transactions?next={n}"
        ))
        .unwrap()
    }

    #[test]
    fn an_empty_page_ends_the_walk() {
        let mut walk = PageWalk::new(PageLimits::new());
        let ctx = ErrorContext::new();
        assert!(walk
            .follow(&page(2, None, Some("x")), Some(&url(1)), &ctx)
            .unwrap());
        assert!(!walk
            .follow(&page(0, None, Some("x")), Some(&url(2)), &ctx)
            .unwrap());
        assert!(!walk.follow(&page(2, None, None), None, &ctx).unwrap());
    }

    #[test]
    fn endless_cursors_hit_the_cap_derived_from_size() {
        // The first page says 4 items in all at 2 a page: 2 pages, +2 slack, and 4+2 items.
        let mut walk = PageWalk::new(PageLimits::new());
        let ctx = ErrorContext::new();
        let mut followed = 0;
        let err = loop {
            match walk.follow(&page(2, Some(4), Some("x")), Some(&url(followed)), &ctx) {
                Ok(true) => followed += 1,
                Ok(false) => panic!("ended"),
                Err(e) => break e,
            }
        };
        assert_eq!(err.kind(), crate::ErrorKind::PageLimit, "{err}");
        assert!(followed <= 3, "{followed}");
        // Without a size, the configured cap applies.
        let mut walk = PageWalk::new(PageLimits::new().max_pages(5));
        let mut followed = 0;
        while let Ok(true) = walk.follow(&page(1, None, Some("x")), Some(&url(followed)), &ctx) {
            followed += 1;
        }
        assert_eq!(followed, 4, "5 pages fetched, the 5th link refused");
        let mut walk = PageWalk::new(PageLimits::new().max_items(3));
        assert!(walk
            .follow(&page(2, None, Some("x")), Some(&url(1)), &ctx)
            .unwrap());
        assert!(walk
            .follow(&page(2, None, Some("x")), Some(&url(2)), &ctx)
            .is_err());
    }

    #[test]
    fn a_link_followed_before_is_a_loop() {
        let mut walk = PageWalk::new(PageLimits::new());
        let ctx = ErrorContext::new();
        assert!(walk
            .follow(&page(1, None, Some("x")), Some(&url(1)), &ctx)
            .unwrap());
        let err = walk
            .follow(&page(1, None, Some("x")), Some(&url(1)), &ctx)
            .unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::InvalidInput);
    }

    #[test]
    fn distinct_links_are_all_followed_and_a_return_to_any_earlier_one_is_a_loop() {
        let ctx = ErrorContext::new();
        let one = page(1, None, Some("x"));
        let walked = |walk: &mut PageWalk, links: std::ops::Range<u64>| {
            links
                .filter(|&n| walk.follow(&one, Some(&url(n)), &ctx).unwrap())
                .count()
        };
        for back_to in [0, 1, 2_500, 4_999] {
            let mut walk = PageWalk::new(PageLimits::new().max_pages(10_000));
            assert_eq!(
                walked(&mut walk, 0..5_000),
                5_000,
                "no distinct link is refused"
            );
            let err = walk.follow(&one, Some(&url(back_to)), &ctx).unwrap_err();
            assert_eq!(err.kind(), crate::ErrorKind::InvalidInput, "{back_to}");
            assert!(err.to_string().contains("refusing to loop"), "{err}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;
    use crate::id::UserId;

    fn base() -> Url {
        Url::parse("https://au-api.basiq.io").unwrap()
    }

    fn list(next: Option<&str>) -> TransactionList {
        let links = match next {
            Some(n) => serde_json::json!({"self": "https://au-api.basiq.io/x", "next": n}),
            None => serde_json::json!({"self": "https://au-api.basiq.io/x"}),
        };
        serde_json::from_value(serde_json::json!({"type": "list", "data": [], "links": links}))
            .unwrap()
    }

    #[test]
    fn absolute_same_origin_link_is_followed_as_is() {
        let next = "https://au-api.basiq.io/users/u1/transactions?next=bf1%3D&limit=500";
        let op = NextPage::<TransactionList>::new(&base(), next).unwrap();
        let request = op.request(&base().into()).unwrap();
        assert_eq!(request.method(), Method::GET);
        assert_eq!(request.url().as_str(), next);
        assert!(op.is_idempotent());
    }

    #[test]
    fn relative_links_join_the_base() {
        for (next, expected) in [
            (
                "/users/u1/transactions?next=abc",
                "https://au-api.basiq.io/users/u1/transactions?next=abc",
            ),
            (
                "users/u1/transactions?next=abc",
                "https://au-api.basiq.io/users/u1/transactions?next=abc",
            ),
        ] {
            let op = NextPage::<TransactionList>::new(&base(), next).unwrap();
            assert_eq!(op.url().as_str(), expected);
        }
        // The default port is the same origin as no port.
        let op =
            NextPage::<TransactionList>::new(&base(), "https://au-api.basiq.io:443/a").unwrap();
        assert_eq!(op.url().as_str(), "https://au-api.basiq.io/a");
    }

    #[test]
    fn other_origins_are_refused_so_the_token_never_leaves() {
        for next in [
            "https://evil.example/users/u1/transactions?next=1",
            "http://au-api.basiq.io/users/u1/transactions?next=1",
            "https://au-api.basiq.io:8443/users/u1/transactions?next=1",
            "//evil.example/steal",
            "https://au-api.basiq.io.evil.example/x",
            "https://user:pass@au-api.basiq.io/x",
            "https://evil.example@au-api.basiq.io/x",
            "http://[::1",
        ] {
            let err = NextPage::<TransactionList>::new(&base(), next).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidInput, "{next}: {err}");
        }
        let err = NextPage::<TransactionList>::new(&base(), "https://evil.example/x").unwrap_err();
        assert!(err.to_string().contains("another origin"), "{err}");
    }

    #[test]
    fn request_rechecks_against_the_executor_base() {
        let local = Url::parse("http://127.0.0.1:4010").unwrap();
        let op = NextPage::<TransactionList>::new(&local, "/users/u1/transactions?next=1").unwrap();
        assert!(op.request(&local.clone().into()).is_ok());
        let err = op.request(&base().into()).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
    }

    #[test]
    fn page_trait_walks_links_next() {
        assert!(list(None).next_page(&base()).unwrap().is_none());
        assert!(list(Some("")).next_page(&base()).unwrap().is_none());
        let next = list(Some("https://au-api.basiq.io/users/u1/transactions?next=2"))
            .next_page(&base())
            .unwrap()
            .unwrap();
        assert_eq!(next.url().query(), Some("next=2"));
        assert!(list(Some("https://evil.example/?next=2"))
            .next_page(&base())
            .is_err());
    }

    #[test]
    fn parse_reads_the_page_and_keeps_the_context() {
        let user = UserId::new("u1").unwrap();
        let op = NextPage::<TransactionList>::new(&base(), "/users/u1/transactions?next=2")
            .unwrap()
            .with_context(ErrorContext::new().with_user(&user));
        let ok = http::Response::builder()
            .status(200)
            .body(br#"{"type":"list","data":[],"links":{}}"#.to_vec())
            .unwrap();
        let page = op.parse(ok).unwrap();
        assert!(page.items().is_empty() && page.next_link().is_none());
        assert!(!op.context().is_empty());
        assert!(format!("{op:?}").contains("next=2"));
        let bad = http::Response::builder()
            .status(404)
            .body(
                br#"{"type":"list","data":[{"type":"error","code":"resource-not-found"}]}"#
                    .to_vec(),
            )
            .unwrap();
        assert_eq!(op.parse(bad).unwrap_err().kind(), ErrorKind::NotFound);
    }

    proptest::proptest! {
        /// Whatever `links.next` says, building the page never panics, and an accepted link is on
        /// the base's origin with no userinfo: the token cannot leave.
        #[test]
        fn any_next_link_is_same_origin_or_refused(
            next in proptest::prop_oneof![
                ".*",
                "(https?:)?(//)?[a-z.@:]{0,20}(:[0-9]{1,5})?/[a-z?=&/.%]{0,20}",
                "https://au-api\\.basiq\\.io[:@./a-z0-9?=&%]{0,30}",
            ]
        ) {
            if let Ok(op) = NextPage::<TransactionList>::new(&base(), &next) {
                let url = op.url();
                proptest::prop_assert_eq!(url.scheme(), "https");
                proptest::prop_assert_eq!(url.host_str(), Some("au-api.basiq.io"));
                proptest::prop_assert_eq!(url.port_or_known_default(), Some(443));
                proptest::prop_assert!(url.username().is_empty() && url.password().is_none());
                proptest::prop_assert!(op.request(&base().into()).is_ok());
            }
        }
    }

    #[test]
    fn every_list_with_links_is_a_page() {
        fn assert_page<P: Page + DeserializeOwned>() {}
        assert_page::<TransactionList>();
        assert_page::<AccountList>();
        assert_page::<ConnectionList>();
        assert_page::<JobList>();
    }
}
