//! Walking a list's pages (`links.next`), one request at a time.
//!
//! A [`PageCursor`] starts from the list's own operation, then follows each page's `links.next`
//! as a [`NextPage`] — on the API's origin only (the bearer token goes with it), never a link
//! already followed, stopping on an empty page and at the [`PageLimits`]. It holds no page: the
//! driver yields each page as it arrives, so a walk's memory is one page however long the list.
//!
//! ```
//! use basiq_core::flows::pagination::{PageCursor, PageRequest};
//! use basiq_core::api::models::TransactionList;
//! use basiq_core::api::operations::ListTransactions;
//! use basiq_core::policy::pagination::PageLimits;
//!
//! let base = url::Url::parse("https://au-api.basiq.io").unwrap();
//! let user = basiq_core::id::UserId::new("u1").unwrap();
//! let mut cursor = PageCursor::new(ListTransactions::new(user), base, PageLimits::new());
//! let Some(Ok(PageRequest::First(_op))) = cursor.next_request() else { unreachable!() };
//! // The driver executes `_op`; here, a last page arrives.
//! let page: TransactionList = serde_json::from_str(r#"{"data": [], "links": {}}"#).unwrap();
//! assert!(cursor.on_page(Ok(page)).is_ok());
//! assert!(cursor.next_request().is_none(), "no links.next: done");
//! ```

use std::fmt;

use url::Url;

use crate::engine::operation::Operation;
use crate::error::{Error, ErrorContext};
use crate::policy::pagination::{NextPage, Page, PageLimits, PageWalk};

/// What a [`PageCursor`] asks its driver to fetch.
#[derive(Debug)]
pub enum PageRequest<O, P> {
    /// The list's own operation (the first page).
    First(O),
    /// A page's `links.next`, checked to be on the API's origin.
    Next(NextPage<P>),
}

enum State<O, P> {
    Start(O),
    Next(NextPage<P>),
    /// Report this once, then end.
    Failed(Error),
    Done,
}

/// A walk over a list's pages (see the module docs). `O` is the list's operation, `P` its page.
pub struct PageCursor<O, P> {
    state: State<O, P>,
    walk: PageWalk,
    base: Url,
    context: ErrorContext,
}

impl<O, P> fmt::Debug for PageCursor<O, P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.state {
            State::Start(_) => "start",
            State::Next(_) => "next",
            State::Failed(_) => "failed",
            State::Done => "done",
        };
        f.debug_struct("PageCursor")
            .field("state", &state)
            .field("pages", &self.walk.pages())
            .field("context", &self.context)
            .finish_non_exhaustive()
    }
}

impl<O, P> PageCursor<O, P>
where
    O: Operation<Output = P>,
    P: Page,
{
    /// A walk starting with `first`, following links on `base`'s origin, under `limits`.
    pub fn new(first: O, base: Url, limits: PageLimits) -> Self {
        let context = first.context();
        Self {
            state: State::Start(first),
            walk: PageWalk::new(limits),
            base,
            context,
        }
    }

    /// The next page to fetch; `Some(Err(..))` once when the walk cannot go on (a link to
    /// another origin, a loop, a page limit); `None` when it is over.
    pub fn next_request(&mut self) -> Option<Result<PageRequest<O, P>, Error>> {
        match std::mem::replace(&mut self.state, State::Done) {
            State::Start(op) => Some(Ok(PageRequest::First(op))),
            State::Next(op) => Some(Ok(PageRequest::Next(op))),
            State::Failed(error) => Some(Err(error)),
            State::Done => None,
        }
    }

    /// Feeds the answer to the last request. Returns the page (to hand to the caller) and
    /// plans the next request from its `links.next`; an error ends the walk after it is returned.
    pub fn on_page(&mut self, page: Result<P, Error>) -> Result<P, Error> {
        let page = page.map_err(|e| e.with_context(&self.context))?;
        self.state = match page.next_page(&self.base) {
            Ok(None) => {
                // Counted, so the walk's page number stays right; a last page cannot fail.
                let _ = self.walk.follow(&page, None, &self.context);
                State::Done
            }
            Ok(Some(op)) => match self.walk.follow(&page, Some(op.url()), &self.context) {
                Ok(true) => State::Next(op.with_context(self.context.clone())),
                Ok(false) => State::Done,
                Err(error) => State::Failed(error),
            },
            Err(error) => State::Failed(error.with_context(&self.context)),
        };
        Ok(page)
    }

    /// Pages received so far.
    pub fn pages(&self) -> u64 {
        self.walk.pages()
    }

    /// Whether nothing is left to fetch or report.
    pub fn is_done(&self) -> bool {
        matches!(self.state, State::Done)
    }

    /// The ids errors of this walk carry.
    pub fn context(&self) -> &ErrorContext {
        &self.context
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::models::TransactionList;
    use crate::api::operations::ListTransactions;
    use crate::error::ErrorKind;
    use crate::id::UserId;
    use proptest::prelude::*;

    fn base() -> Url {
        Url::parse("https://au-api.basiq.io").unwrap()
    }

    fn page(ids: std::ops::Range<u32>, next: Option<&str>) -> TransactionList {
        let data: Vec<serde_json::Value> = ids
            .map(|i| serde_json::json!({"type": "transaction", "id": format!("t{i}")}))
            .collect();
        serde_json::from_value(serde_json::json!({
            "data": data,
            "links": {"next": next},
        }))
        .unwrap()
    }

    fn cursor() -> PageCursor<ListTransactions, TransactionList> {
        let op = ListTransactions::new(UserId::new("u1").unwrap());
        PageCursor::new(op, base(), PageLimits::new())
    }

    /// Runs a cursor over canned pages keyed by request: `None` for the first.
    fn drive(
        mut cursor: PageCursor<ListTransactions, TransactionList>,
        answer: impl Fn(Option<&Url>) -> Result<TransactionList, Error>,
    ) -> (Vec<String>, Option<Error>) {
        let mut ids = Vec::new();
        while let Some(request) = cursor.next_request() {
            let fetched = match request {
                Ok(PageRequest::First(_)) => answer(None),
                Ok(PageRequest::Next(op)) => answer(Some(op.url())),
                Err(error) => return (ids, Some(error)),
            };
            match cursor.on_page(fetched) {
                Ok(page) => ids.extend(page.into_items().into_iter().map(|t| t.id.into_string())),
                Err(error) => return (ids, Some(error)),
            }
            assert!(ids.len() < 100_000, "runaway walk");
        }
        (ids, None)
    }

    #[test]
    fn follows_links_next_to_the_last_page() {
        let (ids, err) = drive(cursor(), |url| {
            Ok(match url.map(Url::as_str) {
                None => page(
                    0..3,
                    Some("https://au-api.basiq.io/users/u1/transactions?next=a"),
                ),
                Some("https://au-api.basiq.io/users/u1/transactions?next=a") => page(3..5, None),
                other => panic!("unexpected {other:?}"),
            })
        });
        assert!(err.is_none(), "{err:?}");
        assert_eq!(ids, ["t0", "t1", "t2", "t3", "t4"]);
    }

    #[test]
    fn a_link_to_another_origin_is_reported_once_after_its_page() {
        let (ids, err) = drive(cursor(), |url| {
            assert!(url.is_none(), "never fetched: {url:?}");
            Ok(page(0..2, Some("https://evil.example/steal")))
        });
        assert_eq!(ids, ["t0", "t1"], "the page before the link is kept");
        let err = err.expect("refused");
        assert!(err.to_string().contains("another origin"), "{err}");
    }

    #[test]
    fn a_failed_fetch_ends_the_walk_with_the_ids() {
        let mut cursor = cursor();
        assert!(matches!(
            cursor.next_request(),
            Some(Ok(PageRequest::First(_)))
        ));
        let limit = Error::PageLimit {
            pages: 1,
            items: 1,
            context: ErrorContext::new(),
        };
        let err = cursor.on_page(Err(limit)).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::PageLimit);
        assert!(err.to_string().contains("userId=u1"), "{err}");
        assert!(cursor.next_request().is_none());
    }

    #[test]
    fn a_loop_is_refused() {
        let link = "https://au-api.basiq.io/users/u1/transactions?next=same";
        let (ids, err) = drive(cursor(), |_| Ok(page(0..1, Some(link))));
        assert_eq!(ids.len(), 2, "the first page and the one behind the link");
        assert!(err.expect("loop").to_string().contains("already followed"));
    }

    proptest! {
        /// Whatever the page sizes, every item arrives once, in order, and the walk makes one
        /// request per page.
        #[test]
        fn every_item_once_in_order(sizes in proptest::collection::vec(1u32..20, 1..30)) {
            let mut starts = vec![0u32];
            for s in &sizes {
                starts.push(starts.last().unwrap() + s);
            }
            let requests = std::cell::Cell::new(0usize);
            let (ids, err) = drive(cursor(), |url| {
                requests.set(requests.get() + 1);
                let n: usize = match url {
                    None => 0,
                    Some(u) => u.query_pairs().find(|(k, _)| k == "p").unwrap().1.parse().unwrap(),
                };
                let next = (n + 1 < sizes.len())
                    .then(|| format!("https://au-api.basiq.io/users/u1/transactions?p={}", n + 1));
                Ok(page(starts[n]..starts[n + 1], next.as_deref()))
            });
            prop_assert!(err.is_none(), "{:?}", err);
            let expected: Vec<String> = (0..*starts.last().unwrap()).map(|i| format!("t{i}")).collect();
            prop_assert_eq!(ids, expected);
            prop_assert_eq!(requests.get(), sizes.len());
        }
    }
}
