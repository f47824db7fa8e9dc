//! Owned pagination on the async client: every list as a [`Stream`] of pages or of items.
//!
//! A stream holds a clone of the client (an `Arc` inside) and its walk's state, never a
//! borrow: it is `Send + 'static`, so it can be `tokio::spawn`ed, returned from a function,
//! stored, or combined with `StreamExt`. It fetches one page when the previous one is used
//! up, so memory stays at one page however long the list. Pages come from `links.next` on the
//! API's origin only ([`PageCursor`]); after an error the stream ends.

use std::collections::VecDeque;
use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};

use basiq_core::engine::operation::Operation;
use basiq_core::error::ErrorContext;
use basiq_core::flows::follow::{FollowStep, JobFollow, JobProgress};
use basiq_core::flows::pagination::{PageCursor, PageRequest};
use basiq_core::policy::pagination::Page;
use basiq_core::Error;
use futures_core::Stream;
use futures_util::stream::BoxStream;
use futures_util::StreamExt as _;
use serde::de::DeserializeOwned;

use crate::lazy_page::{lazy_next, Lazy, LazyPage, PageItems};
use crate::Client;

/// The pages of a list, one request each: an owned `Stream<Item = Result<P, Error>>`. From
/// [`Client::pages`], or a resource's `pages` method.
///
/// It holds a clone of the client and its walk's state, never a borrow: `Send + 'static`, so it
/// can be `tokio::spawn`ed, returned from a function, stored, or combined with
/// [`StreamExt`](crate::StreamExt). The next page is fetched when this one is taken, so memory
/// stays at one page however long the list. Pages come from `links.next` on the API's origin
/// only (a link elsewhere, or one followed before, is an error); after an error it ends.
#[must_use = "a stream does nothing until polled"]
pub struct Pages<P> {
    state: PagesState<P>,
}

enum PagesState<P> {
    /// Not polled yet: [`Pages::items`] can still walk it as lazily decoded pages.
    Unstarted(Box<dyn Walk<P>>),
    Started(BoxStream<'static, Result<P, Error>>),
    /// Only while switching from `Unstarted` to `Started`.
    Switching,
}

/// A walk not started yet, as whole pages or as lazily decoded ones.
trait Walk<P>: Send {
    fn pages(self: Box<Self>) -> BoxStream<'static, Result<P, Error>>;
    fn lazy(self: Box<Self>) -> (BoxStream<'static, Result<LazyPage, Error>>, ErrorContext);
}

struct Start<O> {
    client: Client,
    first: O,
}

impl<O, P> Walk<P> for Start<O>
where
    O: Operation<Output = P> + Send + Sync + 'static,
    P: Page + DeserializeOwned + Send + 'static,
{
    fn pages(self: Box<Self>) -> BoxStream<'static, Result<P, Error>> {
        let Start { client, first } = *self;
        let cursor = PageCursor::new(
            first,
            client.executor().base_url().clone(),
            client.policies().page_limits,
        );
        Box::pin(futures_util::stream::unfold(
            (client, cursor),
            |(client, mut cursor)| async move {
                let page = match cursor.next_request()? {
                    Err(error) => Err(error),
                    Ok(PageRequest::First(op)) => cursor.on_page(client.execute(op).await),
                    Ok(PageRequest::Next(op)) => cursor.on_page(client.execute(op).await),
                };
                Some((page, (client, cursor)))
            },
        ))
    }

    fn lazy(self: Box<Self>) -> (BoxStream<'static, Result<LazyPage, Error>>, ErrorContext) {
        let Start { client, first } = *self;
        let cursor = PageCursor::new(
            Lazy::<O, P>::new(first),
            client.executor().base_url().clone(),
            client.policies().page_limits,
        );
        let context = cursor.context().clone();
        let stream =
            futures_util::stream::unfold((client, cursor), |(client, mut cursor)| async move {
                let page = match cursor.next_request()? {
                    Err(error) => Err(error),
                    Ok(PageRequest::First(op)) => cursor.on_page(client.execute(op).await),
                    Ok(PageRequest::Next(op)) => {
                        cursor.on_page(client.execute(lazy_next::<P>(op)).await)
                    }
                };
                Some((page, (client, cursor)))
            });
        (Box::pin(stream), context)
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
        O: Operation<Output = P> + Send + Sync + 'static,
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
            // Already polled as pages: the rest is walked the same way, whole pages.
            PagesState::Started(pages) => Source::Whole {
                pages,
                buffer: VecDeque::new(),
            },
            PagesState::Switching => Source::Whole {
                pages: Box::pin(futures_util::stream::empty()),
                buffer: VecDeque::new(),
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
    pub async fn collect_items(mut self) -> Result<Vec<P::Item>, Error> {
        let mut out = Vec::new();
        let mut pages = 0u64;
        while let Some(page) = self.next().await {
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

impl<P> Stream for Pages<P> {
    type Item = Result<P, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if let PagesState::Unstarted(_) = self.state {
            if let PagesState::Unstarted(walk) =
                std::mem::replace(&mut self.state, PagesState::Switching)
            {
                self.state = PagesState::Started(walk.pages());
            }
        }
        match &mut self.state {
            PagesState::Started(pages) => pages.as_mut().poll_next(cx),
            _ => Poll::Ready(None),
        }
    }
}

// Nothing in it is pinned: the walks are boxed.
impl<P> Unpin for Pages<P> {}

/// The items of a list, page after page: `Stream<Item = Result<P::Item, Error>>`, `Send +
/// 'static`, like [`Pages`]. From [`Client::items`], a resource's `items` method, or
/// [`Pages::items`]. One page's body is held at a time and its items are decoded as they are
/// taken: an item that does not decode is an [`Error::Decode`] (with the call's ids) in its
/// place, and, as after any error, the stream ends there.
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// # let server = basiq_mock::MockServer::start();
/// # let client = basiq::Client::builder().api_key(server.api_key()).base_url(server.url()).build()?;
/// use basiq::StreamExt as _;
///
/// // Owned: returned from a function, spawned on another task.
/// fn institutions(client: &basiq::Client) -> basiq::Items<basiq::models::ConnectorList> {
///     client.connectors().items()
/// }
/// let mut connectors = institutions(&client);
/// let first = tokio::spawn(async move { connectors.next().await }).await.unwrap();
/// assert!(!first.expect("the emulator lists connectors")?.status.is_outage());
/// # Ok::<(), basiq::Error>(())
/// # }).unwrap();
/// ```
#[must_use = "a stream does nothing until polled"]
pub struct Items<P: Page> {
    source: Source<P>,
    done: bool,
}

enum Source<P: Page> {
    Lazy {
        pages: BoxStream<'static, Result<LazyPage, Error>>,
        items: PageItems<P::Item>,
    },
    Whole {
        pages: BoxStream<'static, Result<P, Error>>,
        buffer: VecDeque<P::Item>,
    },
}

impl<P: Page> Items<P> {
    fn buffered(&self) -> usize {
        match &self.source {
            Source::Lazy { items, .. } => items.buffered(),
            Source::Whole { buffer, .. } => buffer.len(),
        }
    }
}

impl<P: Page> fmt::Debug for Items<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Items")
            .field("buffered", &self.buffered())
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

// The buffer is only moved out of, never pinned.
impl<P: Page> Unpin for Items<P> {}

impl<P: Page> Stream for Items<P> {
    type Item = Result<P::Item, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.done {
            return Poll::Ready(None);
        }
        let this = &mut *self;
        let polled = match &mut this.source {
            Source::Lazy { pages, items } => loop {
                if let Some(item) = items.take() {
                    break Poll::Ready(Some(item));
                }
                match pages.as_mut().poll_next(cx) {
                    Poll::Pending => break Poll::Pending,
                    Poll::Ready(None) => break Poll::Ready(None),
                    Poll::Ready(Some(Err(error))) => break Poll::Ready(Some(Err(error))),
                    Poll::Ready(Some(Ok(fetched))) => items.start(fetched),
                }
            },
            Source::Whole { pages, buffer } => loop {
                if let Some(item) = buffer.pop_front() {
                    break Poll::Ready(Some(Ok(item)));
                }
                if buffer.capacity() > 0 {
                    *buffer = VecDeque::new();
                }
                match pages.as_mut().poll_next(cx) {
                    Poll::Pending => break Poll::Pending,
                    Poll::Ready(None) => break Poll::Ready(None),
                    Poll::Ready(Some(Err(error))) => break Poll::Ready(Some(Err(error))),
                    Poll::Ready(Some(Ok(fetched))) => *buffer = fetched.into_items().into(),
                }
            },
        };
        if matches!(polled, Poll::Ready(None) | Poll::Ready(Some(Err(_)))) {
            this.done = true;
            if let Source::Lazy { items, .. } = &mut this.source {
                items.release();
            }
        }
        polled
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let buffered = self.buffered();
        (buffered, self.done.then_some(0))
    }
}

/// A followed job's progress as it happens: `Stream<Item = Result<JobProgress, Error>>`, owned
/// (`Send + 'static`), from [`jobs().follow`](crate::Jobs::follow). Step events come while the
/// job runs; [`JobProgress::Finished`] with the [`JobReport`](crate::JobReport) is the last item.
/// After an error (a failed `GET /jobs/{id}`, with the ids) it ends.
#[must_use = "a stream does nothing until polled"]
pub struct Follow {
    inner: BoxStream<'static, Result<JobProgress, Error>>,
}

impl fmt::Debug for Follow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Follow").finish_non_exhaustive()
    }
}

impl Follow {
    pub(crate) fn new(client: Client, follow: JobFollow, span: tracing::Span) -> Self {
        let inner = futures_util::stream::unfold(
            (client, follow, span),
            |(client, mut follow, span)| async move {
                let item = tracing::Instrument::instrument(
                    drive_to_event(&client, &mut follow, &span),
                    span.clone(),
                )
                .await?;
                Some((item, (client, follow, span)))
            },
        );
        Self {
            inner: Box::pin(inner),
        }
    }
}

/// Runs the follow's requests and waits until it has an event (or an error) to hand out.
async fn drive_to_event(
    client: &Client,
    follow: &mut JobFollow,
    span: &tracing::Span,
) -> Option<Result<JobProgress, Error>> {
    loop {
        match follow.next_step() {
            FollowStep::Fetch(op) => {
                let job = client.execute(op).await;
                if let Err(error) = follow.on_job(job, client.now()) {
                    return Some(Err(error));
                }
                crate::flows::record_ids(span, follow.context());
            }
            FollowStep::Connectors(op) => follow.on_connectors(client.execute(op).await),
            FollowStep::Sleep(d) => {
                client.sleep_for(d).await;
                follow.slept(d);
            }
            FollowStep::Progress(event) => return Some(Ok(event)),
            // `FollowStep` may grow; anything unknown ends the follow.
            _ => return None,
        }
    }
}

impl Stream for Follow {
    type Item = Result<JobProgress, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.inner.as_mut().poll_next(cx)
    }
}
