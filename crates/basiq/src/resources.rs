//! Thin resource wrappers, written once for both clients.
//!
//! Each method validates its ids (so `"../x"` is an [`Error::InvalidId`](crate::Error::InvalidId)
//! before any request exists), builds one operation and hands it to the client's `execute`. The
//! macro stamps the same wrappers out for the async client (`async fn … .await`) and the blocking
//! client (plain `fn`), so no endpoint is written twice and the two clients cannot drift.
//!
//! The wrappers are `Copy` and their methods take `self`, so a future such as
//! `client.users().get(id)` borrows only the client, not the temporary wrapper: it can be stored,
//! joined or spawned-with-scope like any other future.

macro_rules! resources {
    (client = $client:ident, [$($async:tt)*], [$($await:tt)*]) => {
        /// User endpoints: `client.users()`.
        #[derive(Debug, Clone, Copy)]
        pub struct Users<'a> {
            client: &'a $client,
        }

        impl<'a> Users<'a> {
            pub(crate) fn new(client: &'a $client) -> Self {
                Self { client }
            }

            /// `POST /users`: creates a user. Basiq requires `email` or `mobile`; a user with
            /// neither is refused locally ([`Error::InvalidInput`](crate::Error::InvalidInput)).
            ///
            /// Not idempotent: never repeated after an ambiguous failure (look the user up instead).
            pub $($async)* fn create(
                self,
                user: $crate::models::NewUser,
            ) -> Result<$crate::models::User, $crate::Error> {
                self.client
                    .execute($crate::operations::CreateUser::new(user))
                    $($await)*
            }

            /// `GET /users/{userId}`: retrieves a user.
            pub $($async)* fn get(
                self,
                user_id: impl TryInto<$crate::id::UserId, Error = $crate::id::InvalidId>,
            ) -> Result<$crate::models::User, $crate::Error> {
                let user_id = user_id.try_into()?;
                self.client
                    .execute($crate::operations::GetUser::new(user_id))
                    $($await)*
            }

            /// `POST /users/{userId}`: changes the given fields (Basiq updates with POST).
            pub $($async)* fn update(
                self,
                user_id: impl TryInto<$crate::id::UserId, Error = $crate::id::InvalidId>,
                update: $crate::models::UserUpdate,
            ) -> Result<$crate::models::User, $crate::Error> {
                let user_id = user_id.try_into()?;
                self.client
                    .execute($crate::operations::UpdateUser::new(user_id, update))
                    $($await)*
            }

            /// `DELETE /users/{userId}`: deletes the user and all their data.
            pub $($async)* fn delete(
                self,
                user_id: impl TryInto<$crate::id::UserId, Error = $crate::id::InvalidId>,
            ) -> Result<(), $crate::Error> {
                let user_id = user_id.try_into()?;
                self.client
                    .execute($crate::operations::DeleteUser::new(user_id))
                    $($await)*
            }
        }

        /// Job endpoints: `client.jobs()`.
        #[derive(Debug, Clone, Copy)]
        pub struct Jobs<'a> {
            client: &'a $client,
        }

        impl<'a> Jobs<'a> {
            pub(crate) fn new(client: &'a $client) -> Self {
                Self { client }
            }

            /// `GET /jobs/{jobId}`: retrieves a job and its steps.
            pub $($async)* fn get(
                self,
                job_id: impl TryInto<$crate::id::JobId, Error = $crate::id::InvalidId>,
            ) -> Result<$crate::models::Job, $crate::Error> {
                let job_id = job_id.try_into()?;
                self.client
                    .execute($crate::operations::GetJob::new(job_id))
                    $($await)*
            }

            /// `GET /users/{userId}/jobs`: the user's jobs of the last 7 days (Basiq keeps no
            /// older ones).
            pub $($async)* fn list_for_user(
                self,
                user_id: impl TryInto<$crate::id::UserId, Error = $crate::id::InvalidId>,
            ) -> Result<$crate::models::JobList, $crate::Error> {
                let user_id = user_id.try_into()?;
                self.client
                    .execute($crate::operations::ListUserJobs::new(user_id))
                    $($await)*
            }

            /// Like [`list_for_user`](Self::list_for_user), restricted by a Basiq filter such as
            /// `connection.id.eq('ab63cd')` (sent as the `filter` query parameter, encoded).
            pub $($async)* fn list_for_user_filtered(
                self,
                user_id: impl TryInto<$crate::id::UserId, Error = $crate::id::InvalidId>,
                filter: impl Into<String>,
            ) -> Result<$crate::models::JobList, $crate::Error> {
                let user_id = user_id.try_into()?;
                self.client
                    .execute($crate::operations::ListUserJobs::new(user_id).filter(filter))
                    $($await)*
            }
        }
    };
}

pub(crate) use resources;
