//! Owned pagination on the blocking client: every list as an [`Iterator`] of pages or of items.
//!
//! An iterator holds a clone of the client (an `Arc` inside) and its walk's state, never a
//! borrow: it can be returned from a function, stored, or moved to another thread (`Send +
//! 'static`). It fetches one page when the previous one is used up, so memory stays at one page
//! however long the list. Pages come from `links.next` on the API's origin only; after an error
//! it ends.

use std::fmt;

use basiq_core::engine::operation::Operation;
use basiq_core::flows::follow::{FollowStep, JobFollow, JobProgress};
use basiq_core::flows::pagination::{PageCursor, PageRequest};
use basiq_core::policy::pagination::Page;
use basiq_core::Error;
use serde::de::DeserializeOwned;

use crate::blocking::Client;

type NextPageFn<P> = Box<dyn FnMut() -> Option<Result<P, Error>> + Send>;

/// The pages of a list, one request each: an owned `Iterator<Item = Result<P, Error>>`. From
/// [`Client::pages`], or a resource's `pages` method.
///
/// It holds a clone of the client and its walk's state, never a borrow: `Send + 'static`, so it
/// can be returned from a function, stored, or moved to another thread. The next page is
/// fetched when this one is taken, so memory stays at one page however long the list. Pages
/// come from `links.next` on the API's origin only (a link elsewhere, or one followed before, is
/// an error); after an error it ends.
#[must_use = "an iterator does nothing until consumed"]
pub struct Pages<P> {
    next: NextPageFn<P>,
}

impl<P> fmt::Debug for Pages<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pages").finish_non_exhaustive()
    }
}

impl<P> Pages<P>
where
    P: Page + DeserializeOwned + Send + 'static,
{
    pub(crate) fn new<O>(client: Client, first: O) -> Self
    where
        O: Operation<Output = P> + Send + 'static,
    {
        let mut cursor = PageCursor::new(
            first,
            client.executor().base_url().clone(),
            client.policies().page_limits,
        );
        let next = move || {
            Some(match cursor.next_request()? {
                Err(error) => Err(error),
                Ok(PageRequest::First(op)) => cursor.on_page(client.execute(op)),
                Ok(PageRequest::Next(op)) => cursor.on_page(client.execute(op)),
            })
        };
        Self {
            next: Box::new(next),
        }
    }

    /// Every item of every page, in order (see [`Items`]).
    pub fn items(self) -> Items<P> {
        Items {
            pages: self,
            buffer: Vec::new().into_iter(),
        }
    }

    /// Every item collected into one `Vec`, reserved from the first page's `size` when Basiq
    /// sends it; each page is dropped as soon as its items are moved out. Stops at the first
    /// error.
    pub fn collect_items(self) -> Result<Vec<P::Item>, Error> {
        let mut out = Vec::new();
        let mut pages = 0u64;
        for page in self {
            let page = page?;
            if pages == 0 {
                out.reserve(crate::flows::reserve_for(&page));
            }
            pages += 1;
            out.extend(page.into_items());
        }
        ::tracing::debug!(items = out.len(), pages, "walked every page");
        Ok(out)
    }
}

impl<P> Iterator for Pages<P> {
    type Item = Result<P, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        (self.next)()
    }
}

/// The items of a list, page after page: an owned `Iterator<Item = Result<P::Item, Error>>`,
/// like [`Pages`]. From [`Client::items`], a resource's `items` method, or [`Pages::items`]. One
/// page is buffered at a time; after an error it ends.
#[must_use = "an iterator does nothing until consumed"]
pub struct Items<P: Page> {
    pages: Pages<P>,
    buffer: std::vec::IntoIter<P::Item>,
}

impl<P: Page> fmt::Debug for Items<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Items")
            .field("buffered", &self.buffer.len())
            .finish_non_exhaustive()
    }
}

impl<P: Page> Iterator for Items<P> {
    type Item = Result<P::Item, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(item) = self.buffer.next() {
                return Some(Ok(item));
            }
            // The spent page's allocation (a `vec::IntoIter` keeps it) goes before the next
            // page is fetched and decoded, so two pages are never held at once.
            self.buffer = Vec::new().into_iter();
            match self.pages.next()? {
                Ok(page) => self.buffer = page.into_items().into_iter(),
                Err(error) => return Some(Err(error)),
            }
        }
    }
}

/// A followed job's progress as it happens: an owned `Iterator<Item = Result<JobProgress,
/// Error>>`, from [`jobs().follow`](crate::blocking::Jobs::follow). Step events come while the
/// job runs; [`JobProgress::Finished`] with the [`JobReport`](crate::JobReport) is the last item.
/// After an error (a failed `GET /jobs/{id}`, with the ids) it ends.
#[must_use = "an iterator does nothing until consumed"]
pub struct Follow {
    client: Client,
    follow: JobFollow,
    span: tracing::Span,
}

impl fmt::Debug for Follow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Follow")
            .field("follow", &self.follow)
            .finish_non_exhaustive()
    }
}

impl Follow {
    pub(crate) fn new(client: Client, follow: JobFollow, span: tracing::Span) -> Self {
        Self {
            client,
            follow,
            span,
        }
    }

    fn step(&mut self) -> Option<Result<JobProgress, Error>> {
        loop {
            match self.follow.next_step() {
                FollowStep::Fetch(op) => {
                    let job = self.client.execute(op);
                    if let Err(error) = self.follow.on_job(job, self.client.now()) {
                        return Some(Err(error));
                    }
                    crate::flows::record_ids(&self.span, self.follow.context());
                }
                FollowStep::Connectors(op) => self.follow.on_connectors(self.client.execute(op)),
                FollowStep::Sleep(d) => {
                    self.client.sleep_for(d);
                    self.follow.slept(d);
                }
                FollowStep::Progress(event) => return Some(Ok(event)),
                // `FollowStep` may grow; anything unknown ends the follow.
                _ => return None,
            }
        }
    }
}

impl Iterator for Follow {
    type Item = Result<JobProgress, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        let span = self.span.clone();
        span.in_scope(|| self.step())
    }
}
