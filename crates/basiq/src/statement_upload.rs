//! `client.statements()`, written by hand for both clients: its operation,
//! [`UploadStatement`](crate::statements::UploadStatement), is hand-written (a multipart body),
//! so codegen's `endpoints.rs` does not cover it.

/// Stamps `Statements` and `client.statements()` for one client flavour.
macro_rules! statement_upload {
    (client = $client:ident, [$($async:tt)*], [$($await:tt)*]) => {
        impl $client {
            /// `client.statements()`: `upload`.
            pub fn statements(&self) -> Statements<'_> {
                Statements { client: self }
            }
        }

        $crate::resources::resource! {
            $client,
            /// `client.statements()`: `upload`.
            Statements
        }

        impl<'a> Statements<'a> {
            /// `POST /users/{userId}/statements`: uploads a PDF or CSV bank statement as
            /// `multipart/form-data`; the answer is a job to follow with `jobs().wait`.
            ///
            /// Refused before sending ([`Error::InvalidInput`](crate::Error::InvalidInput)): an
            /// empty file, a file that is neither PDF nor CSV. A file too large for Basiq is a 413,
            /// [`ErrorKind::PayloadTooLarge`](crate::ErrorKind::PayloadTooLarge).
            ///
            /// Not idempotent: never repeated after an ambiguous failure (list the user's jobs
            /// instead).
            pub $($async)* fn upload(
                self,
                user_id: impl $crate::id::IntoId<$crate::id::UserId>,
                institution_id: impl $crate::id::IntoId<$crate::id::InstitutionId>,
                file: $crate::statements::StatementFile,
            ) -> Result<$crate::models::JobRef, $crate::Error> {
                let user_id = $crate::id::IntoId::into_id(user_id)?;
                let institution_id = $crate::id::IntoId::into_id(institution_id)?;
                self.client
                    .execute($crate::statements::UploadStatement::new(user_id, institution_id, file))
                    $($await)*
            }
        }
    };
}

pub(crate) use statement_upload;
