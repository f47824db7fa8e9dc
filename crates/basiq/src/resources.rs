//! The facade's hand-written helpers, written once for both clients.
//!
//! Plain endpoint methods (one operation each) are generated into `endpoints.rs` from the spec;
//! what is here does more than execute one operation: follow / wait on a job, answer MFA,
//! triage, the guarded refresh, the consent link with its pause guard, owned pagination. Each
//! helper is its own small macro, stamped out for the async client (`async fn … .await`) and the
//! blocking client (plain `fn`) by [`resources!`], so the two clients cannot drift; the wrapper
//! structs come from `resource!` (invoked by the generated code), and both refresh helpers open
//! their span with `refresh_span!`.
//!
//! The wrappers are `Copy` and their methods take `self`, so a future such as
//! `client.users().get(id)` borrows only the client, not the temporary wrapper: it can be stored,
//! joined or spawned-with-scope like any other future.

/// A resource wrapper: a `Copy` handle on the client (see the module docs).
macro_rules! resource {
    ($client:ident, $(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy)]
        pub struct $name<'a> {
            client: &'a $client,
        }
    };
}

pub(crate) use resource;

/// The span of a refresh helper: both carry the user, the connection and (recorded once known)
/// the job, never a token.
macro_rules! refresh_span {
    ($name:literal, $user_id:ident, $connection_id:ident) => {
        ::tracing::info_span!(
            $name,
            user_id = %$user_id,
            connection_id = %$connection_id,
            job_id = ::tracing::field::Empty,
        )
    };
}

pub(crate) use refresh_span;
/// `jobs().wait` / `wait_as`: the last event of a follow.
macro_rules! jobs_wait {
    (client = $client:ident, [$($async:tt)*], [$($await:tt)*], traced = $traced:ident) => {
        impl<'a> Jobs<'a> {
            /// Follows a job until it is done or `config.deadline` passes, and explains how it
            /// ended: the last event of [`follow`](Self::follow). Basiq asks integrators to follow
            /// progress through the job's *steps*: steps are found by title
            /// ([`JobPoller`]($crate::jobs::JobPoller)), never by index, and the waits back off
            /// (1 s ×1.5, capped at 10 s by default) so following a job never becomes a tight loop
            /// of `GET /jobs/{id}`.
            ///
            /// A job waiting for the user's answer to a multi-factor challenge (its
            /// `mfa-challenge` step in progress) stops the wait at once with
            /// [`WaitOutcome::MfaRequired`]($crate::WaitOutcome) and the challenge (method,
            /// prompts, expiry) — it cannot progress on its own, so polling on would only run to
            /// the deadline. Answer with [`answer_mfa`](Self::answer_mfa), then `wait` again.
            ///
            /// A failed job is not an `Err`: it is [`WaitOutcome::Failed`]($crate::WaitOutcome)
            /// with Basiq's code classified and the action to take (re-enter credentials, wait
            /// for the institution, …). When it failed, `/connectors` is consulted for its
            /// institution, as [`users().triage`](Users::triage) does, so both give one verdict:
            /// a failure during an outage is "their end". `Err` is kept for calls that failed; it
            /// carries the job id (and the user and connection once a snapshot named them). The
            /// time comes from the client's clock and the waits go through the client's sleep,
            /// so tests run it on virtual time.
            ///
            /// The failure is classified as [`JobKind::Unknown`]($crate::jobs::JobKind); use
            /// [`wait_as`](Self::wait_as) when you know whether the job creates or refreshes a
            /// connection (Basiq's advice for `service-unavailable` differs between the two).
            pub $($async)* fn wait(
                self,
                job_id: impl $crate::id::IntoId<$crate::id::JobId>,
                config: $crate::jobs::PollConfig,
            ) -> Result<$crate::JobReport, $crate::Error> {
                self.wait_as(job_id, $crate::jobs::JobKind::Unknown, config)$($await)*
            }

            /// [`wait`](Self::wait), classifying a failure as a job of `kind`.
            pub $($async)* fn wait_as(
                self,
                job_id: impl $crate::id::IntoId<$crate::id::JobId>,
                kind: $crate::jobs::JobKind,
                config: $crate::jobs::PollConfig,
            ) -> Result<$crate::JobReport, $crate::Error> {
                let job_id = $crate::id::IntoId::into_id(job_id)?;
                let span = ::tracing::info_span!(
                    "basiq.jobs.wait",
                    job_id = %job_id,
                    user_id = ::tracing::field::Empty,
                    connection_id = ::tracing::field::Empty,
                );
                let mut follow = self.start_follow(job_id, kind, config, span);
                while let Some(event) = follow.next()$($await)* {
                    if let $crate::JobProgress::Finished(report) = event? {
                        return Ok(*report);
                    }
                }
                // A follow always ends with its report or an error.
                Err($crate::Error::invalid_input("following the job ended without a report"))
            }
        }
    };
}

pub(crate) use jobs_wait;

/// `jobs().follow` / `follow_as`: live progress of a job.
macro_rules! jobs_follow {
    (client = $client:ident, [$($async:tt)*], [$($await:tt)*], traced = $traced:ident) => {
        impl<'a> Jobs<'a> {
            /// The job's progress **as it happens**: an owned stream (async client) or iterator
            /// (blocking client) of [`JobProgress`]($crate::JobProgress) — a step started,
            /// succeeded or failed, the bank's multi-factor challenge — ending with
            /// [`Finished`]($crate::JobProgress::Finished) and the report [`wait`](Self::wait)
            /// returns. Show the steps to the user while they wait; polls back off as in `wait`,
            /// and `/connectors` is consulted for a failure. It holds a clone of the client, so
            /// it can be spawned or returned. The span `basiq.jobs.follow` carries the job, user
            /// and connection ids.
            pub fn follow(
                self,
                job_id: impl $crate::id::IntoId<$crate::id::JobId>,
                config: $crate::jobs::PollConfig,
            ) -> Result<Follow, $crate::Error> {
                self.follow_as(job_id, $crate::jobs::JobKind::Unknown, config)
            }

            /// [`follow`](Self::follow), classifying a failure as a job of `kind`.
            pub fn follow_as(
                self,
                job_id: impl $crate::id::IntoId<$crate::id::JobId>,
                kind: $crate::jobs::JobKind,
                config: $crate::jobs::PollConfig,
            ) -> Result<Follow, $crate::Error> {
                let job_id = $crate::id::IntoId::into_id(job_id)?;
                let span = ::tracing::info_span!(
                    "basiq.jobs.follow",
                    job_id = %job_id,
                    user_id = ::tracing::field::Empty,
                    connection_id = ::tracing::field::Empty,
                );
                Ok(self.start_follow(job_id, kind, config, span))
            }

            fn start_follow(
                self,
                job_id: $crate::id::JobId,
                kind: $crate::jobs::JobKind,
                config: $crate::jobs::PollConfig,
                span: ::tracing::Span,
            ) -> Follow {
                let follow = ::basiq_core::flows::follow::JobFollow::new(
                    job_id,
                    kind,
                    config,
                    self.client.now(),
                );
                Follow::new(self.client.clone(), follow, span)
            }
        }
    };
}

pub(crate) use jobs_follow;

/// `jobs().answer_mfa`: answer once, then read the job.
macro_rules! jobs_answer_mfa {
    (client = $client:ident, [$($async:tt)*], [$($await:tt)*], traced = $traced:ident) => {
        impl<'a> Jobs<'a> {
            /// `POST /jobs/{jobId}/mfa`: sends the user's answers to the multi-factor challenge
            /// job `job_id` waits on ([`WaitOutcome::MfaRequired`]($crate::WaitOutcome)), one
            /// per prompt in the prompts' order, then reads the job again and returns it. Follow
            /// it on with [`wait`](Self::wait): a right answer lets it continue to success, a
            /// wrong one fails it (`invalid-credentials`: the user has to try again through the
            /// Consent UI).
            ///
            /// Basiq requires a `CLIENT_ACCESS` token bound to the job's user `user_id`: a fresh
            /// one is fetched for this call and dropped after it — never cached, and the server
            /// token is never sent here. The answers are secrets: they are wrapped at once in
            /// [`MfaAnswers`]($crate::mfa::MfaAnswers) (zeroized on drop, `[REDACTED]` in
            /// `Debug`) and never logged; the span `basiq.jobs.answer_mfa` carries `job_id`,
            /// `user_id` and the number of answers, and errors carry both ids.
            ///
            /// **Answer once.** The call is never retried: a second answer could count as
            /// another wrong attempt and lock the user's bank account. After an `Err` that may
            /// have reached Basiq (a timeout, a 5xx), [`get`](Self::get) the job and answer
            /// again only if [`Job::mfa_challenge`]($crate::models::Job::mfa_challenge) still
            /// shows the challenge. No answers, or a blank one, is
            /// [`Error::InvalidInput`]($crate::Error::InvalidInput) before any request.
            pub $($async)* fn answer_mfa(
                self,
                job_id: impl $crate::id::IntoId<$crate::id::JobId>,
                user_id: impl $crate::id::IntoId<$crate::id::UserId>,
                answers: Vec<String>,
            ) -> Result<$crate::models::Job, $crate::Error> {
                let answers = $crate::mfa::MfaAnswers::new(answers);
                let job_id = $crate::id::IntoId::into_id(job_id)?;
                let user_id = $crate::id::IntoId::into_id(user_id)?;
                let span = ::tracing::info_span!(
                    "basiq.jobs.answer_mfa",
                    job_id = %job_id,
                    user_id = %user_id,
                    answers = answers.len(),
                );
                $traced!(span, self.answer_then_read(job_id, user_id, answers))
            }

            $($async)* fn answer_then_read(
                self,
                job_id: $crate::id::JobId,
                user_id: $crate::id::UserId,
                answers: $crate::mfa::MfaAnswers,
            ) -> Result<$crate::models::Job, $crate::Error> {
                let context = $crate::ErrorContext::new()
                    .with_user(&user_id)
                    .with_job(&job_id);
                let op = $crate::mfa::AnswerJobMfa::new(job_id.clone(), user_id, answers);
                if let Err(e) = self.client.execute(op)$($await)* {
                    ::tracing::warn!(
                        error.kind = ?e.kind(),
                        error.status = ?e.status(),
                        "answering the MFA challenge failed; not retried (read the job before \
                         answering again)"
                    );
                    return Err(e);
                }
                ::tracing::info!("MFA answer sent");
                self.client
                    .execute($crate::operations::GetJob::new(job_id))
                    $($await)*
                    .map_err(|e| e.with_context(&context))
            }
        }
    };
}

pub(crate) use jobs_answer_mfa;

/// `users().triage`: the failures no later success fixed.
macro_rules! users_triage {
    (client = $client:ident, [$($async:tt)*], [$($await:tt)*], traced = $traced:ident) => {
        impl<'a> Users<'a> {
            /// The daily / at-login check Basiq asks for: the user's jobs of the last 7 days,
            /// and the failures no later success has fixed — each classified, with the action to
            /// take ([`triage_user`]($crate::jobs::triage_user)). When something failed,
            /// `/connectors` is consulted for those institutions: a failure during a
            /// `partial-outage`/`major-outage` is "their end, retry when operational"
            /// ([`FailureClass::InstitutionOutage`]($crate::jobs::FailureClass)), not the user's
            /// problem. If `/connectors` cannot be read, the failures are still reported
            /// (classified by their code) and a warning is logged.
            pub $($async)* fn triage(
                self,
                user_id: impl $crate::id::IntoId<$crate::id::UserId>,
            ) -> Result<Vec<$crate::jobs::UnresolvedFailure>, $crate::Error> {
                let user_id = $crate::id::IntoId::into_id(user_id)?;
                let span = ::tracing::info_span!("basiq.users.triage", user_id = %user_id);
                $traced!(span, self.triage_inner(user_id))
            }

            $($async)* fn triage_inner(
                self,
                user_id: $crate::id::UserId,
            ) -> Result<Vec<$crate::jobs::UnresolvedFailure>, $crate::Error> {
                let jobs = self.client.all_user_jobs(&user_id)$($await)*?;
                let connectors = self.client.connector_health(&jobs)$($await)*;
                let failures =
                    $crate::jobs::triage_user(&jobs, &connectors, self.client.now());
                for f in &failures {
                    ::tracing::info!(
                        user_id = %user_id,
                        job_id = %f.job_id,
                        connection_id = f.connection_id.as_ref().map(|c| c.as_str()),
                        code = f.failure.code.as_str(),
                        action = %f.action,
                        "unresolved job failure"
                    );
                }
                Ok(failures)
            }
        }
    };
}

pub(crate) use users_triage;

/// The reads the guards share: connector health and every job of a user.
macro_rules! client_job_reads {
    (client = $client:ident, [$($async:tt)*], [$($await:tt)*], traced = $traced:ident) => {
        impl $client {
            /// The health of the connectors of `jobs`' failed institutions, for classifying their
            /// failures (empty when nothing failed: `/connectors` is not asked). `wait` and
            /// `triage` both use it, so one failure gets one verdict. If `/connectors` cannot be
            /// read, a warning is logged and failures are classified by their codes only.
            $($async)* fn connector_health(
                &self,
                jobs: &[$crate::models::Job],
            ) -> Vec<$crate::connectors::ConnectorStatusView> {
                let Some(op) = ::basiq_core::flows::triage::connectors_for_failures(jobs) else {
                    return Vec::new();
                };
                match self.execute(op)$($await)* {
                    Ok(list) => list
                        .data
                        .iter()
                        .map($crate::connectors::ConnectorStatusView::from)
                        .collect(),
                    Err(error) => {
                        ::tracing::warn!(
                            %error,
                            "could not read /connectors; classifying failures by their codes only"
                        );
                        Vec::new()
                    }
                }
            }

            /// The user's jobs (Basiq keeps 7 days), following `links.next` should Basiq ever
            /// paginate them: the guards must see every running job, not the first page.
            $($async)* fn all_user_jobs(
                &self,
                user_id: &$crate::id::UserId,
            ) -> Result<Vec<$crate::models::Job>, $crate::Error> {
                use $crate::pagination::Page as _;
                let context = $crate::ErrorContext::new().with_user(user_id);
                let mut page = self
                    .execute($crate::operations::ListUserJobs::new(user_id.clone()))
                    $($await)*?;
                let mut jobs = Vec::new();
                let mut walk = $crate::flows::PageWalk::new(self.policies().page_limits);
                loop {
                    let next = page.next_page(self.executor().base_url())?;
                    let follow = walk.follow(&page, next.as_ref().map(|op| op.url()), &context)?;
                    jobs.append(&mut page.data);
                    let Some(op) = next.filter(|_| follow) else { return Ok(jobs) };
                    page = self.execute(op.with_context(context.clone()))$($await)*?;
                }
            }
        }
    };
}

pub(crate) use client_job_reads;

/// `client.consent_url`: a Consent UI link behind the duplicate-pause guard.
macro_rules! client_consent_url {
    (client = $client:ident, [$($async:tt)*], [$($await:tt)*], traced = $traced:ident) => {
        impl $client {
            /// A link to Basiq's Consent UI for `user_id` — unless an attempt with the same
            /// credentials is already running.
            ///
            /// Basiq pauses a second attempt with the same credentials for **6 minutes** while
            /// one is in progress (to avoid locking the user's bank account). So before minting
            /// a `CLIENT_ACCESS` token this looks at the user's jobs with
            /// [`DuplicatePauseGuard`]($crate::pause::DuplicatePauseGuard) (same institution for
            /// a connect, same connection for an update or reauthorise; conservative when
            /// neither is known) and answers
            /// [`FollowExisting`]($crate::ConsentOutcome::FollowExisting) or
            /// [`Paused`]($crate::ConsentOutcome::Paused) instead of a link when one runs.
            ///
            /// The link's URL holds the client token (`token=…`, plus `action`, `state`,
            /// `institutionId`, `connectionId`, URL-encoded); `Debug` redacts it.
            pub $($async)* fn consent_url(
                &self,
                user_id: impl $crate::id::IntoId<$crate::id::UserId>,
                request: impl Into<$crate::ConsentRequest>,
            ) -> Result<$crate::ConsentOutcome, $crate::Error> {
                let user_id = $crate::id::IntoId::into_id(user_id)?;
                let request = request.into();
                let span = ::tracing::info_span!(
                    "basiq.consent_url",
                    user_id = %user_id,
                    action = request.action.as_str(),
                    connection_id = request.action.connection_id().map(|c| c.as_str()),
                    institution_id = request.action.institution().map(|i| i.as_str()),
                );
                $traced!(span, self.consent_inner(user_id, request))
            }

        }
    };
}

pub(crate) use client_consent_url;

/// Drives `basiq_core::flows::consent::ConsentFlow` for `consent_url`.
macro_rules! client_consent_flow {
    (client = $client:ident, [$($async:tt)*], [$($await:tt)*], traced = $traced:ident) => {
        impl $client {
            $($async)* fn consent_inner(
                &self,
                user_id: $crate::id::UserId,
                request: $crate::ConsentRequest,
            ) -> Result<$crate::ConsentOutcome, $crate::Error> {
                use ::basiq_core::flows::consent::{ConsentFlow, ConsentStep, ConsentVerdict};
                let base = self.policies().consent_base()?;
                let (institution, connection) = (
                    request.action.institution().cloned(),
                    request.action.connection_id().cloned(),
                );
                let fleet = self.fleet_config().cloned();
                let mut flow = ConsentFlow::new(user_id, institution, connection, fleet);
                let mut token = None;
                let mut step = flow.start();
                loop {
                    step = match step {
                        ConsentStep::ReadJobs(user) => {
                            let jobs = self.all_user_jobs(&user)$($await)*;
                            flow.on_jobs(jobs, self.now())
                        }
                        ConsentStep::Claim(mut attempt) => {
                            let verdict = self.drive_attempt(&mut attempt)$($await)*;
                            flow.on_claim(attempt, verdict)
                        }
                        ConsentStep::MintToken(user) => {
                            let minted = self.client_token(&user)$($await)*;
                            flow.on_token(minted.map(|t| token = Some((user, t))))
                        }
                        ConsentStep::Settle(attempt, result) => {
                            self.settle_attempt(&attempt, &result)$($await)*;
                            flow.on_settled()
                        }
                        ConsentStep::Done(Ok(ConsentVerdict::Proceed)) => {
                            let Some((user, token)) = token else {
                                return Err($crate::Error::invalid_input("consent flow ended without a token"));
                            };
                            let link = $crate::ConsentLink::build(&base, &token, user, request);
                            return Ok($crate::ConsentOutcome::Link(link));
                        }
                        ConsentStep::Done(result) => {
                            let outcome = $crate::flows::consent_held(result?);
                            ::tracing::info!(?outcome, "not sending the user to the Consent UI");
                            return Ok(outcome);
                        }
                    };
                }
            }
        }
    };
}

pub(crate) use client_consent_flow;

/// `connections().refresh`: the guarded refresh.
macro_rules! connections_refresh {
    (client = $client:ident, [$($async:tt)*], [$($await:tt)*], traced = $traced:ident) => {
        impl<'a> Connections<'a> {
            /// Refreshes a connection **only when Basiq's rules allow it**, and says what happened.
            ///
            /// Before any `POST …/refresh` it reads the connection (`status`, `method`,
            /// `lastUsed`) and the user's jobs of the last 7 days, and asks
            /// [`RefreshPolicy::decide`]($crate::refresh::RefreshPolicy::decide) with the
            /// client's [`RefreshLedger`]($crate::refresh::RefreshLedger) and the
            /// [`DuplicatePauseGuard`]($crate::pause::DuplicatePauseGuard). Basiq asks to refresh
            /// *rarely* (banks lock users out or block Basiq), only *active* connections, after
            /// checking `lastUsed` and the jobs, at most 20 a day for open banking, and never a
            /// second attempt while one runs (Basiq pauses it 6 minutes). So:
            ///
            /// * [`Skipped`]($crate::RefreshOutcome::Skipped) — nothing sent: inactive
            ///   (`invalid` needs the user to re-enter credentials), not refreshable, a job is
            ///   running (follow it), the last attempt failed, refreshed within
            ///   `min_interval`, or the daily quota is used;
            /// * [`Paused`]($crate::RefreshOutcome::Paused) — nothing sent: Basiq is pausing a
            ///   duplicate;
            /// * [`Started`]($crate::RefreshOutcome::Started) /
            ///   [`AlreadyRunning`]($crate::RefreshOutcome::AlreadyRunning) — sent, recorded in
            ///   the ledger; 200 + the existing job means Basiq was already refreshing: follow
            ///   that job.
            ///
            /// A refresh is never retried automatically (it is not idempotent); after an
            /// ambiguous failure call `refresh` again — the guard sees the job if it started.
            pub $($async)* fn refresh(
                self,
                user_id: impl $crate::id::IntoId<$crate::id::UserId>,
                connection_id: impl $crate::id::IntoId<$crate::id::ConnectionId>,
            ) -> Result<$crate::RefreshOutcome, $crate::Error> {
                let user_id = $crate::id::IntoId::into_id(user_id)?;
                let connection_id = $crate::id::IntoId::into_id(connection_id)?;
                let span = $crate::resources::refresh_span!(
                    "basiq.connections.refresh",
                    user_id,
                    connection_id
                );
                let recorder = span.clone();
                $traced!(span, self.refresh_guarded(user_id, connection_id, recorder))
            }

        }
    };
}

pub(crate) use connections_refresh;

/// Drives `basiq_core::flows::refresh::GuardedRefresh` for `refresh`.
macro_rules! connections_refresh_guarded {
    (client = $client:ident, [$($async:tt)*], [$($await:tt)*], traced = $traced:ident) => {
        impl<'a> Connections<'a> {
            $($async)* fn refresh_guarded(
                self,
                user_id: $crate::id::UserId,
                connection_id: $crate::id::ConnectionId,
                span: ::tracing::Span,
            ) -> Result<$crate::RefreshOutcome, $crate::Error> {
                use ::basiq_core::flows::refresh::{GuardedRefresh, RefreshStep, RefreshVerdict};
                let (client, policies) = (self.client, self.client.policies());
                let fleet = client.fleet_config().cloned();
                let mut flow =
                    GuardedRefresh::new(user_id, connection_id, policies.refresh_policy, fleet);
                if policies.freshness.is_some() {
                    flow = flow.consult_freshness();
                }
                let mut step = flow.start();
                loop {
                    step = match step {
                        // Basiq refreshed it (its webhooks said): nothing to read or send.
                        RefreshStep::LastRefreshedByBasiq(connection) => {
                            let last = policies.last_refreshed_by_basiq(&connection);
                            flow.on_freshness(last, client.now())
                        }
                        RefreshStep::ReadConnection(op) => flow.on_connection(client.execute(op)$($await)*),
                        RefreshStep::ReadJobs(user) => {
                            let jobs = client.all_user_jobs(&user)$($await)*;
                            policies.with_ledger(|ledger| flow.on_jobs(jobs, ledger, client.now()))
                        }
                        RefreshStep::Claim(mut attempt) => {
                            let verdict = client.drive_attempt(&mut attempt)$($await)*;
                            policies.with_ledger(|ledger| flow.on_claim(attempt, verdict, ledger, client.now()))
                        }
                        RefreshStep::Send(op) => flow.on_sent(client.execute(op)$($await)*),
                        RefreshStep::Settle(attempt, result) => {
                            client.settle_attempt(&attempt, &result)$($await)*;
                            flow.on_settled()
                        }
                        RefreshStep::Done(Ok(RefreshVerdict::Sent(response))) => {
                            return Ok($crate::resources::sent(response.into(), &span));
                        }
                        RefreshStep::Done(result) => {
                            return result.map(|v| $crate::resources::not_sent(v.into(), &span));
                        }
                    };
                }
            }
        }
    };
}

pub(crate) use connections_refresh_guarded;

/// Sending a refresh: after the guard, or `refresh_unchecked` without it.
macro_rules! connections_refresh_send {
    (client = $client:ident, [$($async:tt)*], [$($await:tt)*], traced = $traced:ident) => {
        impl<'a> Connections<'a> {
            $($async)* fn send_refresh(
                self,
                user_id: $crate::id::UserId,
                connection_id: $crate::id::ConnectionId,
                span: ::tracing::Span,
            ) -> Result<$crate::RefreshOutcome, $crate::Error> {
                let response = self
                    .client
                    .execute($crate::operations::RefreshConnection::new(user_id, connection_id))
                    $($await)*?;
                Ok($crate::resources::sent(response.into(), &span))
            }

            /// Sends `POST …/refresh` **without** the guard of [`refresh`](Self::refresh): no
            /// status, `lastUsed`, job, pause or quota check. Refreshing too often gets users
            /// locked out of their bank and Basiq blocked, and a duplicate attempt is paused for
            /// 6 minutes — use it only when your own logic has already applied those rules (e.g.
            /// a scheduler driven by webhooks). It is still recorded in the ledger, so it counts
            /// against the open-banking daily quota that `refresh` enforces.
            pub $($async)* fn refresh_unchecked(
                self,
                user_id: impl $crate::id::IntoId<$crate::id::UserId>,
                connection_id: impl $crate::id::IntoId<$crate::id::ConnectionId>,
            ) -> Result<$crate::RefreshOutcome, $crate::Error> {
                let user_id = $crate::id::IntoId::into_id(user_id)?;
                let connection_id = $crate::id::IntoId::into_id(connection_id)?;
                let span = $crate::resources::refresh_span!(
                    "basiq.connections.refresh_unchecked",
                    user_id,
                    connection_id
                );
                self.client.policies().record_refresh(&connection_id, self.client.now());
                let recorder = span.clone();
                $traced!(span, self.send_refresh(user_id, connection_id, recorder))
            }
        }
    };
}

pub(crate) use connections_refresh_send;

/// `plan_refreshes` and `refresh_planned`: many connections, spread out.
macro_rules! connections_refresh_plan {
    (client = $client:ident, [$($async:tt)*], [$($await:tt)*], traced = $traced:ident) => {
        impl<'a> Connections<'a> {
            /// Plans refreshes of many connections over `window` starting at `now`, at most
            /// [`max_refreshes_per_minute`](ClientBuilder::max_refreshes_per_minute) in any 60
            /// seconds, each connection at a stable slot
            /// ([`RefreshScheduler`]($crate::refresh::RefreshScheduler)).
            ///
            /// This is the SDK's only way to refresh many connections, on purpose: Basiq warns
            /// that bulk refreshes get users locked out or Basiq blocked (and recommends its
            /// daily background refresh instead). There is no "refresh all" helper; call
            /// [`refresh`](Self::refresh) for each planned connection at its time, so every one
            /// still passes the guard. `overflow` lists what did not fit: plan it later.
            pub fn plan_refreshes(
                self,
                candidates: &[$crate::id::ConnectionId],
                window: std::time::Duration,
                now: ::time::OffsetDateTime,
            ) -> $crate::refresh::RefreshSchedule {
                self.client.policies().plan_refreshes(candidates, window, now)
            }

            /// Runs one planned refresh (from [`plan_refreshes`](Self::plan_refreshes)) through
            /// the guard of [`refresh`](Self::refresh) — in fleet mode only after claiming its
            /// slot, so instances executing the same plan never refresh a connection twice (the
            /// losers get [`SkipReason::InProgressElsewhere`]($crate::refresh::SkipReason::InProgressElsewhere)).
            /// Without a fleet it is `refresh`.
            pub $($async)* fn refresh_planned(
                self,
                user_id: impl $crate::id::IntoId<$crate::id::UserId>,
                planned: &$crate::refresh::ScheduledRefresh,
            ) -> Result<$crate::RefreshOutcome, $crate::Error> {
                let user_id = $crate::id::IntoId::into_id(user_id)?;
                if let Some(fleet) = self.client.fleet_config() {
                    let mut claim = ::basiq_core::policy::fleet::FleetAttempt::new(
                        fleet.keys().planned_slot(&planned.connection_id, planned.at),
                        fleet.instance(),
                        self.client.now(),
                        Vec::new(),
                    )
                    .exclusive($crate::flows::PLANNED_SLOT_HORIZON);
                    if let Err(refusal) = self.client.drive_attempt(&mut claim)$($await)* {
                        let outcome = $crate::flows::refresh_refused(refusal, self.client.now());
                        ::tracing::info!(
                            user_id = %user_id,
                            connection_id = %planned.connection_id,
                            ?outcome,
                            "planned refresh taken by another instance"
                        );
                        return Ok(outcome);
                    }
                }
                self.refresh(&user_id, &planned.connection_id)$($await)*
            }
        }
    };
}

pub(crate) use connections_refresh_plan;

/// `transactions().next_page` and `all`.
macro_rules! transactions_walk {
    (client = $client:ident, [$($async:tt)*], [$($await:tt)*], traced = $traced:ident) => {
        impl<'a> Transactions<'a> {
            /// The page after `page` (its `links.next`), `None` on the last page. A link to
            /// another origin than the API base is refused before any request: the bearer token
            /// would go with it.
            pub $($async)* fn next_page(
                self,
                page: &$crate::models::TransactionList,
            ) -> Result<Option<$crate::models::TransactionList>, $crate::Error> {
                use $crate::pagination::Page as _;
                match page.next_page(self.client.executor().base_url())? {
                    Some(op) => self.client.execute(op)$($await)*.map(Some),
                    None => Ok(None),
                }
            }


            /// Every transaction matching `query`, following `links.next` to the last page
            /// (same origin only; a link that loops back is an error; an empty page ends the
            /// walk; beyond the client's [`page_limits`](ClientBuilder::page_limits) it is an
            /// [`Error::PageLimit`]($crate::Error::PageLimit)). Each page is one request; the
            /// `Vec` is reserved from Basiq's `size` and each page is dropped once moved in. For
            /// long histories prefer [`items`](Self::items): one page in memory at a time.
            pub $($async)* fn all(
                self,
                user_id: impl $crate::id::IntoId<$crate::id::UserId>,
                query: $crate::TransactionQuery,
            ) -> Result<Vec<$crate::models::Transaction>, $crate::Error> {
                let user_id = $crate::id::IntoId::into_id(user_id)?;
                let span = ::tracing::info_span!("basiq.transactions.all", user_id = %user_id);
                let pages = Pages::new(self.client.clone(), query.operation(user_id));
                $traced!(span, pages.collect_items())
            }
        }
    };
}

pub(crate) use transactions_walk;

/// `transactions().items` / `pages`: owned, one page in memory.
macro_rules! transactions_streams {
    (client = $client:ident, [$($async:tt)*], [$($await:tt)*], traced = $traced:ident) => {
        impl<'a> Transactions<'a> {
            /// Every transaction matching `query`, one at a time: an owned stream (async client)
            /// or iterator (blocking client) holding a clone of the client, fetching the next
            /// page (`links.next`, same origin only) when the current one is used up — one page
            /// in memory however long the history. No request until it is first polled; it ends
            /// after the last page, or after yielding one error.
            pub fn items(
                self,
                user_id: impl $crate::id::IntoId<$crate::id::UserId>,
                query: $crate::TransactionQuery,
            ) -> Result<Items<$crate::models::TransactionList>, $crate::Error> {
                Ok(self.pages(user_id, query)?.items())
            }

            /// The pages of [`items`](Self::items), each a
            /// [`TransactionList`]($crate::models::TransactionList) (with Basiq's `size`).
            pub fn pages(
                self,
                user_id: impl $crate::id::IntoId<$crate::id::UserId>,
                query: $crate::TransactionQuery,
            ) -> Result<Pages<$crate::models::TransactionList>, $crate::Error> {
                let user_id = $crate::id::IntoId::into_id(user_id)?;
                Ok(Pages::new(self.client.clone(), query.operation(user_id)))
            }
        }
    };
}

pub(crate) use transactions_streams;

/// Owned `items` / `pages` of the per-user lists.
macro_rules! accounts_streams {
    (client = $client:ident, [$($async:tt)*], [$($await:tt)*], traced = $traced:ident) => {
        impl<'a> Accounts<'a> {
            /// Every account of the user, page after page (owned; see
            /// [`Transactions::items`]).
            pub fn items(
                self,
                user_id: impl $crate::id::IntoId<$crate::id::UserId>,
            ) -> Result<Items<$crate::models::AccountList>, $crate::Error> {
                Ok(self.pages(user_id)?.items())
            }

            /// The pages of [`items`](Self::items).
            pub fn pages(
                self,
                user_id: impl $crate::id::IntoId<$crate::id::UserId>,
            ) -> Result<Pages<$crate::models::AccountList>, $crate::Error> {
                let op =
                    $crate::operations::ListAccounts::new($crate::id::IntoId::into_id(user_id)?);
                Ok(Pages::new(self.client.clone(), op))
            }
        }
    };
}

pub(crate) use accounts_streams;

/// Owned `items` / `pages` of connections and of the user's jobs.
macro_rules! connections_jobs_streams {
    (client = $client:ident, [$($async:tt)*], [$($await:tt)*], traced = $traced:ident) => {
        impl<'a> Connections<'a> {
            /// Every connection of the user, page after page (owned; see
            /// [`Transactions::items`]).
            pub fn items(
                self,
                user_id: impl $crate::id::IntoId<$crate::id::UserId>,
            ) -> Result<Items<$crate::models::ConnectionList>, $crate::Error> {
                Ok(self.pages(user_id)?.items())
            }

            /// The pages of [`items`](Self::items).
            pub fn pages(
                self,
                user_id: impl $crate::id::IntoId<$crate::id::UserId>,
            ) -> Result<Pages<$crate::models::ConnectionList>, $crate::Error> {
                let op =
                    $crate::operations::ListConnections::new($crate::id::IntoId::into_id(user_id)?);
                Ok(Pages::new(self.client.clone(), op))
            }
        }

        impl<'a> Jobs<'a> {
            /// Every job of the user (Basiq keeps 7 days), page after page (owned; see
            /// [`Transactions::items`]).
            pub fn items_for_user(
                self,
                user_id: impl $crate::id::IntoId<$crate::id::UserId>,
            ) -> Result<Items<$crate::models::JobList>, $crate::Error> {
                Ok(self.pages_for_user(user_id)?.items())
            }

            /// The pages of [`items_for_user`](Self::items_for_user).
            pub fn pages_for_user(
                self,
                user_id: impl $crate::id::IntoId<$crate::id::UserId>,
            ) -> Result<Pages<$crate::models::JobList>, $crate::Error> {
                let op =
                    $crate::operations::ListUserJobs::new($crate::id::IntoId::into_id(user_id)?);
                Ok(Pages::new(self.client.clone(), op))
            }
        }
    };
}

pub(crate) use connections_jobs_streams;

/// `client.pages(op)` / `items(op)` and the connectors' owned lists.
macro_rules! client_lists {
    (client = $client:ident, [$($async:tt)*], [$($await:tt)*], traced = $traced:ident) => {
        impl $client {
            /// The pages of any list operation — every list of Basiq's API, filtered as the
            /// operation says (e.g. `ListAccounts::new(user).filter(..)`,
            /// `ListConsents::new(user)`): an owned stream (async) or iterator (blocking) that
            /// follows `links.next` on the API's origin only, one page in memory at a time.
            pub fn pages<O>(&self, list: O) -> Pages<O::Output>
            where
                O: $crate::operation::Operation + Send + Sync + 'static,
                O::Output:
                    $crate::pagination::Page + ::serde::de::DeserializeOwned + Send + 'static,
            {
                Pages::new(self.clone(), list)
            }

            /// The items of [`pages`](Self::pages), one at a time.
            pub fn items<O>(&self, list: O) -> Items<O::Output>
            where
                O: $crate::operation::Operation + Send + Sync + 'static,
                O::Output:
                    $crate::pagination::Page + ::serde::de::DeserializeOwned + Send + 'static,
                <O::Output as $crate::pagination::Page>::Item:
                    ::serde::de::DeserializeOwned + Send + 'static,
            {
                self.pages(list).items()
            }
        }

        impl<'a> Connectors<'a> {
            /// Every connector (institution and method) with its health, page after page
            /// (owned; see [`Transactions::items`]).
            pub fn items(self) -> Items<$crate::models::ConnectorList> {
                self.pages().items()
            }

            /// The pages of [`items`](Self::items).
            pub fn pages(self) -> Pages<$crate::models::ConnectorList> {
                Pages::new(
                    self.client.clone(),
                    $crate::operations::ListConnectors::new(),
                )
            }
        }
    };
}

pub(crate) use client_lists;

/// Stamps every hand-written helper above for one client flavour.
macro_rules! resources {
    (client = $client:ident, [$($async:tt)*], [$($await:tt)*], traced = $traced:ident) => {
        $crate::resources::jobs_wait!(client = $client, [$($async)*], [$($await)*], traced = $traced);
        $crate::resources::jobs_follow!(client = $client, [$($async)*], [$($await)*], traced = $traced);
        $crate::resources::jobs_answer_mfa!(client = $client, [$($async)*], [$($await)*], traced = $traced);
        $crate::resources::users_triage!(client = $client, [$($async)*], [$($await)*], traced = $traced);
        $crate::resources::client_job_reads!(client = $client, [$($async)*], [$($await)*], traced = $traced);
        $crate::resources::client_consent_url!(client = $client, [$($async)*], [$($await)*], traced = $traced);
        $crate::resources::client_consent_flow!(client = $client, [$($async)*], [$($await)*], traced = $traced);
        $crate::resources::connections_refresh!(client = $client, [$($async)*], [$($await)*], traced = $traced);
        $crate::resources::connections_refresh_guarded!(client = $client, [$($async)*], [$($await)*], traced = $traced);
        $crate::resources::connections_refresh_send!(client = $client, [$($async)*], [$($await)*], traced = $traced);
        $crate::resources::connections_refresh_plan!(client = $client, [$($async)*], [$($await)*], traced = $traced);
        $crate::resources::transactions_walk!(client = $client, [$($async)*], [$($await)*], traced = $traced);
        $crate::resources::transactions_streams!(client = $client, [$($async)*], [$($await)*], traced = $traced);
        $crate::resources::accounts_streams!(client = $client, [$($async)*], [$($await)*], traced = $traced);
        $crate::resources::connections_jobs_streams!(client = $client, [$($async)*], [$($await)*], traced = $traced);
        $crate::resources::client_lists!(client = $client, [$($async)*], [$($await)*], traced = $traced);
    };
}

pub(crate) use resources;

/// Logs and returns an outcome for which nothing was sent, recording its job on the span.
pub(crate) fn not_sent(
    outcome: crate::RefreshOutcome,
    span: &::tracing::Span,
) -> crate::RefreshOutcome {
    if let Some(job) = outcome.job_id() {
        span.record("job_id", job.as_str());
    }
    ::tracing::info!(?outcome, "refresh not sent");
    outcome
}

/// Logs and returns the outcome of a refresh that was sent, recording its job on the span.
pub(crate) fn sent(
    outcome: crate::RefreshOutcome,
    span: &::tracing::Span,
) -> crate::RefreshOutcome {
    if let Some(job) = outcome.job_id() {
        span.record("job_id", job.as_str());
    }
    ::tracing::info!(?outcome, "refresh sent");
    outcome
}
