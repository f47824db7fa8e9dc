//! Owned pagination on the blocking client: every list as an [`Iterator`] of pages or of items.
//!
//! An iterator holds a clone of the client (an `Arc` inside) and its walk's state, never a
//! borrow: it can be returned from a function, stored, or moved to another thread (`Send +
//! 'static`). It fetches one page when the previous one is used up, so memory stays at one page
//! however long the list. Pages come from `links.next` on the API's origin only; after an error
//! it ends.

use std::fmt;

use basiq_core::engine::operation::Operation;
use basiq_core::error::ErrorContext;
use basiq_core::flows::follow::{FollowStep, JobFollow, JobProgress};
use basiq_core::flows::pagination::{PageCursor, PageRequest};
use basiq_core::policy::pagination::Page;
use basiq_core::Error;
use serde::de::DeserializeOwned;

use crate::blocking::Client;
use crate::lazy_page::{lazy_next, Lazy, LazyPage, PageItems};

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
    state: PagesState<P>,
}

enum PagesState<P> {
    /// Not iterated yet: [`Pages::items`] can still walk it as lazily decoded pages.
    Unstarted(Box<dyn Walk<P>>),
    Started(NextPageFn<P>),
    /// Only while switching from `Unstarted` to `Started`.
    Switching,
}

/// A walk not started yet, as whole pages or as lazily decoded ones.
trait Walk<P>: Send {
    fn pages(self: Box<Self>) -> NextPageFn<P>;
    fn lazy(self: Box<Self>) -> (NextPageFn<LazyPage>, ErrorContext);
}

struct Start<O> {
    client: Client,
    first: O,
}

impl<O, P> Walk<P> for Start<O>
where
    O: Operation<Output = P> + Send + 'static,
    P: Page + DeserializeOwned + Send + 'static,
{
    fn pages(self: Box<Self>) -> NextPageFn<P> {
        let Start { client, first } = *self;
        let mut cursor = PageCursor::new(
            first,
            client.executor().base_url().clone(),
            client.policies().page_limits,
        );
        Box::new(move || {
            Some(match cursor.next_request()? {
                Err(error) => Err(error),
                Ok(PageRequest::First(op)) => cursor.on_page(client.execute(op)),
                Ok(PageRequest::Next(op)) => cursor.on_page(client.execute(op)),
            })
        })
    }

    fn lazy(self: Box<Self>) -> (NextPageFn<LazyPage>, ErrorContext) {
        let Start { client, first } = *self;
        let mut cursor = PageCursor::new(
            Lazy::<O, P>::new(first),
            client.executor().base_url().clone(),
            client.policies().page_limits,
        );
        let context = cursor.context().clone();
        let next = move || {
            Some(match cursor.next_request()? {
                Err(error) => Err(error),
                Ok(PageRequest::First(op)) => cursor.on_page(client.execute(op)),
                Ok(PageRequest::Next(op)) => cursor.on_page(client.execute(lazy_next::<P>(op))),
            })
        };
        (Box::new(next), context)
    }
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
        Self {
            state: PagesState::Unstarted(Box::new(Start { client, first })),
        }
    }

    /// Every item of every page, in order (see [`Items`]). Each page's body is kept and its
    /// items decoded one at a time as they are taken.
    pub fn items(self) -> Items<P>
    where
        P::Item: DeserializeOwned,
    {
        let source = match self.state {
            PagesState::Unstarted(walk) => {
                let (pages, context) = walk.lazy();
                Source::Lazy {
                    pages,
                    items: PageItems::new(context),
                }
            }
            // Already iterated as pages: the rest is walked the same way, whole pages.
            PagesState::Started(pages) => Source::Whole {
                pages,
                buffer: Vec::new().into_iter(),
            },
            PagesState::Switching => Source::Whole {
                pages: Box::new(|| None),
                buffer: Vec::new().into_iter(),
            },
        };
        Items {
            source,
            done: false,
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
        if let PagesState::Unstarted(_) = self.state {
            if let PagesState::Unstarted(walk) =
                std::mem::replace(&mut self.state, PagesState::Switching)
            {
                self.state = PagesState::Started(walk.pages());
            }
        }
        match &mut self.state {
            PagesState::Started(next) => next(),
            _ => None,
        }
    }
}

/// The items of a list, page after page: an owned `Iterator<Item = Result<P::Item, Error>>`,
/// like [`Pages`]. From [`Client::items`], a resource's `items` method, or [`Pages::items`]. One
/// page's body is held at a time and its items are decoded as they are taken: an item that does
/// not decode is an [`Error::Decode`] (with the call's ids) in its place, and, as after any
/// error, the iterator ends there.
#[must_use = "an iterator does nothing until consumed"]
pub struct Items<P: Page> {
    source: Source<P>,
    done: bool,
}

enum Source<P: Page> {
    Lazy {
        pages: NextPageFn<LazyPage>,
        items: PageItems<P::Item>,
    },
    Whole {
        pages: NextPageFn<P>,
        buffer: std::vec::IntoIter<P::Item>,
    },
}

impl<P: Page> fmt::Debug for Items<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let buffered = match &self.source {
            Source::Lazy { items, .. } => items.buffered(),
            Source::Whole { buffer, .. } => buffer.len(),
        };
        f.debug_struct("Items")
            .field("buffered", &buffered)
            .finish_non_exhaustive()
    }
}

impl<P: Page> Iterator for Items<P> {
    type Item = Result<P::Item, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let item = match &mut self.source {
            Source::Lazy { pages, items } => loop {
                if let Some(item) = items.take() {
                    break Some(item);
                }
                match pages() {
                    None => break None,
                    Some(Err(error)) => break Some(Err(error)),
                    Some(Ok(fetched)) => items.start(fetched),
                }
            },
            Source::Whole { pages, buffer } => loop {
                if let Some(item) = buffer.next() {
                    break Some(Ok(item));
                }
                // The spent page's allocation (a `vec::IntoIter` keeps it) goes before the
                // next page is fetched and decoded, so two pages are never held at once.
                *buffer = Vec::new().into_iter();
                match pages() {
                    None => break None,
                    Some(Err(error)) => break Some(Err(error)),
                    Some(Ok(fetched)) => *buffer = fetched.into_items().into_iter(),
                }
            },
        };
        if matches!(item, None | Some(Err(_))) {
            self.done = true;
            if let Source::Lazy { items, .. } = &mut self.source {
                items.release();
            }
        }
        item
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
