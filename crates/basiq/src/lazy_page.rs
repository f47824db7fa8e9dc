//! A list page whose items are decoded one at a time, as the owned item streams take them.
//!
//! Decoding a whole page at once builds a `Vec` of its items (500 transactions, 364 KB grown by
//! doubling) next to the body; across thousands of pages that churn is what grew the async
//! walk's peak RSS (docs/performance.md, "Streaming 1M transactions"). A [`LazyPage`] keeps the
//! response body as it arrived and the byte range of each element of `data`; an item is decoded
//! when it is reached, so a walk holds one body and one item. The page is still fetched through
//! the [`PageCursor`](basiq_core::flows::pagination::PageCursor) (origin, loop and limit checks):
//! it is a [`Page`] whose items are those ranges.

use std::marker::PhantomData;
use std::ops::Range;

use basiq_core::engine::operation::{self, ApiBase, Operation};
use basiq_core::engine::transport::{HttpRequest, HttpResponse};
use basiq_core::error::ErrorContext;
use basiq_core::policy::pagination::{NextPage, Page};
use basiq_core::Error;
use http::StatusCode;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::value::RawValue;

/// A page's body with the byte range of each element of its `data` array.
#[derive(Debug)]
pub(crate) struct LazyPage {
    body: Vec<u8>,
    ranges: Vec<Range<usize>>,
    next: Option<String>,
    total: Option<u64>,
}

/// The envelope every Basiq list shares, borrowed from the body; unknown fields are ignored.
#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow, default)]
    data: Option<&'a RawValue>,
    #[serde(default)]
    links: Option<Links>,
    /// Read leniently: only lists that have a `size` (transactions, jobs) send it.
    #[serde(default)]
    size: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct Links {
    #[serde(default)]
    next: Option<String>,
}

impl LazyPage {
    /// Reads the envelope and the element ranges of `data` (`null` or absent: no items, as the
    /// list models read it). Every element is checked to be well-formed JSON here; its shape is
    /// checked when it is decoded.
    fn from_body(body: Vec<u8>) -> Result<Self, (serde_json::Error, Vec<u8>)> {
        match Self::envelope(&body) {
            Ok((ranges, next, total)) => Ok(Self {
                body,
                ranges,
                next,
                total,
            }),
            Err(e) => Err((e, body)),
        }
    }

    #[allow(clippy::type_complexity)]
    fn envelope(
        body: &[u8],
    ) -> Result<(Vec<Range<usize>>, Option<String>, Option<u64>), serde_json::Error> {
        let envelope: Envelope<'_> = serde_json::from_slice(body)?;
        let ranges = match envelope.data {
            None => Vec::new(),
            Some(data) if data.get() == "null" => Vec::new(),
            Some(data) => {
                let elements: Vec<&RawValue> = serde_json::from_str(data.get())?;
                let base = body.as_ptr() as usize;
                elements
                    .iter()
                    .map(|e| {
                        // A borrowed `RawValue` is a slice of `body`.
                        let start = (e.get().as_ptr() as usize).saturating_sub(base);
                        start..start.saturating_add(e.get().len())
                    })
                    .collect()
            }
        };
        let next = envelope.links.and_then(|l| l.next);
        let total = envelope.size.as_ref().and_then(serde_json::Value::as_u64);
        Ok((ranges, next, total))
    }

    /// Item `index` of this page decoded as `T`, or a [`Error::Decode`] naming the item (never
    /// a value from the body) with `context`'s ids.
    pub(crate) fn decode<T: DeserializeOwned>(
        &self,
        index: usize,
        page: u64,
        context: &ErrorContext,
    ) -> Result<T, Error> {
        let bytes = self
            .ranges
            .get(index)
            .and_then(|r| self.body.get(r.clone()))
            .unwrap_or_default();
        operation::decode_json(StatusCode::OK, bytes).map_err(|e| {
            Error::decode(
                StatusCode::OK,
                format!("item {} of page {page}: {e}", index + 1),
            )
            .with_context(context)
        })
    }
}

/// Where an item stream is in its current [`LazyPage`]: shared by the async stream and the
/// blocking iterator, which differ only in how the next page arrives.
pub(crate) struct PageItems<T> {
    page: Option<LazyPage>,
    /// The index of the next item of `page`.
    next: usize,
    page_number: u64,
    context: ErrorContext,
    /// [`LazyPage::decode`] for `T`, fixed where `T: DeserializeOwned` is known, so the streams'
    /// types need not carry that bound.
    decode: fn(&LazyPage, usize, u64, &ErrorContext) -> Result<T, Error>,
}

impl<T: DeserializeOwned> PageItems<T> {
    /// No page yet; errors carry `context`'s ids.
    pub(crate) fn new(context: ErrorContext) -> Self {
        Self {
            page: None,
            next: 0,
            page_number: 0,
            context,
            decode: LazyPage::decode::<T>,
        }
    }
}

impl<T> PageItems<T> {
    /// The current page's next item, decoded; `None` once the page is spent, and the spent body
    /// is dropped then, before the next page is fetched, so two are never held.
    pub(crate) fn take(&mut self) -> Option<Result<T, Error>> {
        if let Some(current) = &self.page {
            if self.next < current.items().len() {
                let item = (self.decode)(current, self.next, self.page_number, &self.context);
                self.next += 1;
                return Some(item);
            }
        }
        self.page = None;
        None
    }

    /// Takes items from `page` next.
    pub(crate) fn start(&mut self, page: LazyPage) {
        self.page = Some(page);
        self.next = 0;
        self.page_number += 1;
    }

    /// Drops the current page (the stream has ended).
    pub(crate) fn release(&mut self) {
        self.page = None;
    }

    /// Items of the current page not taken yet.
    pub(crate) fn buffered(&self) -> usize {
        self.page
            .as_ref()
            .map_or(0, |p| p.items().len().saturating_sub(self.next))
    }
}

impl Page for LazyPage {
    /// The byte range of each element of `data` in the body.
    type Item = Range<usize>;

    fn next_link(&self) -> Option<&str> {
        self.next.as_deref()
    }

    fn items(&self) -> &[Range<usize>] {
        &self.ranges
    }

    fn into_items(self) -> Vec<Range<usize>> {
        self.ranges
    }

    fn total(&self) -> Option<u64> {
        self.total
    }
}

/// Only so that `NextPage<LazyPage>` is an [`Operation`]; the streams fetch it through
/// [`Lazy`], which keeps the body without a copy.
impl<'de> Deserialize<'de> for LazyPage {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = Box::<RawValue>::deserialize(deserializer)?;
        let body = String::from(Box::<str>::from(raw)).into_bytes();
        Self::from_body(body).map_err(|(e, _)| serde::de::Error::custom(e))
    }
}

/// A list operation (its first page) or a [`NextPage`], answered as a [`LazyPage`]. `P` is the
/// list model: a body that is not a page of it fails with the error decoding it as `P` gives.
pub(crate) struct Lazy<O, P> {
    inner: O,
    list: PhantomData<fn() -> P>,
}

impl<O, P> Lazy<O, P> {
    pub(crate) fn new(inner: O) -> Self {
        Self {
            inner,
            list: PhantomData,
        }
    }
}

impl<O, P> Operation for Lazy<O, P>
where
    O: Operation,
    P: DeserializeOwned,
{
    type Output = LazyPage;

    fn request(&self, base: &ApiBase) -> Result<HttpRequest, Error> {
        self.inner.request(base)
    }

    /// Every list answers 200, as the list operations' own `parse` requires.
    fn parse(&self, response: HttpResponse) -> Result<LazyPage, Error> {
        operation::check_status(&response, &[200])?;
        let status = response.status();
        let body = response.into_body();
        LazyPage::from_body(body).map_err(|(_, body)| {
            // Not a page: the error decoding the whole page as `P` gives, as before (serde's
            // position and expectation, string values redacted).
            match operation::decode_json::<P>(status, &body) {
                Err(error) => error,
                Ok(_) => Error::decode(status, "the page's `data` is not a list of items"),
            }
        })
    }

    fn is_idempotent(&self) -> bool {
        self.inner.is_idempotent()
    }

    fn context(&self) -> ErrorContext {
        self.inner.context()
    }

    fn authentication(&self) -> basiq_core::engine::operation::Authentication {
        self.inner.authentication()
    }
}

/// An owned walk's next request, answered as a [`LazyPage`].
pub(crate) fn lazy_next<P>(op: NextPage<LazyPage>) -> Lazy<NextPage<LazyPage>, P> {
    Lazy::new(op)
}

#[cfg(test)]
mod tests {
    use super::*;
    use basiq_core::api::models::TransactionList;
    use proptest::prelude::*;

    proptest! {
        /// Whatever the items (strings with brackets, commas, escapes) and the whitespace, each
        /// range decodes to the item the whole page decodes to, once and in order, and the
        /// envelope's `links.next` and `size` are read as the list model reads them.
        #[test]
        fn ranges_decode_to_the_whole_pages_items(
            descriptions in proptest::collection::vec("[\\[\\]{},:\"\\\\a-z ]{0,12}", 0..12),
            space in "[ \n\t]{0,3}",
            next in proptest::option::of("/users/u1/transactions\\?next=[a-z0-9]{1,5}"),
        ) {
            let data: Vec<String> = descriptions
                .iter()
                .enumerate()
                .map(|(i, d)| {
                    let item = serde_json::json!({"type": "transaction", "id": format!("t{i}"), "description": d});
                    format!("{space}{item}{space}")
                })
                .collect();
            let links = serde_json::json!({"next": next});
            let body = format!(
                "{{{space}\"type\":\"list\",\"size\":{},\"data\":{space}[{}]{space},\"links\":{links}}}",
                data.len(),
                data.join(",")
            );
            let whole: TransactionList = serde_json::from_str(&body).unwrap();
            let lazy = LazyPage::from_body(body.into_bytes()).map_err(|(e, _)| e).unwrap();
            prop_assert_eq!(lazy.items().len(), whole.data.len());
            prop_assert_eq!(lazy.next_link(), whole.next_link());
            prop_assert_eq!(lazy.total(), whole.size);
            for (i, expected) in whole.data.iter().enumerate() {
                let item: basiq_core::api::models::Transaction =
                    lazy.decode(i, 1, &ErrorContext::new()).unwrap();
                prop_assert_eq!(&item, expected);
            }
        }
    }

    #[test]
    fn null_or_absent_data_is_an_empty_page_and_a_non_list_fails() {
        for body in [r#"{"data":null}"#, r#"{"links":{}}"#, r#"{"data":[]}"#] {
            let page = LazyPage::from_body(body.into())
                .map_err(|(e, _)| e)
                .unwrap();
            assert!(
                page.items().is_empty() && page.next_link().is_none(),
                "{body}"
            );
        }
        for body in [
            r#"{"data":{}}"#,
            "not json",
            r#"{"data":[1,"#,
            r#"{"data":[1] "#,
        ] {
            assert!(LazyPage::from_body(body.into()).is_err(), "{body}");
        }
    }
}
